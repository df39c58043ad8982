"""MetricsObserver: percentiles, TPOT, fallbacks, goodput against SLOs (fake clock), Prometheus."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from staffer.models import Usage
from staffer.router import (
    SLO,
    Attempt,
    CostTable,
    EventLog,
    MetricsObserver,
    Prices,
    RouterEvent,
    percentile,
)

T0 = 10_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def attempt(
    request: str = "r",
    *,
    n: int = 1,
    deployment: str = "a",
    alias: str = "fast",
    ok: bool = True,
    start: float = T0,
    ttft: float | None = 0.1,
    duration: float = 1.0,
    chunks: int = 11,
    usage: Usage | None = None,
    cancelled: bool = False,
) -> Attempt:
    return Attempt(
        request_id=request,
        alias=alias,
        deployment=deployment,
        attempt=n,
        ok=ok,
        error=None if ok else "ProviderUnavailableError: 503",
        status=None if ok else 503,
        started_at=start,
        ttft=ttft if ok else None,
        duration=duration,
        output_chunks=chunks if ok else 0,
        usage=usage if usage is not None else Usage(100, 50),
        metadata={},
        cancelled=cancelled,
    )


def test_percentile_interpolates_linearly() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.5) == pytest.approx(5.5)
    assert percentile(values, 0.95) == pytest.approx(9.55)
    assert percentile(values, 0.99) == pytest.approx(9.91)
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) is None


def test_ttft_tpot_latency_percentiles_and_throughput() -> None:
    clock = Clock()
    m = MetricsObserver(window=60, clock=clock)
    for i in range(1, 11):
        # ttft 0.1 … 1.0; 11 chunks over (duration − ttft) = 1.0 s → TPOT 0.1 s
        m.on_attempt(attempt(f"r{i}", ttft=i / 10, duration=i / 10 + 1.0, usage=Usage(10, 20)))
    clock.now = T0 + 30
    stats = m.snapshot()["deployments"]["a"]
    assert stats["count"] == 10
    assert stats["error_rate"] == 0.0
    assert stats["ttft"]["p50"] == pytest.approx(0.55)
    assert stats["ttft"]["p95"] == pytest.approx(0.955)
    assert stats["ttft"]["p99"] == pytest.approx(0.991)
    assert stats["tpot"] == {
        "p50": pytest.approx(0.1),
        "p95": pytest.approx(0.1),
        "p99": pytest.approx(0.1),
    }
    assert stats["latency"]["p50"] == pytest.approx(1.55)
    assert stats["tokens_per_s"]["p50"] == pytest.approx(20 / 1.55, rel=0.05)
    assert stats["output_tokens_per_s"] == pytest.approx(200 / 30)


def test_single_chunk_has_no_tpot() -> None:
    m = MetricsObserver(clock=Clock())
    m.on_attempt(attempt(chunks=1))
    assert m.snapshot()["deployments"]["a"]["tpot"]["p50"] is None


def test_goodput_counts_requests_meeting_every_slo_target() -> None:
    clock = Clock()
    m = MetricsObserver(SLO(ttft=0.5, tpot=0.05, total=2.0), window=60, clock=clock)
    good = {"ttft": 0.2, "duration": 0.7, "chunks": 11}  # TPOT = 0.5 / 10 = 0.05
    m.on_attempt(attempt("ok1", **good))
    m.on_attempt(attempt("ok2", **good))
    m.on_attempt(attempt("slow-first-token", ttft=0.6, duration=1.0, chunks=11))
    m.on_attempt(attempt("slow-tokens", ttft=0.2, duration=1.2, chunks=11))  # TPOT 0.1
    m.on_attempt(attempt("too-long", ttft=0.1, duration=2.5, chunks=100))
    m.on_attempt(attempt("failed", ok=False))
    clock.now = T0 + 120  # more than a window since start: rates are per 60 s
    m.on_attempt(attempt("ok3", start=T0 + 100, **good))
    stats = m.snapshot()["deployments"]["a"]
    # The first six ended before the window started (now − 60 s).
    assert stats["count"] == 1
    assert stats["goodput"] == pytest.approx(1 / 60)
    clock.now = T0 + 30
    stats = m.snapshot()["deployments"]["a"]
    assert stats["count"] == 7
    assert stats["goodput"] == pytest.approx(3 / 30)
    assert stats["errors"] == 1
    assert stats["error_rate"] == pytest.approx(1 / 7)
    assert stats["slo_attainment"] == pytest.approx(3 / 7)


def test_fallback_measured_per_request_for_the_alias() -> None:
    clock = Clock()
    m = MetricsObserver(SLO(ttft=0.5), clock=clock)
    clock.now = T0 + 10
    m.on_attempt(attempt("r1", n=1, deployment="a", ok=False, start=T0, duration=0.3))
    m.on_event(RouterEvent("fallback", "a", "503; falling back to b", "fast", 2, 0.3, T0 + 0.3))
    m.on_attempt(attempt("r1", n=2, deployment="b", start=T0 + 0.4, ttft=0.2, duration=1.0))
    m.on_attempt(attempt("r2", n=1, deployment="b", start=T0 + 1, ttft=0.2, duration=1.0))
    snap = m.snapshot()
    alias = snap["aliases"]["fast"]
    assert alias["fallback_rate"] == 0.5
    # The caller of r1 waited 0.4 s before b started: TTFT 0.6 misses the 0.5 s SLO.
    assert sorted(alias["ttft"].values()) == pytest.approx(
        [0.2 + 0.4 * p for p in (0.5, 0.95, 0.99)]
    )
    assert alias["latency"]["p99"] == pytest.approx(1.0 + 0.4 * 0.99)
    assert alias["goodput"] == pytest.approx(1 / 10)
    assert alias["totals"]["fallbacks"] == 1
    totals = snap["deployments"]["a"]["totals"]
    assert (totals["attempts"], totals["errors"], totals["fallbacks"]) == (1, 1, 1)
    assert (totals["retries"], totals["unknown_price_calls"], totals["cost_usd"]) == (0, 0, None)
    assert snap["aliases"]["fast"]["totals"]["requests"] == 2
    assert snap["deployments"]["a"]["fallback_rate"] == 1.0  # its one attempt fell back
    assert snap["deployments"]["b"]["fallback_rate"] == 0.0
    assert snap["deployments"]["b"]["ttft"]["p50"] == pytest.approx(0.2)


def test_cost_totals_and_unknown_prices() -> None:
    costs = CostTable({"a": Prices(input=1.0, output=2.0)})
    m = MetricsObserver(costs=costs, clock=Clock())
    for i in range(3):
        m.on_attempt(attempt(f"r{i}", usage=Usage(100_000, 100_000)))  # $0.3 each
    m.on_attempt(attempt("x", deployment="unpriced"))
    m.on_attempt(attempt("y", ok=False, usage=Usage()))
    snap = m.snapshot()
    assert snap["cost_usd"] == 0.9  # exact: not 0.8999999999999999
    assert snap["deployments"]["a"]["totals"]["cost_usd"] == 0.9
    assert snap["deployments"]["unpriced"]["totals"]["unknown_price_calls"] == 1
    assert snap["aliases"]["fast"]["totals"]["unknown_price_calls"] == 1


def test_cancelled_attempt_is_neither_success_nor_error() -> None:
    m = MetricsObserver(clock=Clock())
    m.on_attempt(attempt(ok=False, cancelled=True))
    assert m.snapshot()["deployments"]["a"]["count"] == 0


def test_breaker_events_and_event_log() -> None:
    m = MetricsObserver(clock=Clock())
    log = EventLog(size=3)
    events = [
        RouterEvent("retry", "a", "429", "fast", 1, 0.1, T0),
        RouterEvent("breaker_open", "a", "5 failures", "fast", 2, 0.2, T0),
        RouterEvent("breaker_half_open", "a", "cooldown over", None, None, None, T0),
        RouterEvent("breaker_closed", "a", "probe ok", "fast", 3, None, T0),
    ]
    for event in events:
        m.on_event(event)
        log.on_event(event)
    assert m.snapshot()["deployments"]["a"]["breaker"] == "closed"
    assert m.snapshot()["deployments"]["a"]["totals"]["retries"] == 1
    assert log.recent(2) == [events[3], events[2]]
    assert log.recent(10) == events[:0:-1]  # only the last 3 are kept


def families(m: MetricsObserver) -> dict[str, Any]:
    text = generate_latest(m.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_prometheus_exposition_parses_and_has_the_series() -> None:
    costs = CostTable({"a": Prices(input=1.0, output=2.0)})
    clock = Clock()
    m = MetricsObserver(SLO(ttft=1.0), costs=costs, clock=clock)
    clock.now = T0 + 10
    m.bind_router(lambda: [{"name": "a", "state": "half_open", "inflight": 2}])
    m.on_attempt(attempt("r1", ttft=0.3, duration=0.8, usage=Usage(1_000_000, 0)))
    m.on_attempt(attempt("r2", ok=False, usage=Usage()))
    m.on_attempt(attempt("r3", deployment="unpriced"))
    m.on_event(RouterEvent("retry", "a", "429", "fast", 1, 0.1, T0))
    m.on_event(RouterEvent("fallback", "a", "503", "fast", 2, 0.1, T0))
    m.on_event(RouterEvent("breaker_open", "a", "5 failures", "fast", 2, 0.1, T0))
    m.on_cache(True, "router:fast")
    m.on_cache(False, "router:fast")
    fam = families(m)
    assert fam["staffer_router_ttft_seconds"].type == "histogram"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in fam.values() for s in f.samples
    }
    pair = (("alias", "fast"), ("deployment", "a"))
    assert samples[("staffer_router_ttft_seconds_count", pair)] == 1
    assert (
        samples[
            ("staffer_router_ttft_seconds_bucket", (*pair[:1], ("deployment", "a"), ("le", "0.5")))
        ]
        == 1
    )
    assert samples[("staffer_router_tpot_seconds_sum", pair)] == pytest.approx(0.05)
    assert samples[("staffer_router_latency_seconds_sum", pair)] == pytest.approx(0.8)
    assert samples[("staffer_router_requests_total", (("alias", "fast"),))] == 3
    assert samples[("staffer_router_attempts_total", (*pair, ("outcome", "error")))] == 1
    assert samples[("staffer_router_cost_usd_total", pair)] == pytest.approx(1.0)
    unpriced = (("alias", "fast"), ("deployment", "unpriced"))
    assert samples[("staffer_router_unknown_price_requests_total", unpriced)] == 1
    assert samples[("staffer_router_retries_total", pair)] == 1
    assert samples[("staffer_router_fallbacks_total", pair)] == 1
    assert (
        samples[("staffer_router_breaker_transitions_total", (("deployment", "a"), ("to", "open")))]
        == 1
    )
    assert samples[("staffer_router_breaker_state", (("deployment", "a"),))] == 1  # the router wins
    assert samples[("staffer_router_cache_hits_total", (("model", "router:fast"),))] == 1
    assert samples[("staffer_router_cache_misses_total", (("model", "router:fast"),))] == 1
    assert samples[("staffer_router_in_flight", (("deployment", "a"),))] == 2
    assert samples[
        ("staffer_router_goodput", (("name", "fast"), ("scope", "alias")))
    ] == pytest.approx(2 / 10)


def test_registries_are_per_observer() -> None:
    a, b = MetricsObserver(), MetricsObserver()
    a.on_attempt(attempt())
    assert "staffer_router_ttft_seconds" in families(b)
    assert families(b)["staffer_router_ttft_seconds"].samples == []
