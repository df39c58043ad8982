"""Routing strategies order deployments by priority, weight, latency, price and load."""

from __future__ import annotations

import random
from collections import Counter

from tests.router._kit import ask, deployment, model_requests, router_config, scenario

from staffer.router import STRATEGIES, Deployment, DeploymentConfig, Prices, Router


def dep(name: str, **kw: object) -> Deployment:
    return Deployment(DeploymentConfig(name, "openai", name, **kw), None)  # type: ignore[arg-type]


def names(order: list[Deployment]) -> list[str]:
    return [d.name for d in order]


def test_priority_keeps_the_alias_order() -> None:
    ds = [dep("a"), dep("b"), dep("c")]
    assert names(STRATEGIES["priority"](ds, ask(), random.Random(0))) == ["a", "b", "c"]


def test_weighted_picks_first_by_weight_and_keeps_the_rest_as_fallback() -> None:
    ds = [dep("a", weight=3), dep("b", weight=1), dep("c", weight=0)]
    rng = random.Random(1)
    firsts = Counter(STRATEGIES["weighted"](ds, ask(), rng)[0].name for _ in range(4000))
    assert firsts["c"] == 0
    assert 0.7 < firsts["a"] / 4000 < 0.8
    order = STRATEGIES["weighted"](ds, ask(), rng)
    assert sorted(names(order)) == ["a", "b", "c"]


def test_latency_prefers_the_fastest_and_tries_unmeasured_ones() -> None:
    slow, fast, new = dep("slow"), dep("fast"), dep("new")
    slow.observe_latency(2.0, 0.05)
    fast.observe_latency(0.3, 0.01)
    assert names(STRATEGIES["latency"]([slow, fast], ask(), random.Random())) == ["fast", "slow"]
    order = STRATEGIES["latency"]([slow, fast, new], ask(), random.Random())
    assert names(order) == ["new", "fast", "slow"]
    # the average moves toward new samples
    for _ in range(20):
        fast.observe_latency(5.0, 0.1)
    assert names(STRATEGIES["latency"]([slow, fast], ask(), random.Random())) == ["slow", "fast"]


def test_cost_prefers_the_cheapest_and_puts_unknown_prices_last() -> None:
    ds = [
        dep("unknown"),
        dep("dear", prices=Prices(3.0, 15.0)),
        dep("cheap", prices=Prices(0.15, 0.6)),
        dep("free", prices=Prices(0.0, 0.0)),
    ]
    order = STRATEGIES["cost"](ds, ask(), random.Random())
    assert names(order) == ["free", "cheap", "dear", "unknown"]


def test_least_busy_prefers_fewest_in_flight() -> None:
    a, b, c = dep("a"), dep("b"), dep("c")
    a.inflight, b.inflight, c.inflight = 4, 1, 1
    assert names(STRATEGIES["least_busy"]([a, b, c], ask(), random.Random())) == ["b", "c", "a"]


async def test_weighted_alias_spreads_real_requests(servers):
    a, b = servers(scenario("a")), servers(scenario("b"))
    config = router_config(
        deployment("a", a, weight=1), deployment("b", b, weight=1), strategy="weighted"
    )
    async with Router(config, rng=random.Random(3)) as router:
        answers = Counter([(await router.complete(ask())).text for _ in range(40)])
    assert answers["a"] > 5
    assert answers["b"] > 5
    assert model_requests(a) + model_requests(b) == 40


async def test_latency_alias_learns_which_deployment_is_faster(servers):
    slow = servers(scenario("slow", ttft_ms=80))
    fast = servers(scenario("fast"))
    config = router_config(deployment("slow", slow), deployment("fast", fast), strategy="latency")
    async with Router(config) as router:
        answers = [(await router.complete(ask())).text for _ in range(6)]
        states = {s["name"]: s for s in router.deployment_states()}
    assert answers[:2] == ["slow", "fast"]  # each unmeasured one is tried once
    assert answers[2:] == ["fast"] * 4
    assert states["slow"]["ewma_ttft"] > states["fast"]["ewma_ttft"]


async def test_a_custom_strategy_plugs_in(servers):
    a, b = servers(scenario("a")), servers(scenario("b"))
    config = router_config(deployment("a", a), deployment("b", b), strategy="weighted")

    def reverse(candidates, request, rng):
        return list(reversed(candidates))

    async with Router(config, strategies={"weighted": reverse}) as router:
        assert (await router.complete(ask())).text == "b"
