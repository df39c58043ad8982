"""The scripted model server speaks the real wire formats: proven with the official SDKs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from staffer.testing.model_server import ScriptedModelServer

TOOL_SCENARIO: dict[str, Any] = {
    "chunk_chars": 4,
    "scripts": [
        {
            "match": "write.*file",
            "steps": [
                {
                    "text": "Writing.",
                    "tool_calls": [
                        {
                            "name": "write_file",
                            "arguments": {"path": "a.txt", "content": "hi there"},
                        }
                    ],
                },
                {"text": "Done: {last_tool_result}"},
            ],
        },
        {"match": "", "steps": [{"text": "Hello, {last_user}!"}]},
    ],
}


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer(TOOL_SCENARIO) as running:
        yield running


@pytest.fixture
def oai(server: ScriptedModelServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=server.openai_base_url, api_key="sk-test", max_retries=0, timeout=5
    ) as client:
        yield client


@pytest.fixture
def ant(server: ScriptedModelServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, api_key="sk-ant-test", max_retries=0, timeout=5
    ) as client:
        yield client


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def collect(chunks: Iterable[Any], into: list[str]) -> None:
    """Append each streamed chunk's content to `into`, so what arrived survives an error."""
    for chunk in chunks:
        into.append(chunk.choices[0].delta.content or "")


# --- OpenAI ---------------------------------------------------------------------


def test_openai_streams_text_in_chunks_with_usage(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-test",
        messages=[user("hi")],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["Hell", "o, h", "i!"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (1, 3)
    assert last.model == "gpt-test"


def test_openai_stream_ends_with_done_and_omits_usage_unless_asked(
    server: ScriptedModelServer,
) -> None:
    body = {"model": "m", "messages": [user("hi")], "stream": True}
    response = httpx.post(server.openai_base_url + "/chat/completions", json=body)

    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)


def test_openai_streams_tool_call_arguments_in_pieces(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(model="m", messages=[user("write a file")], stream=True)
    )

    fragments = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    first, rest = fragments[0], fragments[1:]
    assert first.id is not None
    assert first.id.startswith("call_")
    assert first.type == "function"
    assert first.function is not None
    assert first.function.name == "write_file"
    assert len(rest) > 1
    assert all(f.id is None and f.function is not None and f.function.name is None for f in rest)
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == {"path": "a.txt", "content": "hi there"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_non_streaming_reply(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model="m", messages=[user("write a file please")])

    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert choice.message.content == "Writing."
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "write_file"
    assert json.loads(call.function.arguments) == {"path": "a.txt", "content": "hi there"}
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == len("write a file please") // 4


def test_steps_are_chosen_statelessly_across_interleaved_conversations(
    oai: openai.OpenAI,
) -> None:
    def ask(messages: list[dict[str, Any]]) -> Any:
        return oai.chat.completions.create(model="m", messages=messages).choices[0].message  # type: ignore[arg-type]

    a1 = ask([user("write file A")])
    b1 = ask([user("write file B")])
    a_call = a1.tool_calls[0]
    a2 = ask(
        [
            user("write file A"),
            {"role": "assistant", "content": None, "tool_calls": [a_call.model_dump()]},
            {"role": "tool", "tool_call_id": a_call.id, "content": "wrote A"},
        ]
    )
    b_call = b1.tool_calls[0]
    b2 = ask(
        [
            user("write file B"),
            {"role": "assistant", "content": None, "tool_calls": [b_call.model_dump()]},
            {"role": "tool", "tool_call_id": b_call.id, "content": "wrote B"},
        ]
    )
    restart = ask([user("write file A"), {"role": "assistant", "content": "x"}, user("hello")])

    assert a1.tool_calls
    assert b1.tool_calls
    assert a2.content == "Done: wrote A"
    assert b2.content == "Done: wrote B"
    assert restart.content == "Hello, hello!"


def test_usage_override_and_cached_tokens(server: ScriptedModelServer, oai: openai.OpenAI) -> None:
    usage = {"input_tokens": 100, "output_tokens": 7, "cached_input_tokens": 40}
    server.set_scenario({"scripts": [{"match": "", "steps": [{"text": "x", "usage": usage}]}]})

    reply = oai.chat.completions.create(model="m", messages=[user("hi")])

    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (100, 7)
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 40


# --- Anthropic ------------------------------------------------------------------


def test_anthropic_streams_text_events_in_order(server: ScriptedModelServer) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [user("hi")], "stream": True}
    response = httpx.post(server.anthropic_base_url + "/v1/messages", json=body)

    events = [block.split("\n") for block in response.text.split("\n\n") if block]
    names = [lines[0].removeprefix("event: ") for lines in events]
    data = [json.loads(lines[1].removeprefix("data: ")) for lines in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [d["type"] for d in data] == names
    assert data[0]["message"]["usage"]["input_tokens"] == 1
    assert data[3]["delta"] == {"type": "text_delta", "text": "Hell"}
    assert data[-2]["delta"]["stop_reason"] == "end_turn"
    assert data[-2]["usage"] == {"output_tokens": 3}


def test_anthropic_sdk_reassembles_text_and_tool_use(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="m", max_tokens=50, messages=[user("write the file")]) as s:
        text = "".join(s.text_stream)
        message = s.get_final_message()

    assert text == "Writing."
    tool = message.content[1]
    assert tool.type == "tool_use"
    assert tool.id.startswith("toolu_")
    assert (tool.name, tool.input) == ("write_file", {"path": "a.txt", "content": "hi there"})
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == len("write the file") // 4
    # one token per streamed chunk: 2 text chunks + 10 argument chunks of 4 characters
    assert message.usage.output_tokens == 2 + 10


def test_anthropic_non_streaming_and_tool_result_round_trip(ant: anthropic.Anthropic) -> None:
    first = ant.messages.create(model="m", max_tokens=50, messages=[user("write the file")])
    tool = first.content[1]
    assert tool.type == "tool_use"

    second = ant.messages.create(
        model="m",
        max_tokens=50,
        messages=[
            user("write the file"),
            {"role": "assistant", "content": [block.model_dump() for block in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool.id, "content": "wrote 8 bytes"}
                ],
            },
        ],
    )

    assert second.content[0].type == "text"
    assert second.content[0].text == "Done: wrote 8 bytes"
    assert second.stop_reason == "end_turn"


def test_finish_override_maps_to_each_provider(
    server: ScriptedModelServer, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    server.set_scenario(
        {"scripts": [{"match": "", "steps": [{"text": "cut", "finish": "length"}]}]}
    )

    chat = oai.chat.completions.create(model="m", messages=[user("hi")])
    message = ant.messages.create(model="m", max_tokens=5, messages=[user("hi")])

    assert chat.choices[0].finish_reason == "length"
    assert message.stop_reason == "max_tokens"


def test_models_endpoint_in_both_shapes(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    assert [model.id for model in oai.models.list()] == ["scripted"]
    assert [model.id for model in ant.models.list()] == ["scripted"]


def test_api_keys_are_recorded_not_required(
    server: ScriptedModelServer, oai: openai.OpenAI
) -> None:
    oai.chat.completions.create(model="m", messages=[user("hi")])
    body = {"model": "m", "max_tokens": 5, "messages": [user("hi")]}
    httpx.post(server.url + "/v1/messages", json=body, headers={"x-api-key": "sk-ant-raw"})
    httpx.post(server.url + "/v1/messages", json=body)

    first, second, third = server.requests
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.body["messages"] == [user("hi")]
    assert (second.path, second.headers["x-api-key"]) == ("/v1/messages", "sk-ant-raw")
    assert "x-api-key" not in third.headers


# --- latency --------------------------------------------------------------------


def test_ttft_and_inter_chunk_delays(server: ScriptedModelServer, oai: openai.OpenAI) -> None:
    server.set_scenario(
        {
            "ttft_ms": 150,
            "inter_chunk_ms": 40,
            "chunk_chars": 1,
            "scripts": [{"match": "", "steps": [{"text": "abc"}]}],
        }
    )
    start = time.perf_counter()
    arrivals = []
    for chunk in oai.chat.completions.create(model="m", messages=[user("hi")], stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter() - start)

    assert len(arrivals) == 3
    assert 0.14 <= arrivals[0] < 0.5
    assert arrivals[2] - arrivals[0] >= 0.075


# --- faults ---------------------------------------------------------------------


def test_rate_limit_with_retry_after_then_success(
    server: ScriptedModelServer, oai: openai.OpenAI
) -> None:
    server.set_scenario({"faults": [{"kind": "429", "retry_after": 1.5}]})

    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="m", messages=[user("hi")])
    reply = oai.chat.completions.create(model="m", messages=[user("hi")])

    assert caught.value.response.headers["retry-after"] == "1.5"
    assert caught.value.code == "rate_limit_exceeded"
    assert reply.choices[0].message.content == "OK"


def test_anthropic_error_shape_and_count(
    server: ScriptedModelServer, ant: anthropic.Anthropic
) -> None:
    server.set_scenario({"faults": [{"kind": "429", "retry_after": 2, "count": 2}]})

    for _ in range(2):
        with pytest.raises(anthropic.RateLimitError) as caught:
            ant.messages.create(model="m", max_tokens=5, messages=[user("hi")])
        assert caught.value.response.headers["retry-after"] == "2"
        assert caught.value.body["type"] == "error"  # type: ignore[index]
        assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert ant.messages.create(model="m", max_tokens=5, messages=[user("hi")]).content


@pytest.mark.parametrize(
    ("kind", "status", "openai_type", "anthropic_type"),
    [
        ("400", 400, "invalid_request_error", "invalid_request_error"),
        ("401", 401, "invalid_request_error", "authentication_error"),
        ("404", 404, "invalid_request_error", "not_found_error"),
        ("500", 500, "server_error", "api_error"),
        ("502", 502, "server_error", "api_error"),
        ("503", 503, "server_error", "overloaded_error"),
        ("504", 504, "server_error", "api_error"),
    ],
)
def test_status_faults_in_each_providers_shape(
    server: ScriptedModelServer, kind: str, status: int, openai_type: str, anthropic_type: str
) -> None:
    server.set_scenario({"faults": [kind, kind]})
    body = {"model": "m", "max_tokens": 5, "messages": [user("hi")], "stream": True}

    chat = httpx.post(server.openai_base_url + "/chat/completions", json=body)
    message = httpx.post(server.anthropic_base_url + "/v1/messages", json=body)

    assert (chat.status_code, message.status_code) == (status, status)
    assert chat.json()["error"]["type"] == openai_type
    assert set(chat.json()["error"]) == {"message", "type", "param", "code"}
    assert message.json()["type"] == "error"
    assert message.json()["error"]["type"] == anthropic_type


def test_context_length_fault(server: ScriptedModelServer, oai: openai.OpenAI) -> None:
    server.set_scenario({"faults": ["context_length", "context_length"]})

    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="m", messages=[user("hi")])
    body = {"model": "m", "max_tokens": 5, "messages": [user("hi")]}
    message = httpx.post(server.url + "/v1/messages", json=body)

    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length" in caught.value.message
    assert message.status_code == 400
    assert message.json()["error"]["message"].startswith("prompt is too long")


def test_stall_makes_the_client_time_out(server: ScriptedModelServer) -> None:
    server.set_scenario({"faults": [{"kind": "stall", "seconds": 10}]})
    with (
        openai.OpenAI(
            base_url=server.openai_base_url, api_key="k", max_retries=0, timeout=0.3
        ) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        client.chat.completions.create(model="m", messages=[user("hi")], stream=True)


def test_stall_mid_stream_times_out_after_some_chunks(server: ScriptedModelServer) -> None:
    server.set_scenario(
        {**TOOL_SCENARIO, "faults": [{"kind": "stall_mid", "after_chunks": 2, "seconds": 10}]}
    )
    received: list[str] = []
    with (
        openai.OpenAI(
            base_url=server.openai_base_url, api_key="k", max_retries=0, timeout=0.3
        ) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        collect(
            client.chat.completions.create(model="m", messages=[user("hi")], stream=True), received
        )
    assert received == ["", "Hell"]


def test_stall_mid_anthropic_stream(server: ScriptedModelServer) -> None:
    server.set_scenario({"faults": [{"kind": "stall_mid", "after_chunks": 3, "seconds": 10}]})
    body = {"model": "m", "max_tokens": 5, "messages": [user("hi")], "stream": True}
    received: list[str] = []
    with (
        httpx.stream("POST", server.url + "/v1/messages", json=body, timeout=0.3) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        received.extend(line for line in response.iter_lines() if line.startswith("event:"))
    assert received == ["event: message_start", "event: content_block_start", "event: ping"]


def test_drop_cuts_the_stream(
    server: ScriptedModelServer, oai: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    server.set_scenario({"faults": [{"kind": "drop", "after_chunks": 2}]})
    received: list[str] = []

    with caplog.at_level(logging.INFO), pytest.raises(openai.APIConnectionError):
        collect(
            oai.chat.completions.create(model="m", messages=[user("hi")], stream=True), received
        )

    assert received == ["", "OK"]
    assert not [r for r in caplog.records if "without completing" in r.getMessage()]


def test_drop_cuts_a_non_streamed_body(server: ScriptedModelServer, oai: openai.OpenAI) -> None:
    server.set_scenario({"faults": ["drop"]})
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="m", messages=[user("hi")])


def test_malformed_chunk_breaks_json_parsing(
    server: ScriptedModelServer, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    server.set_scenario({"faults": [{"kind": "malformed", "after_chunks": 1}] * 2})

    with pytest.raises(ValueError, match=r"Expecting|Unterminated|delimiter"):
        list(oai.chat.completions.create(model="m", messages=[user("hi")], stream=True))
    with pytest.raises(ValueError, match=r"Expecting|Unterminated|delimiter"):
        list(ant.messages.create(model="m", max_tokens=5, messages=[user("hi")], stream=True))


def test_seeded_fault_rate_is_reproducible(server: ScriptedModelServer) -> None:
    scenario = {"fault_rate": {"rate": 0.5, "kinds": ["500", "503"], "seed": 7}}
    body = {"model": "m", "messages": [user("hi")]}

    def statuses() -> list[int]:
        server.set_scenario(scenario)
        url = server.openai_base_url + "/chat/completions"
        with httpx.Client() as client:
            return [client.post(url, json=body).status_code for _ in range(30)]

    first = statuses()
    assert first == statuses()
    assert {200, 500, 503} == set(first)


async def test_async_context_manager_with_async_client() -> None:
    async with (
        ScriptedModelServer(TOOL_SCENARIO) as server,
        openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="k", max_retries=0) as client,
    ):
        stream = await client.chat.completions.create(
            model="m", messages=[user("write the file")], stream=True
        )
        names = [
            call.function.name
            async for chunk in stream
            for call in chunk.choices[0].delta.tool_calls or []
            if call.function and call.function.name
        ]
    assert names == ["write_file"]
