"""AnthropicModel against the scripted model server's Messages API."""

from __future__ import annotations

import time
from typing import Any

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
    AnthropicModel,
    Finish,
    Message,
    ModelEvent,
    ModelRequest,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from staffer.testing.model_server import ScriptedModelServer

HELLO = {"scripts": [{"match": "", "steps": [{"text": "Hello there, how can I help you today?"}]}]}


def ask(text: str = "hi") -> ModelRequest:
    return ModelRequest(messages=[Message(role="user", content=text)])


def scenario(*faults: dict[str, Any]) -> dict[str, Any]:
    return {**HELLO, "chunk_chars": 8, "faults": list(faults)}


def model_for(server: ScriptedModelServer, **kw: Any) -> AnthropicModel:
    return AnthropicModel("scripted", base_url=server.anthropic_base_url, api_key="sk-ant", **kw)


async def test_streams_text_usage_and_finish_with_the_right_headers() -> None:
    with ScriptedModelServer(scenario()) as server:
        async with model_for(server, max_tokens=77) as model:
            events: list[ModelEvent] = [e async for e in model.stream(ask())]
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 3
    assert "".join(texts) == "Hello there, how can I help you today?"
    usage = events[-2]
    assert isinstance(usage, Usage)
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert events[-1] == Finish("stop")
    request = server.requests[-1]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert (request.body["max_tokens"], request.body["stream"]) == (77, True)


async def test_parallel_tool_use_blocks_are_reassembled() -> None:
    steps = [
        {
            "text": "Let me look.",
            "tool_calls": [
                {"name": "read_file", "arguments": {"path": "a/long/path/to/file.txt"}},
                {"name": "search", "arguments": {"query": "numbers", "limit": 5}},
            ],
            "usage": {"input_tokens": 200, "output_tokens": 40, "cached_input_tokens": 150},
        }
    ]
    scen = {"chunk_chars": 4, "scripts": [{"match": "go", "steps": steps}]}
    with ScriptedModelServer(scen) as server:
        async with model_for(server) as model:
            response = await model.complete(ask("go"))
    assert response.text == "Let me look."
    assert [(c.name, c.parsed_arguments()) for c in response.tool_calls] == [
        ("read_file", {"path": "a/long/path/to/file.txt"}),
        ("search", {"query": "numbers", "limit": 5}),
    ]
    assert all(c.id for c in response.tool_calls)
    assert response.finish_reason == "tool_calls"
    assert response.usage.output_tokens == 40
    assert response.usage.cached_input_tokens == 150
    assert response.usage.input_tokens >= 200  # cached tokens are included


async def test_messages_map_to_system_tool_use_and_merged_tool_results() -> None:
    steps = [{"tool_calls": [{"name": "read", "arguments": {}}]}, {"text": "all done"}]
    scen = {"scripts": [{"match": "work", "steps": steps}]}
    history = [
        Message(role="system", content="Be brief."),
        Message(role="system", content="Use tools."),
        Message(role="user", content="please work"),
        Message(
            role="assistant",
            content="Reading both.",
            tool_calls=[ToolCall("t1", "read", '{"p": "a"}'), ToolCall("t2", "read", "")],
        ),
        Message(role="tool", content="text of a", tool_call_id="t1"),
        Message(role="tool", content="missing", tool_call_id="t2", is_error=True),
    ]
    tool = ToolSpec("read", "Read a file.", {"type": "object"})
    with ScriptedModelServer(scen) as server:
        async with model_for(server) as model:
            response = await model.complete(ModelRequest(messages=history, tools=[tool]))
    assert response.text == "all done"
    body = server.requests[-1].body
    assert body["system"] == "Be brief.\n\nUse tools."
    assert body["messages"] == [
        {"role": "user", "content": "please work"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Reading both."},
                {"type": "tool_use", "id": "t1", "name": "read", "input": {"p": "a"}},
                {"type": "tool_use", "id": "t2", "name": "read", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "text of a"},
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "content": "missing",
                    "is_error": True,
                },
            ],
        },
    ]
    assert body["tools"] == [
        {"name": "read", "description": "Read a file.", "input_schema": {"type": "object"}}
    ]


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("401", AuthenticationError, 401),
        ("400", BadRequestError, 400),
        ("404", BadRequestError, 404),
        ("context_length", ContextLengthError, 400),
        ("500", ProviderUnavailableError, 500),
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
    exc = info.value
    assert type(exc) is error
    assert (exc.provider, exc.status) == ("anthropic", status)  # type: ignore[attr-defined]
    assert '"type":"error"' in exc.body.replace(" ", "")  # type: ignore[attr-defined]
    assert "Fix:" in str(exc)


async def test_auth_error_names_the_key_variable() -> None:
    with ScriptedModelServer(scenario({"kind": "401"})) as server:
        async with model_for(server) as model:
            with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY"):
                await model.complete(ask())


async def test_rate_limit_carries_retry_after() -> None:
    with ScriptedModelServer(scenario({"kind": "429", "retry_after": 2})) as server:
        async with model_for(server) as model:
            with pytest.raises(RateLimitError) as info:
                await model.complete(ask())
    assert info.value.retry_after == 2.0


async def test_stall_times_out_quickly() -> None:
    with ScriptedModelServer(scenario({"kind": "stall_mid", "after_chunks": 1, "seconds": 5})) as s:
        async with model_for(s, timeout=0.3) as model:
            started = time.perf_counter()
            with pytest.raises(ProviderUnavailableError, match=r"within 0\.3 s"):
                await model.complete(ask())
            assert time.perf_counter() - started < 1.5


async def test_drop_and_malformed_mid_stream() -> None:
    faults = ({"kind": "drop", "after_chunks": 2}, {"kind": "malformed", "after_chunks": 1})
    with ScriptedModelServer(scenario(*faults)) as server:
        async with model_for(server) as model:
            with pytest.raises(ProviderUnavailableError, match=r"dropped after \d+ chunks"):
                await model.complete(ask())
            with pytest.raises(ProtocolError, match="unreadable stream chunk") as info:
                await model.complete(ask())
            assert info.value.provider == "anthropic"
            assert (await model.complete(ask())).text.startswith("Hello")
