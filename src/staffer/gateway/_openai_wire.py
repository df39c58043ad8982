"""The OpenAI Chat Completions wire format, served: requests in, chunks and answers out.

This is the mirror of `staffer.models.openai`, which speaks the same format as a
client. Parsing is strict where a silent misreading would change the answer (roles,
tool calls, n > 1, non-text content) and lenient about fields Staffer does not use.
Stream chunks are rendered from string templates: they are the hot path.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from staffer.models import (
    Message,
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from staffer.models._http import loads

_quote = json.encoder.encode_basestring_ascii
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
DONE = b"data: [DONE]\n\n"
_ID_PREFIX = "chatcmpl-" + secrets.token_hex(6)
_ids = itertools.count()


def completion_id() -> str:
    """A new ``chatcmpl-…`` id: a random prefix per process and a counter, 24 hex digits
    like OpenAI's (unique without a system call each)."""
    return f"{_ID_PREFIX}{next(_ids):012x}"


class WireError(Exception):
    """The request is not a valid Chat Completions request; `param` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        self.message = message
        self.param = param
        super().__init__(message)


@dataclass(slots=True)
class ChatRequest:
    """A parsed request: what to ask the model, and how to answer."""

    model: str
    request: ModelRequest
    stream: bool
    include_usage: bool
    end_user: str | None


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise WireError(
                    f"{where}[{i}] is a {kind!r} part; only text content is supported",
                    f"{where}[{i}]",
                )
            text = part.get("text", part.get("refusal"))
            if not isinstance(text, str):
                raise WireError(f"{where}[{i}].text must be a string", f"{where}[{i}].text")
            parts.append(text)
        return "\n".join(parts)
    raise WireError(f"{where} must be a string or a list of content parts", where)


def _tool_calls(raw: Any, where: str) -> list[ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise WireError(f"{where} must be a list", where)
    calls: list[ToolCall] = []
    for i, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise WireError(f"{where}[{i}].function.name is required", f"{where}[{i}].function")
        args = fn.get("arguments", "")
        if not isinstance(args, str):
            args = json.dumps(args)
        call_id = call.get("id")
        calls.append(
            ToolCall(call_id if isinstance(call_id, str) else f"call_{i}", fn["name"], args)
        )
    return calls


def _messages(raw: Any) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise WireError("messages must be a non-empty list", "messages")
    out: list[Message] = []
    names: dict[str, str] = {}  # tool call id -> tool name, for tool results
    for i, msg in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise WireError(f"{where} must be an object", where)
        role = msg.get("role")
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise WireError(f"{where}.tool_call_id is required", f"{where}.tool_call_id")
            content = _text(msg.get("content"), f"{where}.content")
            out.append(Message("tool", content, tool_call_id=call_id, name=names.get(call_id)))
            continue
        mapped = _ROLES.get(role) if isinstance(role, str) else None
        if mapped is None:
            raise WireError(
                f"{where}.role {role!r} is not one of system, developer, user, assistant, tool",
                f"{where}.role",
            )
        content = _text(msg.get("content"), f"{where}.content")
        if mapped == "assistant":
            calls = _tool_calls(msg.get("tool_calls"), f"{where}.tool_calls")
            names.update((c.id, c.name) for c in calls)
            out.append(Message("assistant", content, tool_calls=calls))
        else:
            out.append(Message(mapped, content))  # type: ignore[arg-type]
    return out


def _tools(raw: Any) -> list[ToolSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise WireError("tools must be a list", "tools")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise WireError(f"tools[{i}].function.name is required", f"tools[{i}].function")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise WireError(f"tools[{i}].function.parameters must be an object", f"tools[{i}]")
        description = fn.get("description")
        specs.append(
            ToolSpec(
                fn["name"],
                description if isinstance(description, str) else "",
                params if params is not None else dict(_EMPTY_SCHEMA),
            )
        )
    return specs


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WireError(f"{key} must be a positive integer", key)
    return value


def parse_request(raw: bytes) -> ChatRequest:
    """Parse a request body; raises WireError naming the field that is wrong."""
    try:
        body = loads(raw)  # the stream chunks' parser: UTF-8, no encoding sniffing
    except ValueError:
        try:
            body = json.loads(raw)  # a BOM or UTF-16, or the precise error
        except ValueError as exc:
            raise WireError(f"the body is not valid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise WireError("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError("model is required: a model alias or deployment name", "model")
    n = body.get("n")
    if n is not None and n != 1:
        raise WireError("only n = 1 is supported", "n")
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float)
        or isinstance(temperature, bool)
        or not math.isfinite(temperature)
    ):
        raise WireError("temperature must be a number", "temperature")
    max_tokens = None
    if "max_completion_tokens" in body or "max_tokens" in body:
        max_tokens = _positive_int(body, "max_completion_tokens") or _positive_int(
            body, "max_tokens"
        )
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    user = body.get("user")
    request = ModelRequest(
        messages=_messages(body.get("messages")),
        tools=_tools(body.get("tools")),
        model=model,
        max_tokens=max_tokens,
        temperature=float(temperature) if temperature is not None else None,
    )
    return ChatRequest(
        model, request, stream, include_usage, user if isinstance(user, str) else None
    )


def _usage(usage: Usage) -> str:
    """The ``usage`` object's JSON."""
    i, o = usage.input_tokens, usage.output_tokens
    return (
        f'{{"prompt_tokens":{i},"completion_tokens":{o},"total_tokens":{i + o},'
        f'"prompt_tokens_details":{{"cached_tokens":{usage.cached_input_tokens}}}}}'
    )


def finish_reason(reason: str) -> str:
    return reason if reason in ("stop", "tool_calls", "length", "content_filter") else "stop"


class ChunkWriter:
    """Renders the ``data: …`` events of one streamed answer.

    Every chunk shares a prefix (id, created, model), rendered once; a text delta is
    then one string escape and a concatenation.
    """

    __slots__ = ("_head", "_tail", "id")

    def __init__(self, model: str) -> None:
        self.id = completion_id()
        self._head = (
            f'data: {{"id":"{self.id}","object":"chat.completion.chunk",'
            f'"created":{int(time.time())},"model":{_quote(model)},'
            f'"system_fingerprint":null,"choices":[{{"index":0,"delta":'
        )
        self._tail = ',"logprobs":null,"finish_reason":null}]}\n\n'

    def role(self) -> str:
        return self._head + '{"role":"assistant","content":""}' + self._tail

    def text(self, text: str) -> str:
        return self._head + '{"content":' + _quote(text) + "}" + self._tail

    def tool_call(self, delta: ToolCallDelta) -> str:
        call = f'{{"index":{delta.index}'
        if delta.id:
            call += f',"id":{_quote(delta.id)},"type":"function"'
        call += ',"function":{'
        if delta.name:
            call += f'"name":{_quote(delta.name)},'
        call += f'"arguments":{_quote(delta.arguments)}}}}}'
        return self._head + '{"tool_calls":[' + call + "]}" + self._tail

    def finish(self, reason: str) -> str:
        return (
            f'{self._head}{{}},"logprobs":null,"finish_reason":"{finish_reason(reason)}"}}]}}\n\n'
        )

    def usage(self, usage: Usage) -> str:
        head = self._head[: self._head.index('"choices"')]
        return f'{head}"choices":[],"usage":{_usage(usage)}}}\n\n'


def completion(model: str, response: ModelResponse) -> bytes:
    """The ``chat.completion`` JSON for a whole (non-streamed) answer.

    Rendered from a template like the stream chunks (a quarter of the cost of building
    the object and encoding it); the keys are in OpenAI's order.
    """
    content = _quote(response.text) if response.text or not response.tool_calls else "null"
    calls = ""
    if response.tool_calls:
        calls = (
            ',"tool_calls":['
            + ",".join(
                f'{{"id":{_quote(c.id)},"type":"function","function":'
                f'{{"name":{_quote(c.name)},"arguments":{_quote(c.arguments)}}}}}'
                for c in response.tool_calls
            )
            + "]"
        )
    return (
        f'{{"id":"{completion_id()}","object":"chat.completion",'
        f'"created":{int(time.time())},"model":{_quote(model)},"system_fingerprint":null,'
        f'"choices":[{{"index":0,"message":{{"role":"assistant","content":{content},'
        f'"refusal":null{calls}}},"logprobs":null,'
        f'"finish_reason":"{finish_reason(response.finish_reason)}"}}],'
        f'"usage":{_usage(response.usage)}}}'
    ).encode()


def error_body(message: str, kind: str, code: str | None, param: str | None = None) -> bytes:
    """OpenAI's error JSON: ``{"error": {"message", "type", "param", "code"}}``."""
    error = {"message": message, "type": kind, "param": param, "code": code}
    return json.dumps({"error": error}, ensure_ascii=False).encode()


def model_list(names: list[str], owner: str = "staffer") -> bytes:
    created = int(time.time())
    data = [{"id": n, "object": "model", "created": created, "owned_by": owner} for n in names]
    return json.dumps({"object": "list", "data": data}).encode()
