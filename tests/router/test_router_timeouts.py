"""The router's own timeouts count the provider's time, never the caller's."""

from __future__ import annotations

import asyncio

import pytest
from tests.router._kit import ask, deployment, model_requests, router_config, scenario

from staffer.models import TextDelta
from staffer.router import Router, Timeouts


async def test_a_slow_caller_does_not_trip_the_idle_timeout(servers):
    a = servers({**scenario("y" * 32), "chunk_chars": 8})
    config = router_config(deployment("a", a, timeouts=Timeouts(ttft=0.2, idle=0.2)))
    text = []
    async with Router(config) as router:
        async for event in router.stream(ask()):
            if isinstance(event, TextDelta):
                text.append(event.text)
                await asyncio.sleep(0.3)  # longer than the idle timeout, on the caller's side
    assert "".join(text) == "y" * 32
    assert model_requests(a) == 1


async def test_a_slow_provider_between_chunks_trips_it(servers):
    a = servers({**scenario("y" * 32), "chunk_chars": 8, "inter_chunk_ms": 400})
    config = router_config(deployment("a", a, timeouts=Timeouts(ttft=5, idle=0.15)))
    async with Router(config) as router:
        with pytest.raises(Exception, match=r"went silent for more than 0\.15 s"):
            await router.complete(ask())


async def test_cancelling_the_caller_is_not_mistaken_for_a_timeout(servers):
    a = servers(scenario("late", faults=[{"kind": "stall", "seconds": 5}]))
    config = router_config(deployment("a", a, timeouts=Timeouts(ttft=0.2)))
    async with Router(config) as router:
        task = asyncio.create_task(router.complete(ask()))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        state = router.deployment_states()[0]
    assert state["inflight"] == 0
    assert state["consecutive_failures"] == 0


async def test_the_first_token_deadline_is_separate_from_the_idle_gap(servers):
    a = servers({**scenario("y" * 16), "chunk_chars": 8, "ttft_ms": 300})
    config = router_config(deployment("a", a, timeouts=Timeouts(ttft=2, idle=0.1)))
    async with Router(config) as router:
        assert (await router.complete(ask())).text == "y" * 16
