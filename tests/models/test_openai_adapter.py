"""OpenAIChatModel against the scripted model server speaking the real wire format."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from staffer.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    ProtocolError,
    ProviderUnavailableError,
    RateLimitError,
)
from staffer.models import (
    Finish,
    Message,
    ModelEvent,
    ModelRequest,
    OpenAIChatModel,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from staffer.testing.model_server import ScriptedModelServer

HELLO = {"scripts": [{"match": "", "steps": [{"text": "Hello there, how can I help you today?"}]}]}


def ask(text: str = "hi") -> ModelRequest:
    return ModelRequest(messages=[Message(role="user", content=text)])


def scenario(*faults: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**HELLO, "chunk_chars": 8, "faults": list(faults), **extra}


def model_for(server: ScriptedModelServer, **kw: Any) -> OpenAIChatModel:
    return OpenAIChatModel("scripted", base_url=server.openai_base_url, api_key="sk-test", **kw)


async def collect(model: OpenAIChatModel, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


async def test_streams_text_in_pieces_then_usage_and_finish() -> None:
    with ScriptedModelServer(scenario()) as server:
        async with model_for(server) as model:
            events = await collect(model, ask())
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 3
    assert "".join(texts) == "Hello there, how can I help you today?"
    assert isinstance(events[-2], Usage)
    assert events[-2].input_tokens > 0
    assert events[-2].output_tokens > 0
    assert events[-1] == Finish("stop")


async def test_request_carries_key_stream_options_and_limits() -> None:
    with ScriptedModelServer(scenario()) as server:
        async with model_for(server, max_tokens=321) as model:
            await model.complete(ModelRequest(messages=ask().messages, temperature=0.2))
    request = server.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = request.body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("scripted", 321, 0.2)
    assert "tools" not in body


async def test_parallel_tool_calls_are_reassembled_with_usage() -> None:
    steps = [
        {
            "tool_calls": [
                {"name": "read_file", "arguments": {"path": "notes/a long file name.txt"}},
                {"name": "search", "arguments": {"query": "quarterly numbers", "limit": 5}},
                {"name": "raw", "arguments": '{"not": "parsed by the server"}'},
            ],
            "usage": {"input_tokens": 120, "output_tokens": 30, "cached_input_tokens": 64},
        }
    ]
    scen = {"chunk_chars": 5, "scripts": [{"match": "go", "steps": steps}]}
    with ScriptedModelServer(scen) as server:
        async with model_for(server) as model:
            events = await collect(model, ask("go"))
            response = await model.complete(ask("go"))
    assert sum(isinstance(e, ToolCallDelta) for e in events) > 6  # arguments arrive in pieces
    assert [(c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        ("read_file", {"path": "notes/a long file name.txt"}),
        ("search", {"query": "quarterly numbers", "limit": 5}),
        ("raw", {"not": "parsed by the server"}),
    ]
    assert all(c.id.startswith("call_") for c in response.tool_calls)
    assert len({c.id for c in response.tool_calls}) == 3
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(120, 30, 64)


P1 = '{"p": 1}'


async def test_conversation_maps_to_the_wire_and_picks_the_next_step() -> None:
    steps = [{"tool_calls": [{"name": "read", "arguments": {"p": 1}}]}, {"text": "done"}]
    scen = {"scripts": [{"match": "work", "steps": steps}]}
    tool = ToolSpec("read", "Read a file.", {"type": "object", "properties": {"p": {}}})
    history = [
        Message(role="system", content="You are helpful."),
        Message(role="user", content="please work"),
        Message(
            role="assistant",
            tool_calls=[ToolCall("c1", "read", '{"p": 1}'), ToolCall("c2", "read", "")],
        ),
        Message(role="tool", content="file text", tool_call_id="c1", name="read"),
        Message(role="tool", content="no such file", tool_call_id="c2", name="read", is_error=True),
    ]
    with ScriptedModelServer(scen) as server:
        async with model_for(server) as model:
            response = await model.complete(ModelRequest(messages=history, tools=[tool]))
    assert response.text == "done"  # one assistant message after the user: step 1
    body = server.requests[-1].body
    assert body["messages"] == [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "please work"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read", "arguments": P1}},
                {"id": "c2", "type": "function", "function": {"name": "read", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "file text"},
        {"role": "tool", "tool_call_id": "c2", "content": "no such file"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read",
                "description": "Read a file.",
                "parameters": {"type": "object", "properties": {"p": {}}},
            },
        }
    ]


async def test_compatible_providers_send_the_tool_name() -> None:
    history = [
        Message(role="user", content="x"),
        Message(role="assistant", tool_calls=[ToolCall("c1", "read", "{}")]),
        Message(role="tool", content="r", tool_call_id="c1", name="read"),
    ]
    with ScriptedModelServer(scenario()) as server:
        async with model_for(server, provider_name="gemini") as model:
            assert model.name == "gemini:scripted"
            await model.complete(ModelRequest(messages=history))
    assert server.requests[-1].body["messages"][-1]["name"] == "read"


async def test_breaking_out_early_releases_the_connection() -> None:
    with ScriptedModelServer(scenario()) as server:
        async with model_for(server) as model:
            async for event in model.stream(ask()):
                assert isinstance(event, TextDelta)
                break
            assert (await model.complete(ask())).text.startswith("Hello")


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("401", AuthenticationError, 401),
        ("400", BadRequestError, 400),
        ("404", BadRequestError, 404),
        ("context_length", ContextLengthError, 400),
        ("500", ProviderUnavailableError, 500),
        ("503", ProviderUnavailableError, 503),
        ("529", ProviderUnavailableError, 529),
    ],
)
async def test_status_faults_become_typed_errors(
    fault: str, error: type[Exception], status: int
) -> None:
    with ScriptedModelServer(scenario({"kind": fault})) as server:
        async with model_for(server) as model:
            with pytest.raises(error) as info:
                await model.complete(ask())
            assert (await model.complete(ask())).text  # the fault was used up
    exc = info.value
    assert type(exc) is error
    assert (exc.provider, exc.status) == ("openai", status)  # type: ignore[attr-defined]
    assert exc.body.startswith('{"error":')  # type: ignore[attr-defined]
    assert ".." not in str(exc)
    assert "Fix:" in str(exc)
    assert "Traceback" not in str(exc)


async def test_auth_error_says_which_variable_to_check() -> None:
    with ScriptedModelServer(scenario({"kind": "401"})) as server:
        async with model_for(server, provider_name="groq", api_key_env="GROQ_API_KEY") as model:
            with pytest.raises(AuthenticationError) as info:
                await model.complete(ask())
    message = str(info.value)
    assert message.startswith("the key for groq was rejected (HTTP 401): Incorrect API key")
    assert "GROQ_API_KEY" in message


async def test_rate_limit_carries_retry_after() -> None:
    with ScriptedModelServer(scenario({"kind": "429", "retry_after": 1.5})) as server:
        async with model_for(server) as model:
            with pytest.raises(RateLimitError) as info:
                await model.complete(ask())
    assert info.value.retry_after == 1.5
    assert info.value.retryable
    assert "retry after 1.5 s" in str(info.value)


async def test_stall_before_the_answer_times_out_on_budget() -> None:
    with ScriptedModelServer(scenario({"kind": "stall", "seconds": 5})) as server:
        async with model_for(server, timeout=0.3) as model:
            started = time.perf_counter()
            with pytest.raises(ProviderUnavailableError, match=r"within 0\.3 s"):
                await model.complete(ask())
            assert time.perf_counter() - started < 1.5


async def test_stall_mid_stream_times_out_after_some_chunks() -> None:
    with ScriptedModelServer(scenario({"kind": "stall_mid", "after_chunks": 2, "seconds": 5})) as s:
        async with model_for(s, timeout=0.4) as model:
            seen: list[ModelEvent] = []

            async def consume() -> None:
                async for event in model.stream(ask()):
                    seen.append(event)

            started = time.perf_counter()
            with pytest.raises(ProviderUnavailableError) as info:
                await consume()
            assert time.perf_counter() - started < 1.5
    assert any(isinstance(e, TextDelta) for e in seen)
    assert "within 0.4 s" in str(info.value)


async def test_drop_mid_stream_is_unavailable_with_chunk_count() -> None:
    with ScriptedModelServer(scenario({"kind": "drop", "after_chunks": 2})) as server:
        async with model_for(server) as model:
            with pytest.raises(ProviderUnavailableError, match=r"dropped after \d+ chunks") as info:
                await model.complete(ask())
    assert info.value.retryable


async def test_malformed_chunk_is_a_protocol_error() -> None:
    with ScriptedModelServer(scenario({"kind": "malformed", "after_chunks": 1})) as server:
        async with model_for(server) as model:
            with pytest.raises(ProtocolError, match="unreadable stream chunk") as info:
                await model.complete(ask())
    assert info.value.provider == "openai"
    assert info.value.body


async def test_connection_refused_says_where_it_tried() -> None:
    with ScriptedModelServer(scenario()) as server:
        url = server.openai_base_url
    async with OpenAIChatModel("m", base_url=url, timeout=2) as model:
        with pytest.raises(ProviderUnavailableError, match="could not connect to openai at"):
            await model.complete(ask())


def test_request_body_is_plain_json() -> None:
    model = OpenAIChatModel("gpt-4o", max_tokens=10)
    body = model.build_body(ask("ünïcode"))
    assert body["max_completion_tokens"] == 10  # OpenAI proper wants the new name
    assert json.loads(json.dumps(body)) == body


async def test_one_keep_alive_connection_serves_consecutive_calls() -> None:
    connects: list[str] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.started":
            connects.append(name)

    async def add_trace(request: httpx.Request) -> None:
        request.extensions["trace"] = trace

    with ScriptedModelServer(scenario()) as server:
        async with httpx.AsyncClient(event_hooks={"request": [add_trace]}) as client:
            model = model_for(server, client=client)
            for _ in range(3):
                assert (await model.complete(ask())).text
            await model.aclose()  # a shared client is left open
            assert not client.is_closed
    assert len(connects) == 1
