"""Retries and fallback against real scripted servers: every kind of injected failure."""

from __future__ import annotations

import logging

import pytest
from tests.router._kit import (
    Recorder,
    Sleeps,
    ask,
    closed_port_url,
    deployment,
    model_requests,
    router_config,
    scenario,
)

from staffer.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    ProviderUnavailableError,
)
from staffer.models import TextDelta, ToolCallDelta
from staffer.router import (
    NoDeploymentAvailableError,
    Router,
    StreamInterruptedError,
    UnknownAliasError,
)

LONG = "x" * 64  # eight 8-character chunks: room to fail in the middle


async def collect(router: Router, **kw: object) -> str:
    text = []
    async for event in router.stream(ask(**kw)):  # type: ignore[arg-type]
        if isinstance(event, TextDelta):
            text.append(event.text)
    return "".join(text)


@pytest.mark.parametrize("kind", ["500", "502", "503", "504", "drop", "malformed"])
async def test_retryable_failure_is_retried_on_the_same_deployment(servers, kind):
    a = servers(scenario("from a", faults=[{"kind": kind, "after_chunks": 0}]))
    b = servers(scenario("from b"))
    rec, sleeps = Recorder(), Sleeps()
    async with Router(
        router_config(deployment("a", a), deployment("b", b)), observers=[rec], sleep=sleeps
    ) as router:
        assert await collect(router) == "from a"
    assert (model_requests(a), model_requests(b)) == (2, 0)
    assert rec.kinds() == [("retry", "a")]
    assert [x.ok for x in rec.attempts] == [False, True]
    assert [x.attempt for x in rec.attempts] == [1, 2]
    assert len(sleeps.calls) == 1


async def test_exhausted_retries_fall_back_and_the_fallback_is_logged(servers, caplog):
    a = servers(scenario("from a", faults=[{"kind": "503", "count": 3}]))
    b = servers(scenario("from b"))
    rec = Recorder()
    config = router_config(deployment("a", a, max_retries=2), deployment("b", b))
    caplog.set_level(logging.INFO, logger="staffer.router")
    async with Router(config, observers=[rec], sleep=Sleeps()) as router:
        assert await collect(router) == "from b"
    assert (model_requests(a), model_requests(b)) == (3, 1)
    assert rec.kinds() == [("retry", "a"), ("retry", "a"), ("fallback", "a")]
    fallback = rec.events[-1]
    assert fallback.attempt == 3  # the attempt that failed
    assert "503" in fallback.cause
    assert "falling back to b" in fallback.cause
    assert fallback.latency is not None
    assert fallback.alias == "main"
    lines = [r.getMessage() for r in caplog.records if r.name == "staffer.router"]
    assert any(line.startswith("fallback deployment=a alias=main attempt=3") for line in lines)
    assert sum("retry deployment=a" in line for line in lines) == 2


async def test_retry_waits_at_least_retry_after(servers):
    a = servers(scenario("from a", faults=[{"kind": "429", "retry_after": 2.5}]))
    sleeps = Sleeps()
    async with Router(router_config(deployment("a", a)), sleep=sleeps) as router:
        assert await collect(router) == "from a"
    assert len(sleeps.calls) == 1
    assert sleeps.calls[0] >= 2.5


async def test_a_retry_after_longer_than_the_limit_falls_back_at_once(servers):
    a = servers(scenario("from a", faults=[{"kind": "429", "retry_after": 120}]))
    b = servers(scenario("from b"))
    sleeps, rec = Sleeps(), Recorder()
    config = router_config(deployment("a", a, retry_max_wait=30), deployment("b", b))
    async with Router(config, sleep=sleeps, observers=[rec]) as router:
        assert await collect(router) == "from b"
    assert sleeps.calls == []
    assert rec.kinds() == [("fallback", "a")]


async def test_backoff_grows_exponentially_with_full_jitter(servers):
    a = servers(scenario("ok", faults=[{"kind": "500", "count": 3}]))
    sleeps = Sleeps()
    config = router_config(deployment("a", a, max_retries=3, retry_backoff=1.0))
    async with Router(config, sleep=sleeps) as router:
        assert await collect(router) == "ok"
    assert len(sleeps.calls) == 3
    for i, wait in enumerate(sleeps.calls):
        assert 0 <= wait <= 2**i


async def test_connect_errors_fall_back(servers):
    b = servers(scenario("from b"))
    rec = Recorder()
    config = router_config(deployment("dead", closed_port_url(), max_retries=1), deployment("b", b))
    async with Router(config, observers=[rec], sleep=Sleeps()) as router:
        assert await collect(router) == "from b"
    assert rec.kinds() == [("retry", "dead"), ("fallback", "dead")]
    assert "could not connect" in rec.attempts[0].error


async def test_stall_before_the_first_token_falls_back_within_the_ttft_timeout(servers):
    a = servers(scenario("from a", faults=[{"kind": "stall", "seconds": 10}]))
    b = servers(scenario("from b"))
    rec = Recorder()
    config = router_config(deployment("a", a, timeouts=_timeouts(ttft=0.3)), deployment("b", b))
    async with Router(config, observers=[rec]) as router:
        assert await collect(router) == "from b"
    assert rec.kinds() == [("fallback", "a")]  # a stall is not retried on the same deployment
    assert "no first token within 0.3 s" in rec.events[0].cause
    assert 0.25 < rec.attempts[0].duration < 2


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "stall_mid", "after_chunks": 3, "seconds": 10},
        {"kind": "drop", "after_chunks": 3},
        {"kind": "malformed", "after_chunks": 3},
    ],
)
async def test_no_request_is_retried_after_its_stream_started(servers, fault):
    a = servers({**scenario(LONG, faults=[fault]), "chunk_chars": 8})
    b = servers(scenario("from b"))
    rec = Recorder()
    config = router_config(deployment("a", a, timeouts=_timeouts(idle=0.3)), deployment("b", b))
    seen: list[str] = []

    async def read() -> None:
        async for event in router.stream(ask()):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    async with Router(config, observers=[rec], sleep=Sleeps()) as router:
        with pytest.raises(StreamInterruptedError) as info:
            await read()
        # the router keeps serving
        assert await collect(router) == LONG
    assert seen == ["x" * 8] * 2  # what came before the failure, once, and nothing else
    assert "not retried" in str(info.value)
    assert (model_requests(a), model_requests(b)) == (2, 0)
    assert [e.kind for e in rec.events] == []


async def test_user_errors_are_not_retried(servers):
    a = servers(scenario("from a", faults=["400"]))
    b = servers(scenario("from b"))
    sleeps = Sleeps()
    async with Router(
        router_config(deployment("a", a), deployment("b", b)), sleep=sleeps
    ) as router:
        with pytest.raises(BadRequestError) as info:
            await collect(router)
    assert info.value.status == 400
    assert (model_requests(a), model_requests(b)) == (1, 0)
    assert sleeps.calls == []


@pytest.mark.parametrize("kind", ["401", "404"])
async def test_a_rejected_key_or_unknown_model_goes_to_the_next_deployment(servers, kind):
    a = servers(scenario("from a", faults=[kind]))
    b = servers(scenario("from b"))
    sleeps = Sleeps()
    async with Router(
        router_config(deployment("a", a), deployment("b", b)), sleep=sleeps
    ) as router:
        assert await collect(router) == "from b"
    assert (model_requests(a), model_requests(b)) == (1, 1)
    assert sleeps.calls == []


async def test_a_single_deployment_error_is_raised_unchanged(servers):
    a = servers(scenario("from a", faults=["401"]))
    async with Router(router_config(deployment("a", a))) as router:
        with pytest.raises(AuthenticationError):
            await collect(router)


async def test_context_length_falls_back_only_to_a_larger_window(servers):
    a = servers(scenario("from a", faults=["context_length"]))
    small = servers(scenario("from small"))
    large = servers(scenario("from large"))
    config = router_config(
        deployment("a", a, context_window=8000),
        deployment("small", small, context_window=4000),
        deployment("large", large, context_window=32000),
    )
    async with Router(config, sleep=Sleeps()) as router:
        assert await collect(router) == "from large"
    assert (model_requests(a), model_requests(small), model_requests(large)) == (1, 0, 1)


async def test_context_length_without_a_larger_window_says_so(servers):
    a = servers(scenario("from a", faults=["context_length"]))
    b = servers(scenario("from b"))
    config = router_config(
        deployment("a", a, context_window=8000), deployment("b", b, context_window=8000)
    )
    async with Router(config) as router:
        with pytest.raises(NoDeploymentAvailableError) as info:
            await collect(router)
    assert isinstance(info.value.__cause__, ContextLengthError)
    assert "b: context window not larger than 8000" in str(info.value)
    assert model_requests(b) == 0


async def test_everything_failing_names_every_deployment(servers):
    a = servers(scenario("a", fault_rate={"rate": 1.0, "kinds": ["500"]}))
    b = servers(scenario("b", fault_rate={"rate": 1.0, "kinds": ["503"]}))
    config = router_config(deployment("a", a, max_retries=0), deployment("b", b, max_retries=0))
    async with Router(config) as router:
        with pytest.raises(ProviderUnavailableError) as info:
            await collect(router)
    message = str(info.value)
    assert "no deployment of 'main' could answer (2 attempts)" in message
    assert "a: ProviderUnavailableError" in message
    assert "HTTP 503" in message


async def test_unknown_alias_lists_the_known_ones(servers):
    a = servers()
    async with Router(router_config(deployment("a", a))) as router:
        with pytest.raises(UnknownAliasError) as info:
            await collect(router, model="smrt")
        assert await collect(router) == "Hello!"
        assert await collect(router, model="a") == "Hello!"  # a deployment by name
    assert "Aliases: main; deployments: a" in str(info.value)


async def test_the_alias_never_reaches_the_wire_and_metadata_reaches_observers(servers):
    a = servers()
    rec = Recorder()
    async with Router(router_config(deployment("a", a)), observers=[rec]) as router:
        request = ask(model="main", metadata={"agent": "main", "session": "s1"})
        await router.complete(request)
    assert a.requests[0].body["model"] == "m-a"
    attempt = rec.attempts[0]
    assert attempt.metadata == {"agent": "main", "session": "s1"}
    assert attempt.ok
    assert attempt.alias == "main"
    assert attempt.ttft is not None
    assert attempt.usage.output_tokens > 0


async def test_requests_with_tools_skip_deployments_without_tools(servers):
    from staffer.models import ToolSpec

    plain = servers(scenario("from plain"))
    tooled = servers(scenario("from tooled"))
    config = router_config(
        deployment("plain", plain, capabilities=frozenset()), deployment("tooled", tooled)
    )
    spec = ToolSpec("noop", "does nothing", {"type": "object", "properties": {}})
    async with Router(config) as router:
        assert await collect(router, tools=[spec]) == "from tooled"
        assert await collect(router) == "from plain"


async def test_a_tool_call_with_broken_arguments_is_passed_through(servers):
    broken = {"name": "write_file", "arguments": '{"path": "a.txt", "content": '}
    a = servers({"scripts": [{"match": "", "steps": [{"tool_calls": [broken]}]}]})
    async with Router(router_config(deployment("a", a))) as router:
        response = await router.complete(ask())
        events = [e async for e in router.stream(ask())]
    assert response.tool_calls[0].arguments == broken["arguments"]
    with pytest.raises(ValueError, match="not valid JSON"):
        response.tool_calls[0].parsed_arguments()
    assert any(isinstance(e, ToolCallDelta) for e in events)


async def test_a_caller_that_stops_reading_releases_the_deployment(servers):
    a = servers({**scenario(LONG), "chunk_chars": 8})
    rec = Recorder()
    async with Router(router_config(deployment("a", a)), observers=[rec]) as router:
        stream = router.stream(ask())
        await anext(stream)
        await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        state = router.deployment_states()[0]
        assert await collect(router) == LONG
    assert state["inflight"] == 0
    assert state["state"] == "closed"
    assert rec.attempts[0].cancelled
    assert not rec.attempts[0].ok


def _timeouts(**kw: float):
    from staffer.router import Timeouts

    return Timeouts(**kw)
