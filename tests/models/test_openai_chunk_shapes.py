"""Odd but valid OpenAI-compatible stream shapes, fed through httpx.MockTransport.

These are the quirks of real servers (Gemini reusing index 0, servers without
`index`, cumulative usage on every chunk, missing [DONE]); the scripted model
server speaks the canonical form, so the variations are tested here at the wire.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from staffer.errors import ContextLengthError, ProtocolError, ProviderUnavailableError
from staffer.models import Message, ModelRequest, ModelResponse, OpenAIChatModel, Usage

REQUEST = ModelRequest(messages=[Message(role="user", content="hi")])


def sse(*items: Any, done: bool = True, raw: bytes = b"") -> bytes:
    parts = [b"data: " + (json.dumps(i).encode() if not isinstance(i, bytes) else i) for i in items]
    body = b"\n\n".join(parts) + b"\n\n" + raw
    return body + (b"data: [DONE]\n\n" if done else b"")


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> Any:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}}
    if finish is not None:
        choice["finish_reason"] = finish
    return {"id": "x", "object": "chat.completion.chunk", "choices": [choice], **extra}


async def run(body: bytes, status: int = 200, pieces: int = 1) -> ModelResponse:
    async def stream() -> AsyncIterator[bytes]:
        step = max(len(body) // pieces, 1)
        for i in range(0, len(body), step):
            yield body[i : i + step]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=stream())

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with client, OpenAIChatModel("m", base_url="http://x/v1", client=client) as model:
        return await model.complete(REQUEST)


async def test_text_survives_any_byte_split() -> None:
    body = sse(chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}, "stop"))
    for pieces in (1, 3, len(body)):
        response = await run(body, pieces=pieces)
        assert (response.text, response.finish_reason) == ("Hello", "stop")


async def test_comments_empty_choices_extra_fields_and_no_usage() -> None:
    body = sse(
        {"choices": [], "model": "m"},
        chunk({"content": "a", "reasoning_content": "hmm"}, x_vendor={"k": 1}),
        chunk({}, None),
        chunk({"content": "b"}, "stop"),
    )
    response = await run(b": OPENROUTER PROCESSING\n\n" + body)
    assert response.text == "ab"
    assert response.usage == Usage()


async def test_gemini_style_parallel_calls_sharing_index_zero() -> None:
    def call(arguments: str, **first: str) -> Any:
        function = (
            {"name": first.pop("name"), "arguments": arguments}
            if first
            else {"arguments": arguments}
        )
        return {"tool_calls": [{"index": 0, **first, "function": function}]}

    body = sse(
        chunk(call("{}", id="a", name="f")),
        chunk(call('{"x', id="b", name="g")),
        chunk(call('": 1}'), "stop"),
    )
    response = await run(body)
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("a", "f", "{}"),
        ("b", "g", '{"x": 1}'),
    ]
    assert response.finish_reason == "tool_calls"  # "stop" with calls is normalised


async def test_calls_without_index_and_object_arguments() -> None:
    body = sse(
        chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": {"q": 1}}}]}),
        chunk({"tool_calls": [{"id": "b", "function": {"name": "g", "arguments": ""}}]}),
        chunk({"tool_calls": [{"function": {"arguments": "{}"}}]}, "tool_calls"),
    )
    response = await run(body)
    assert [(c.id, c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        ("a", "f", {"q": 1}),
        ("b", "g", {}),
    ]


async def test_cumulative_usage_on_every_chunk_is_counted_once() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": None}
    body = sse(chunk({"content": "a"}, usage=usage), chunk({"content": "b"}, "stop", usage=usage))
    assert (await run(body)).usage == Usage(10, 2, 0)


async def test_missing_done_is_fine_after_a_finish_reason() -> None:
    body = sse(chunk({"content": "ok"}, "length"), done=False)
    assert (await run(body)).finish_reason == "length"


async def test_stream_cut_before_any_finish_is_a_drop() -> None:
    with pytest.raises(ProviderUnavailableError, match="dropped after 1 chunks"):
        await run(sse(chunk({"content": "par"}), done=False))


async def test_events_glued_without_blank_lines_are_split() -> None:
    body = b"data: " + json.dumps(chunk({"content": "a"})).encode() + b"\n"
    body += b"data: " + json.dumps(chunk({"content": "b"}, "stop")).encode() + b"\n\n"
    assert (await run(body)).text == "ab"


async def test_valid_json_of_the_wrong_shape_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match=r"after 1 chunks.*unexpected shape"):
        await run(sse(chunk({"content": "a"}), [1, 2]))


async def test_error_object_inside_a_200_stream() -> None:
    err = {"error": {"message": "This model's maximum context length is 8192 tokens", "code": 400}}
    with pytest.raises(ContextLengthError) as info:
        await run(sse(chunk({"content": "a"}), err))
    assert info.value.provider == "openai"
    assert "8192" in (info.value.body or "")


async def test_vllm_style_error_body() -> None:
    with pytest.raises(ContextLengthError, match="context length"):
        await run(json.dumps({"detail": "context length exceeded: 9000 > 4096"}).encode(), 400)
