"""Anthropic's Messages API, streaming.

System messages become the top-level `system`; assistant tool calls become
`tool_use` blocks; tool results become `tool_result` blocks in a user message
(consecutive results share one message, as the API expects after parallel calls).
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
    Usage,
)

API_VERSION = "2023-06-01"

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}


def wire_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """Split `messages` into Anthropic's `system` text and `messages` list."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role == "system":
            if msg.content:
                system.append(msg.content)
        elif msg.role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": msg.tool_call_id or "",
                "content": msg.content,
            }
            if msg.is_error:
                block["is_error"] = True
            last = out[-1] if out else None
            if last and last["role"] == "user" and isinstance(last["content"], list):
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif msg.role == "assistant":
            content: list[dict[str, Any]] = []
            if msg.content:
                content.append({"type": "text", "text": msg.content})
            for call in msg.tool_calls:
                try:
                    args = call.parsed_arguments()
                except ValueError:
                    args = {}  # the call already failed; the API only needs an object here
                content.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": args}
                )
            if content:  # the API refuses empty assistant turns
                out.append({"role": "assistant", "content": content})
        else:
            out.append({"role": "user", "content": msg.content})
    return "\n\n".join(system), out


class AnthropicModel(HTTPAdapter):
    """A `Model` speaking Anthropic's streaming Messages API.

    Calls use Staffer's own HTTP/1.1 transport; pass an httpx `client` (to share a pool;
    it is then not closed) or set a proxy variable to go through httpx. `api_key_env`
    names the variable the key came from, for the auth error's advice; `connect_timeout`
    bounds opening a connection, `timeout` the whole call.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.anthropic.com",
        api_key: str | None = None,
        timeout: float = 120.0,
        max_tokens: int = 4096,
        client: httpx.AsyncClient | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
    ) -> None:
        self.model = model
        self.name = f"anthropic:{model}"
        base = base_url.rstrip("/")
        self.base_url = base[:-3] if base.endswith("/v1") else base
        self.max_tokens = max_tokens
        self._connect(f"{self.base_url}/v1/messages", client, connect_timeout)
        self._headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "anthropic-version": API_VERSION,
        }
        if api_key:
            self._headers["x-api-key"] = api_key
        self._endpoint = Endpoint("anthropic", self.base_url, api_key_env, timeout)

    def build_body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body for `request` (public so tests and tracing can see the wire form)."""
        system, messages = wire_messages(request.messages)
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": request.max_tokens or self.max_tokens,
            "messages": messages,
            "stream": True,
        }
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        body = encode_json(self.build_body(request))
        ep = self._endpoint
        tool_index: dict[int, int] = {}  # content block index -> tool call index
        input_tokens = cached = output_tokens = 0
        finish: FinishReason | None = None
        done = False
        count = 0
        raw = b""
        try:
            events = self._events(body)
            try:
                async for batch in events:  # the events one network read brought
                    for event in batch:
                        count += 1
                        raw = event.data
                        try:
                            data = loads(raw)
                        except ValueError as exc:
                            raise malformed(ep, raw, exc, count - 1) from exc
                        kind = data.get("type") or event.event
                        if kind == "content_block_delta":
                            delta = data.get("delta") or {}
                            dtype = delta.get("type")
                            if dtype == "text_delta":
                                if delta.get("text"):
                                    yield TextDelta(delta["text"])
                            elif dtype == "input_json_delta":
                                index = tool_index.get(data.get("index", -1))
                                if index is not None and delta.get("partial_json"):
                                    yield ToolCallDelta(index, arguments=delta["partial_json"])
                        elif kind == "content_block_start":
                            block = data.get("content_block") or {}
                            btype = block.get("type")
                            if btype == "tool_use":
                                index = tool_index[data.get("index", -1 - len(tool_index))] = len(
                                    tool_index
                                )
                                yield ToolCallDelta(index, block.get("id"), block.get("name"))
                                if block.get("input"):  # normally {}, the JSON follows as deltas
                                    yield ToolCallDelta(index, arguments=json.dumps(block["input"]))
                            elif btype == "text" and block.get("text"):
                                yield TextDelta(block["text"])
                        elif kind == "message_delta":
                            reason = (data.get("delta") or {}).get("stop_reason")
                            if reason:
                                finish = _STOP.get(reason, "stop")
                            usage = data.get("usage") or {}
                            output_tokens = usage.get("output_tokens") or output_tokens
                        elif kind == "message_start":
                            usage = (data.get("message") or {}).get("usage") or {}
                            cached = usage.get("cache_read_input_tokens") or 0
                            input_tokens = (
                                (usage.get("input_tokens") or 0)
                                + cached
                                + (usage.get("cache_creation_input_tokens") or 0)
                            )
                            output_tokens = usage.get("output_tokens") or 0
                        elif kind == "message_stop":
                            done = True
                            break
                        elif kind == "error":
                            raise error_for_stream_payload(ep, data, raw)
                        # "ping", "content_block_stop" and unknown future events need nothing.
                    if done:
                        break
                # The end goes out before the response is closed: closing it waits for the
                # rest of the body (to keep the connection), which the caller need not.
                if not done and finish is None:
                    raise ended_early(ep, count)
                yield Usage(input_tokens, output_tokens, cached)
                yield Finish(finish or ("tool_calls" if tool_index else "stop"))
            finally:
                await events.aclose()
        except (AttributeError, TypeError) as exc:
            raise shape_error(ep, raw, exc, count - 1) from exc
