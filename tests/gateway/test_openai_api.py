"""The OpenAI-compatible endpoint, driven by the official `openai` client against a live
gateway whose model is the scripted model server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from tests.conftest import LiveGateway, write_model_config

from staffer.store import SQLiteStore, hash_api_key, new_api_key, shown_prefix

GREETING = "Hello from the scripted model, in several chunks."  # 49 chars: 4 chunks of 16
SCENARIO: dict[str, Any] = {
    "scripts": [
        {
            "match": "weather",
            "steps": [
                {
                    "text": "Let me check.",
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_w1"}
                    ],
                },
                {"text": "It is {last_tool_result} in Paris."},
            ],
        },
        {
            "match": "",
            "steps": [
                {
                    "text": GREETING,
                    "usage": {"input_tokens": 12, "output_tokens": 7, "cached_input_tokens": 4},
                }
            ],
        },
    ]
}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
Start = Callable[..., LiveGateway]


def create_key(gw: LiveGateway, user: str, name: str = "") -> str:
    """A new key for `user`, written straight to the gateway's store file."""
    key = new_api_key()

    async def work() -> None:
        async with SQLiteStore(gw.home.db_file) as store:
            await store.create_api_key(
                user=user, key_hash=hash_api_key(key), prefix=shown_prefix(key), name=name
            )

    asyncio.run(work())
    return key


def client(gw: LiveGateway, key: str) -> OpenAI:
    return OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, timeout=30)


def totals_once_cancelled(gw: LiveGateway, cancelled: int, alias: str = "fast") -> dict[str, Any]:
    """The router's totals for `alias` once `cancelled` attempts were cancelled (or after
    10 s, for the caller's assertion to say what they were)."""
    deadline = time.monotonic() + 10
    with gw.client() as admin:
        while True:
            aliases = admin.get("/api/router").json()["aliases"]
            totals: dict[str, Any] = aliases.get(alias, {}).get("totals", {})
            if totals.get("cancelled") == cancelled or time.monotonic() > deadline:
                return totals
            time.sleep(0.05)


def with_router(gw: LiveGateway, extra: str = "") -> None:
    """Reconfigure `gw` with deployments and aliases on its scripted server, and restart."""
    assert gw.server is not None
    url = gw.server.openai_base_url
    write_model_config(
        gw.home,
        gw.server,
        f'[deployments.primary]\nprovider = "openai"\nmodel = "scripted"\nbase_url = "{url}"\n'
        "price_input = 1.0\nprice_output = 2.0\nmax_retries = 0\n"
        '[aliases.fast]\ndeployments = ["primary"]\n' + extra,
    )
    gw.restart()


@pytest.fixture
def gw(live_gateway: Start) -> LiveGateway:
    return live_gateway(SCENARIO)


def test_non_streaming_completion(gw: LiveGateway) -> None:
    key = create_key(gw, "alice")
    answer = client(gw, key).chat.completions.create(
        model="scripted",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        max_tokens=50,
        temperature=0.2,
    )
    assert answer.object == "chat.completion"
    assert answer.model == "scripted"
    assert answer.id.startswith("chatcmpl-")
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == GREETING
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (12, 7)
    assert answer.usage.total_tokens == 19
    assert answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 4
    assert gw.server is not None
    sent = gw.server.requests[-1].body
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert sent["max_tokens"] == 50
    assert sent["temperature"] == 0.2
    assert sent["model"] == "scripted"
    again = client(gw, key).chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "hi"}]
    )
    assert again.id != answer.id
    assert len(again.id) == len(answer.id) == len("chatcmpl-") + 24


def test_streaming_passes_every_chunk_through(gw: LiveGateway) -> None:
    key = create_key(gw, "alice")
    chunks = list(
        client(gw, key).chat.completions.create(
            model="scripted",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [
        c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content
    ]
    assert texts == [GREETING[i : i + 16] for i in range(0, len(GREETING), 16)]
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7
    assert {c.id for c in chunks} == {chunks[0].id}
    # role + 4 text + finish + usage: the same number of events the upstream sent
    assert len(chunks) == 7


def test_streaming_without_usage_and_raw_wire_format(gw: LiveGateway) -> None:
    key = create_key(gw, "alice")
    body = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert not any("usage" in p for p in payloads)
    assert len(payloads) == 6


def test_tool_calls_round_trip(gw: LiveGateway) -> None:
    api = client(gw, create_key(gw, "alice"))
    messages: list[Any] = [{"role": "user", "content": "What is the weather?"}]
    first = api.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert (call.id, call.function.name) == ("call_w1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    second = api.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is sunny in Paris."
    assert second.choices[0].finish_reason == "stop"

    assert gw.server is not None
    sent = gw.server.requests[-1].body
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_w1"
    tool_result = sent["messages"][2]
    assert tool_result["role"] == "tool"
    assert (tool_result["tool_call_id"], tool_result["content"]) == ("call_w1", "sunny")


def test_streamed_tool_call_deltas(gw: LiveGateway) -> None:
    stream = client(gw, create_key(gw, "alice")).chat.completions.create(
        model="scripted",
        messages=[{"role": "user", "content": "weather please"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    ids, names, arguments, finish = [], [], "", None
    for chunk in stream:
        delta = chunk.choices[0].delta
        for call in delta.tool_calls or ():
            assert call.index == 0
            if call.id:
                ids.append(call.id)
            if call.function and call.function.name:
                names.append(call.function.name)
            if call.function and call.function.arguments:
                arguments += call.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert (ids, names, finish) == (["call_w1"], ["get_weather"], "tool_calls")
    assert json.loads(arguments) == {"city": "Paris"}


def test_models_list_the_single_model(gw: LiveGateway) -> None:
    models = client(gw, create_key(gw, "alice")).models.list()
    assert [m.id for m in models.data] == ["scripted"]
    assert models.data[0].object == "model"


def test_models_and_requests_through_the_router(gw: LiveGateway) -> None:
    with_router(gw)
    api = client(gw, create_key(gw, "alice"))
    assert [m.id for m in api.models.list().data] == ["fast", "primary", "model"]
    for name in ("fast", "primary"):
        answer = api.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content == GREETING
        assert answer.model == name
    with pytest.raises(openai.NotFoundError) as info:
        api.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"
    assert "fast" in info.value.message


def test_calls_are_accounted_to_the_keys_user(gw: LiveGateway) -> None:
    with_router(gw)
    api = client(gw, create_key(gw, "bob"))
    api.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hi"}], user="end-user-7"
    )
    deadline = time.monotonic() + 10
    with gw.client() as admin:
        while True:
            calls = admin.get("/api/usage/calls").json()["calls"]
            if calls or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert [(c["user"], c["channel"], c["alias"]) for c in calls] == [("bob", "api", "fast")]


def test_bad_key_is_an_authentication_error(gw: LiveGateway) -> None:
    create_key(gw, "alice")
    for bad in ("sk-staffer-not-a-real-key", "something-else"):
        with pytest.raises(openai.AuthenticationError) as info:
            client(gw, bad).chat.completions.create(
                model="scripted", messages=[{"role": "user", "content": "hi"}]
            )
        assert info.value.status_code == 401
        assert info.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(gw, "sk-staffer-nope").models.list()
    response = httpx.get(f"{gw.url}/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_revoked_key_is_refused(gw: LiveGateway) -> None:
    key = create_key(gw, "alice")

    async def revoke() -> None:
        async with SQLiteStore(gw.home.db_file) as store:
            (record,) = await store.list_api_keys(user="alice")
            await store.revoke_api_key(record.id)

    asyncio.run(revoke())
    with pytest.raises(openai.AuthenticationError):
        client(gw, key).models.list()


def test_gateway_token_is_accepted_and_other_routes_still_need_it(gw: LiveGateway) -> None:
    answer = client(gw, gw.token).chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == GREETING
    key = create_key(gw, "alice")
    refused = httpx.get(f"{gw.url}/api/sessions", headers={"authorization": f"Bearer {key}"})
    assert refused.status_code == 401


def test_unknown_model_is_not_found(gw: LiveGateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client(gw, create_key(gw, "alice")).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.code == "model_not_found"
    assert "scripted" in info.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "scripted"}, "messages"),
        (
            {"model": "scripted", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
        ),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "scripted", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        (
            {"model": "scripted", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "max_tokens",
        ),
    ],
)
def test_bad_requests_name_the_field(gw: LiveGateway, body: dict[str, Any], param: str) -> None:
    api = client(gw, create_key(gw, "alice"))
    with pytest.raises(openai.BadRequestError) as info:
        api.post("/chat/completions", body=body, cast_to=httpx.Response)
    assert info.value.status_code == 400
    assert info.value.param == param


def test_invalid_json_is_a_bad_request(gw: LiveGateway) -> None:
    response = httpx.post(
        f"{gw.url}/v1/chat/completions",
        content=b"{not json",
        headers={"authorization": f"Bearer {gw.token}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("fault", "status"),
    [("429", 429), ("503", 503), ("500", 502), ("401", 502), ("context_length", 400)],
)
@pytest.mark.parametrize("stream", [False, True])
def test_provider_failures_keep_their_status(
    gw: LiveGateway, fault: str, status: int, stream: bool
) -> None:
    assert gw.server is not None
    gw.server.set_scenario({**SCENARIO, "faults": [{"kind": fault, "retry_after": 3}]})
    api = client(gw, create_key(gw, "alice"))

    def ask() -> object:
        answer = api.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
        return list(answer) if stream else answer  # type: ignore[call-overload]

    with pytest.raises(openai.APIStatusError) as info:
        ask()
    assert info.value.status_code == status
    if status == 429:
        assert info.value.response.headers["retry-after"] == "3"


def test_router_giving_up_is_a_service_error(gw: LiveGateway) -> None:
    with_router(gw)
    assert gw.server is not None
    gw.server.set_scenario({**SCENARIO, "faults": [{"kind": "503", "count": 5}]})
    with pytest.raises(openai.APIStatusError) as info:
        client(gw, create_key(gw, "alice")).chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 503


def test_failure_mid_stream_is_an_error_event(gw: LiveGateway) -> None:
    assert gw.server is not None
    gw.server.set_scenario({**SCENARIO, "faults": [{"kind": "drop", "after_chunks": 2}]})
    stream = client(gw, create_key(gw, "alice")).chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received: list[str] = []

    def read() -> None:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(openai.APIError, match=r"unavailable|dropped|ended"):
        read()
    assert "".join(received) == GREETING[:16]


def test_without_a_model_the_endpoint_says_how_to_connect_one(live_gateway: Start) -> None:
    gw = live_gateway(None)
    with pytest.raises(openai.APIStatusError) as info:
        client(gw, gw.token).chat.completions.create(
            model="x", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 503
    assert info.value.code == "no_model"
