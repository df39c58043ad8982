"""The OpenAI Chat Completions wire format (``POST /v1/chat/completions``).

Streams follow the official format: ``data: {chat.completion.chunk}`` events,
a first chunk with the assistant role, content deltas, tool call fragments
(id and name first, then argument pieces), a chunk with `finish_reason`, a
usage chunk with empty `choices` when ``stream_options.include_usage`` is set,
and ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any, Final

from staffer.testing.model_server._dialect import Frame
from staffer.testing.model_server._reply import Prompt, Reply, content_text

_FINGERPRINT: Final = "fp_scripted"
_DONE: Final = b"data: [DONE]\n\n"

# kind -> (status, type, code, default message)
_ERRORS: Final[dict[str, tuple[int, str, str | None, str]]] = {
    "400": (400, "invalid_request_error", None, "Invalid request (scripted fault)."),
    "401": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided (scripted fault).",
    ),
    "404": (
        404,
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it (scripted fault).",
    ),
    "429": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests (scripted fault). Please try again later.",
    ),
    "500": (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "502": (502, "server_error", None, "Bad gateway (scripted fault)."),
    "503": (
        503,
        "server_error",
        None,
        "The engine is currently overloaded, please try again later (scripted fault).",
    ),
    "504": (504, "server_error", None, "Gateway timeout (scripted fault)."),
    "529": (529, "server_error", None, "The server is overloaded (scripted fault)."),
    "context_length": (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 131072 tokens. Please reduce the length of the messages.",
    ),
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


#: a JSON string literal, without the cost of `json.dumps` (streams write thousands)
_quote = json.encoder.encode_basestring


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


class OpenAIDialect:
    """Reads and writes OpenAI Chat Completions requests and responses."""

    request_id_header: bytes = b"x-request-id"

    def read_prompt(self, body: Mapping[str, Any]) -> Prompt:
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise ValueError("'messages' must be a list")
        last_user = ""
        last_tool = ""
        turns = 0
        chars = 0
        for message in messages:
            if not isinstance(message, dict):
                raise ValueError("each message must be an object")
            role = message.get("role")
            text = content_text(message.get("content"))
            chars += len(text)
            if role == "user":
                last_user, turns = text, 0
            elif role == "assistant":
                turns += 1
                for call in message.get("tool_calls") or ():
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict):
                        chars += len(str(function.get("arguments", "")))
            elif role == "tool":
                last_tool = text
        return Prompt(last_user, turns, last_tool, chars)

    def wants_stream(self, body: Mapping[str, Any]) -> bool:
        return body.get("stream") is True

    def new_call_id(self) -> str:
        return "call_" + uuid.uuid4().hex[:24]

    def stream(self, reply: Reply, body: Mapping[str, Any]) -> list[Frame]:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        envelope = _dumps(
            {
                "id": "chatcmpl-" + uuid.uuid4().hex,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": str(body.get("model") or "scripted"),
                "system_fingerprint": _FINGERPRINT,
            }
        )
        # Every chunk shares the envelope; only the choice (and usage) differ.
        head = "data: " + envelope[:-1] + ',"choices":[{"index":0,"delta":'
        tail = ',"usage":null}\n\n' if include_usage else "}\n\n"

        def chunk(delta: dict[str, Any] | str, finish: str | None = None) -> bytes:
            reason = "null" if finish is None else f'"{finish}"'
            if not isinstance(delta, str):
                delta = _dumps(delta)
            return f'{head}{delta},"logprobs":null,"finish_reason":{reason}}}]{tail}'.encode()

        frames: list[Frame] = [
            (chunk({"role": "assistant", "content": "", "refusal": None}), False)
        ]
        frames.extend(
            (chunk(f'{{"content":{_quote(piece)}}}'), True) for piece in reply.text_pieces
        )
        for index, call in enumerate(reply.calls):
            first = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            frames.append((chunk({"tool_calls": [first]}), False))
            opening = f'{{"tool_calls":[{{"index":{index},"function":{{"arguments":'
            frames.extend(
                (chunk(f"{opening}{_quote(piece)}}}}}]}}"), True) for piece in call.pieces
            )
        frames.append((chunk({}, reply.finish), False))
        if include_usage:
            usage = f',"choices":[],"usage":{_dumps(_usage(reply))}}}\n\n'
            frames.append((("data: " + envelope[:-1] + usage).encode(), False))
        frames.append((_DONE, False))
        return frames

    def message(self, reply: Reply, body: Mapping[str, Any]) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.calls else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in reply.calls
            ]
        return _dumps(
            {
                "id": "chatcmpl-" + uuid.uuid4().hex,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(body.get("model") or "scripted"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": reply.finish,
                    }
                ],
                "usage": _usage(reply),
                "system_fingerprint": _FINGERPRINT,
            }
        ).encode()

    def malformed_frame(self) -> bytes:
        return b'data: {"id":"chatcmpl-malformed","object":"chat.completion.chunk","choices":[{\n\n'

    def error(self, kind: str, message: str | None = None) -> tuple[int, bytes]:
        status, type_, code, default = _ERRORS[kind]
        param = "messages" if kind == "context_length" else None
        error = {"message": message or default, "type": type_, "param": param, "code": code}
        return status, _dumps({"error": error}).encode()

    def models(self, names: tuple[str, ...]) -> bytes:
        data = [
            {"id": name, "object": "model", "created": 1700000000, "owned_by": "staffer"}
            for name in names
        ]
        return _dumps({"object": "list", "data": data}).encode()
