"""Circuit breakers: the state machine alone, then open and recover against real servers."""

from __future__ import annotations

import logging

import pytest
from tests.router._kit import (
    FakeClock,
    Recorder,
    Sleeps,
    ask,
    deployment,
    model_requests,
    router_config,
    scenario,
)

from staffer.router import BreakerConfig, CircuitBreaker, NoDeploymentAvailableError, Router


def test_opens_after_consecutive_failures_and_recovers_through_one_probe() -> None:
    breaker = CircuitBreaker(BreakerConfig(failures=3, cooldown=10))
    assert [breaker.record_failure(t) for t in (0, 1)] == [None, None]
    assert breaker.record_success(2) is None  # a success resets the streak
    assert [breaker.record_failure(t) for t in (3, 4, 5)] == [None, None, "open"]
    assert breaker.allow(14.9) == (False, None)
    assert breaker.allow(15) == (True, "half_open")
    assert breaker.allow(15.1) == (False, None)  # one probe at a time
    assert breaker.record_success(16) == "closed"
    assert breaker.allow(16) == (True, None)
    assert breaker.consecutive_failures == 0


def test_a_failed_probe_opens_again_for_a_whole_cooldown() -> None:
    breaker = CircuitBreaker(BreakerConfig(failures=1, cooldown=10))
    assert breaker.record_failure(0) == "open"
    assert breaker.allow(10) == (True, "half_open")
    assert breaker.record_failure(11) == "open"
    assert breaker.allow(20) == (False, None)
    assert breaker.allow(21) == (True, "half_open")


def test_an_abandoned_probe_lets_the_next_request_probe() -> None:
    breaker = CircuitBreaker(BreakerConfig(failures=1, cooldown=1))
    breaker.record_failure(0)
    assert breaker.allow(1) == (True, "half_open")
    breaker.release()
    assert breaker.allow(1.5) == (True, None)
    assert breaker.allow(1.6) == (False, None)


def test_opens_on_the_failure_rate_within_the_window() -> None:
    cfg = BreakerConfig(failures=100, failure_rate=0.5, window=60, min_requests=10)
    breaker = CircuitBreaker(cfg)
    for t in range(5):
        breaker.record_success(t)
    for t in range(5, 9):
        assert breaker.record_failure(t) is None
        breaker.record_success(t + 0.5)
    assert breaker.error_rate(9) == pytest.approx(4 / 13)
    changes = [breaker.record_failure(t) for t in (10, 11)]
    assert changes == [None, None]  # 6/15 = 0.4
    # Old successes leave the window: the rate rises above half and the breaker opens.
    assert breaker.record_failure(64) == "open"
    assert breaker.error_rate(64) > 0.5


async def test_breaker_opens_skips_without_network_calls_and_recovers(servers, caplog):
    a = servers(scenario("from a", fault_rate={"rate": 1.0, "kinds": ["500"]}))
    b = servers(scenario("from b"))
    clock, rec = FakeClock(), Recorder()
    breaker = BreakerConfig(failures=3, cooldown=30)
    config = router_config(deployment("a", a, max_retries=0, breaker=breaker), deployment("b", b))
    caplog.set_level(logging.INFO, logger="staffer.router")
    async with Router(config, observers=[rec], clock=clock, sleep=Sleeps()) as router:
        for _ in range(3):
            assert (await router.complete(ask())).text == "from b"
        assert model_requests(a) == 3
        assert ("breaker_open", "a") in rec.kinds()
        states = {s["name"]: s for s in router.deployment_states()}
        assert states["a"]["state"] == "open"
        assert states["a"]["consecutive_failures"] == 3
        assert states["a"]["error_rate"] == 1.0
        assert states["b"]["state"] == "closed"

        for _ in range(5):  # skipped without a network call
            assert (await router.complete(ask())).text == "from b"
        assert model_requests(a) == 3

        a.set_scenario(scenario("from a"))  # the primary recovers
        clock.now += 31
        assert (await router.complete(ask())).text == "from a"
        assert model_requests(a) == 4
        assert router.deployment_states()[0]["state"] == "closed"
    kinds = [k for k, d in rec.kinds() if d == "a" and k.startswith("breaker")]
    assert kinds == ["breaker_open", "breaker_half_open", "breaker_closed"]
    lines = [r.getMessage() for r in caplog.records if r.name == "staffer.router"]
    assert any(line.startswith("breaker_open deployment=a") for line in lines)
    assert any(line.startswith("breaker_closed deployment=a") for line in lines)


async def test_every_breaker_open_fails_fast_and_says_when_it_probes_again(servers):
    a = servers(scenario("a", fault_rate={"rate": 1.0, "kinds": ["503"]}))
    clock = FakeClock()
    config = router_config(
        deployment("a", a, max_retries=0, breaker=BreakerConfig(failures=1, cooldown=30))
    )
    async with Router(config, clock=clock) as router:
        with pytest.raises(Exception, match="503"):
            await router.complete(ask())
        clock.now += 10
        with pytest.raises(NoDeploymentAvailableError) as info:
            await router.complete(ask())
    assert "a: circuit open (probing again in 20 s)" in str(info.value)
    assert model_requests(a) == 1


async def test_user_errors_do_not_open_the_breaker(servers):
    a = servers(scenario("a", fault_rate={"rate": 1.0, "kinds": ["400"]}))
    config = router_config(deployment("a", a, breaker=BreakerConfig(failures=2)))
    async with Router(config) as router:
        for _ in range(4):
            with pytest.raises(Exception, match="400"):
                await router.complete(ask())
        assert router.deployment_states()[0]["state"] == "closed"
    assert model_requests(a) == 4
