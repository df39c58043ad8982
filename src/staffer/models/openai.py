"""OpenAI Chat Completions for OpenAI and every compatible server.

vLLM, Ollama, llama.cpp, LM Studio, OpenRouter, Groq and Gemini's compatible
endpoint all speak this format with small differences, so parsing is lenient:
missing usage or finish_reason, extra fields, comment lines, empty `choices`,
tool calls without an `index`, and usage repeated on every chunk are all fine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from staffer.models._adapter import HTTPAdapter
from staffer.models._http import (
    CONNECT_TIMEOUT,
    Endpoint,
    encode_json,
    ended_early,
    error_for_stream_payload,
    loads,
    malformed,
    shape_error,
)
from staffer.models._types import (
    Finish,
    FinishReason,
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "length": "length",
    "max_tokens": "length",
    "content_filter": "content_filter",
    "safety": "content_filter",
    "error": "error",
}


def _wire_message(msg: Message, with_tool_name: bool) -> dict[str, Any]:
    if msg.role == "tool":
        out: dict[str, Any] = {
            "role": "tool",
            "tool_call_id": msg.tool_call_id or "",
            "content": msg.content,
        }
        if with_tool_name and msg.name:
            out["name"] = msg.name
        return out
    if msg.role == "assistant" and msg.tool_calls:
        return {
            "role": "assistant",
            "content": msg.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments or "{}"},
                }
                for call in msg.tool_calls
            ],
        }
    return {"role": msg.role, "content": msg.content}


def _wire_tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


class _ToolIndexer:
    """Gives each tool call a stable index, even when a server omits `index` or
    reuses index 0 for parallel calls that carry different ids."""

    __slots__ = ("_ids", "_last", "_remap")

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}  # our index -> call id
        self._remap: dict[int, int] = {}  # the server's index -> ours
        self._last = -1

    def index(self, wire_index: object, call_id: str | None) -> int:
        if isinstance(wire_index, int):
            ours = self._remap.get(wire_index)
            known = self._ids.get(ours) if ours is not None else None
            if ours is None or (call_id and known and known != call_id):
                ours = self._remap[wire_index] = self._new(call_id)
            elif call_id and not known:
                self._ids[ours] = call_id
        elif self._last < 0 or (call_id and self._ids.get(self._last) not in ("", call_id)):
            ours = self._new(call_id)
        else:
            ours = self._last
        self._last = ours
        return ours

    def _new(self, call_id: str | None) -> int:
        ours = len(self._ids)
        self._ids[ours] = call_id or ""
        return ours

    @property
    def seen(self) -> bool:
        return bool(self._ids)


class OpenAIChatModel(HTTPAdapter):
    """A `Model` speaking the OpenAI Chat Completions streaming API.

    `provider_name` names the service in errors and in `name` (``groq:llama-3.3-70b``);
    `api_key_env` names the variable the key came from, so an auth error can say
    which one to fix. Calls use Staffer's own HTTP/1.1 transport; pass an httpx `client`
    (to share a pool; it is then not closed) or set a proxy variable to go through httpx.
    `connect_timeout` bounds opening a connection, `timeout` the whole call.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        timeout: float = 120.0,
        max_tokens: int | None = None,
        provider_name: str = "openai",
        client: httpx.AsyncClient | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        api_key_env: str | None = None,
    ) -> None:
        self.model = model
        self.name = f"{provider_name}:{model}"
        self.base_url = base_url.rstrip("/")
        self.max_tokens = max_tokens
        self._connect(f"{self.base_url}/chat/completions", client, connect_timeout)
        self._headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        if api_key_env is None and provider_name == "openai":
            api_key_env = "OPENAI_API_KEY"
        self._endpoint = Endpoint(provider_name, self.base_url, api_key_env, timeout)
        # OpenAI itself wants max_completion_tokens (reasoning models reject max_tokens);
        # compatible servers mostly only know max_tokens.
        self._max_tokens_key = (
            "max_completion_tokens" if "api.openai.com" in self.base_url else "max_tokens"
        )
        # Only OpenAI's own validator is strict about unknown fields on tool messages.
        self._tool_names = provider_name != "openai"

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body for `request` (public so tests and tracing can see the wire form)."""
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": [_wire_message(m, self._tool_names) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [_wire_tool(t) for t in request.tools]
        max_tokens = request.max_tokens or self.max_tokens
        if max_tokens:
            body[self._max_tokens_key] = max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = encode_json(self.build_body(request))
        ep = self._endpoint
        tools = _ToolIndexer()
        usage: Usage | None = None
        finish: FinishReason | None = None
        done = False
        count = 0
        data = b""
        try:
            events = self._events(body)
            try:
                async for batch in events:  # the events one network read brought
                    for event in batch:
                        count += 1
                        data = event.data
                        if data == b"[DONE]":
                            done = True
                            break
                        try:
                            chunks: list[Any] = [loads(data)]
                        except ValueError as exc:
                            split = _split_concatenated(data)
                            if split is None:
                                raise malformed(ep, data, exc, count - 1) from exc
                            chunks = split
                        for chunk in chunks:
                            if chunk.get("error"):
                                raise error_for_stream_payload(ep, chunk, data)
                            for choice in chunk.get("choices") or ():
                                delta = choice.get("delta") or {}
                                text = delta.get("content")
                                if text:
                                    yield TextDelta(text)
                                for call in delta.get("tool_calls") or ():
                                    fn = call.get("function") or {}
                                    call_id = call.get("id") or None
                                    args = fn.get("arguments") or ""
                                    if not isinstance(args, str):  # a few servers send an object
                                        args = json.dumps(args)
                                    yield ToolCallDelta(
                                        tools.index(call.get("index"), call_id),
                                        call_id,
                                        fn.get("name") or None,
                                        args,
                                    )
                                reason = choice.get("finish_reason")
                                if reason:
                                    finish = _FINISH.get(reason, "stop")
                            raw_usage = chunk.get("usage")
                            if raw_usage:
                                # Kept, not yielded: some servers repeat the running total.
                                usage = _usage(raw_usage)
                    if done:
                        break
                # The end goes out before the response is closed: closing it waits for the
                # rest of the body (to keep the connection), which the caller need not.
                if not done and finish is None:
                    raise ended_early(ep, count)
                if usage is not None:
                    yield usage
                if finish is None or (finish == "stop" and tools.seen):
                    finish = "tool_calls" if tools.seen else "stop"
                yield Finish(finish)
            finally:
                await events.aclose()
        except (AttributeError, TypeError) as exc:
            raise shape_error(ep, data, exc, count - 1) from exc


def _usage(raw: dict[str, Any]) -> Usage:
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        raw.get("prompt_tokens") or 0,
        raw.get("completion_tokens") or 0,
        details.get("cached_tokens") or 0,
    )


def _split_concatenated(data: bytes) -> list[Any] | None:
    """Servers that forget the blank line between events make several `data:` lines
    join into one; parse them one by one before calling the stream malformed."""
    if b"\n" not in data:
        return None
    try:
        return [loads(line) for line in data.split(b"\n") if line and line != b"[DONE]"]
    except ValueError:
        return None
