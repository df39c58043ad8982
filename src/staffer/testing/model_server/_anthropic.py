"""The Anthropic Messages wire format (``POST /v1/messages``).

Streams follow the official event sequence, each with an ``event:`` line:
``message_start`` (usage.input_tokens), then per content block
``content_block_start`` / ``content_block_delta`` (``text_delta`` or
``input_json_delta``) / ``content_block_stop``, a ``ping`` after the first
block starts, ``message_delta`` (stop_reason, usage.output_tokens) and
``message_stop``.

Tool results arrive in user-role messages; a user message that carries a
``tool_result`` block is a tool result, not a new user turn, so the step count
keeps going across a tool round-trip as it does with OpenAI.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

from staffer.models import FinishReason
from staffer.testing.model_server._dialect import Frame
from staffer.testing.model_server._reply import Prompt, Reply, content_text

_STOP_REASONS: Final[dict[FinishReason, str]] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
    "error": "end_turn",
}

# kind -> (status, error type, default message)
_ERRORS: Final[dict[str, tuple[int, str, str]]] = {
    "400": (400, "invalid_request_error", "Invalid request (scripted fault)."),
    "401": (401, "authentication_error", "invalid x-api-key (scripted fault)"),
    "404": (404, "not_found_error", "model: not found (scripted fault)"),
    "429": (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization (scripted fault).",
    ),
    "500": (500, "api_error", "Internal server error"),
    "502": (502, "api_error", "Bad gateway (scripted fault)"),
    "503": (503, "overloaded_error", "Overloaded"),
    "504": (504, "api_error", "Gateway timeout (scripted fault)"),
    "529": (529, "overloaded_error", "Overloaded"),
    "context_length": (
        400,
        "invalid_request_error",
        "prompt is too long: 208310 tokens > 200000 maximum",
    ),
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {_dumps(data)}\n\n".encode()


#: a JSON string literal, without the cost of `json.dumps` (streams write thousands)
_quote = json.encoder.encode_basestring


def _piece(index: int, kind: str, field: str, piece: str) -> Frame:
    data = (
        f'{{"type":"content_block_delta","index":{index},'
        f'"delta":{{"type":"{kind}","{field}":{_quote(piece)}}}}}'
    )
    return f"event: content_block_delta\ndata: {data}\n\n".encode(), True


def _input(arguments: str) -> Any:
    # Real responses always carry an object; a scripted invalid string is passed through raw.
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments


class AnthropicDialect:
    """Reads and writes Anthropic Messages requests and responses."""

    request_id_header: bytes = b"request-id"

    def read_prompt(self, body: Mapping[str, Any]) -> Prompt:
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise ValueError("messages: Input should be a valid list")
        chars = len(content_text(body.get("system")))
        last_user = ""
        last_tool = ""
        turns = 0
        for message in messages:
            if not isinstance(message, dict):
                raise ValueError("messages: each message must be an object")
            content = message.get("content")
            text = content_text(content)
            chars += len(text)
            if message.get("role") == "assistant":
                turns += 1
                if isinstance(content, list):
                    chars += sum(
                        len(_dumps(block.get("input", {})))
                        for block in content
                        if isinstance(block, dict) and block.get("type") == "tool_use"
                    )
                continue
            results = [
                block
                for block in (content if isinstance(content, list) else ())
                if isinstance(block, dict) and block.get("type") == "tool_result"
            ]
            if results:
                last_tool = content_text(results[-1].get("content"))
                chars += sum(len(content_text(block.get("content"))) for block in results)
            else:
                last_user, turns = text, 0
        return Prompt(last_user, turns, last_tool, chars)

    def wants_stream(self, body: Mapping[str, Any]) -> bool:
        return body.get("stream") is True

    def new_call_id(self) -> str:
        return "toolu_01" + uuid.uuid4().hex[:22]

    def stream(self, reply: Reply, body: Mapping[str, Any]) -> list[Frame]:
        message = self._envelope(body)
        message.update(content=[], stop_reason=None, stop_sequence=None)
        usage = self._usage(reply)
        message["usage"] = {**usage, "output_tokens": 1}
        frames: list[Frame] = [
            (_event("message_start", {"type": "message_start", "message": message}), False)
        ]
        index = 0
        if reply.text_pieces or not reply.calls:
            frames.extend(self._block(index, {"type": "text", "text": ""}))
            frames.extend(_piece(index, "text_delta", "text", piece) for piece in reply.text_pieces)
            frames.append(_stop(index))
            index += 1
        for call in reply.calls:
            start = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            frames.extend(self._block(index, start))
            frames.extend(
                _piece(index, "input_json_delta", "partial_json", piece) for piece in call.pieces
            )
            frames.append(_stop(index))
            index += 1
        delta = {"stop_reason": _STOP_REASONS[reply.finish], "stop_sequence": None}
        frames.append(
            (
                _event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": delta,
                        "usage": {"output_tokens": reply.output_tokens},
                    },
                ),
                False,
            )
        )
        frames.append((_event("message_stop", {"type": "message_stop"}), False))
        return frames

    def _block(self, index: int, block: dict[str, Any]) -> list[Frame]:
        start = _event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        )
        frames: list[Frame] = [(start, False)]
        if index == 0:  # the real API pings once, right after the first block opens
            frames.append((_event("ping", {"type": "ping"}), False))
        return frames

    def message(self, reply: Reply, body: Mapping[str, Any]) -> bytes:
        content: list[dict[str, Any]] = []
        if reply.text or not reply.calls:
            content.append({"type": "text", "text": reply.text})
        content.extend(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call.arguments)}
            for call in reply.calls
        )
        message = self._envelope(body)
        message.update(
            content=content,
            stop_reason=_STOP_REASONS[reply.finish],
            stop_sequence=None,
            usage={**self._usage(reply), "output_tokens": reply.output_tokens},
        )
        return _dumps(message).encode()

    def malformed_frame(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{\n\n'

    def error(self, kind: str, message: str | None = None) -> tuple[int, bytes]:
        status, type_, default = _ERRORS[kind]
        body = {
            "type": "error",
            "error": {"type": type_, "message": message or default},
            "request_id": "req_" + uuid.uuid4().hex[:24],
        }
        return status, _dumps(body).encode()

    def models(self, names: tuple[str, ...]) -> bytes:
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for name in names
        ]
        return _dumps(
            {"data": data, "has_more": False, "first_id": names[0], "last_id": names[-1]}
        ).encode()

    @staticmethod
    def _envelope(body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": "msg_01" + uuid.uuid4().hex[:22],
            "type": "message",
            "role": "assistant",
            "model": str(body.get("model") or "scripted"),
        }

    @staticmethod
    def _usage(reply: Reply) -> dict[str, Any]:
        # Anthropic counts cache reads apart from input_tokens; Staffer's Usage includes them.
        cached = min(reply.cached_input_tokens, reply.input_tokens)
        return {
            "input_tokens": reply.input_tokens - cached,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
        }


def _stop(index: int) -> Frame:
    return _event("content_block_stop", {"type": "content_block_stop", "index": index}), False
