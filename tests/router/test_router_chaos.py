"""Chaos: a primary failing 30 % of the time at random; callers must still succeed."""

from __future__ import annotations

import asyncio
import random

from tests.router._kit import (
    Recorder,
    Sleeps,
    ask,
    deployment,
    model_requests,
    router_config,
    scenario,
)

from staffer.errors import ProviderError
from staffer.router import BreakerConfig, Router

REQUESTS = 300
CONCURRENCY = 10


async def test_chaos_primary_failing_30_percent(servers):
    faults = {"rate": 0.3, "kinds": ["500", "503", "429", "drop"], "seed": 42}
    primary = servers(scenario("fine", fault_rate=faults))
    secondary = servers(scenario("fine"))
    rec = Recorder()
    # Failures answer faster than successes, so under concurrency they arrive in bursts;
    # a short cooldown lets the primary's breaker open and recover during the run.
    breaker = BreakerConfig(failures=5, cooldown=0.2)
    config = router_config(
        deployment("primary", primary, breaker=breaker), deployment("secondary", secondary)
    )
    ok = failed = 0
    gate = asyncio.Semaphore(CONCURRENCY)

    async with Router(config, observers=[rec], sleep=Sleeps(), rng=random.Random(7)) as router:

        async def one(i: int) -> None:
            nonlocal ok, failed
            async with gate:
                try:
                    response = await router.complete(ask(f"request {i}"))
                except ProviderError:
                    failed += 1
                else:
                    ok += 1 if response.text == "fine" else 0
                    failed += 0 if response.text == "fine" else 1

        await asyncio.gather(*(one(i) for i in range(REQUESTS)))

    rate = ok / REQUESTS
    failed_attempts = sum(not a.ok for a in rec.attempts)
    kinds = [e.kind for e in rec.events]
    summary = (
        f"chaos: {ok}/{REQUESTS} succeeded ({rate:.2%}); primary saw {model_requests(primary)} "
        f"requests, secondary {model_requests(secondary)}; {failed_attempts} failed attempts, "
        f"{kinds.count('retry')} retries, {kinds.count('fallback')} fallbacks, "
        f"{kinds.count('breaker_open')} breaker openings"
    )
    print(summary)
    assert rate >= 0.999, summary
    assert failed_attempts > 30, summary  # the faults really happened
