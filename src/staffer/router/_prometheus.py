"""The router's Prometheus exposition, built at scrape time from `MetricsObserver`'s counters.

The observer keeps plain integer counters and histogram buckets (a list
increment is far cheaper than prometheus-client's locked children on the
request path); `RouterCollector` turns them into metric families when
``/metrics`` is scraped. Names follow Prometheus conventions: seconds for
durations, ``_total`` on counters; histograms are labelled by deployment and
alias.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from staffer.router._metrics import MetricsObserver

TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
TPOT_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0)
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
_P = "staffer_router_"


class Pair:
    """Counters of one (deployment, alias) pair since start, and its two rolling windows.

    `n` is indexed by the constants below; histogram lists hold one count per
    bucket plus one for +Inf (not cumulative); `sums` are TTFT, TPOT and latency.
    """

    REQUESTS, OK, ERRORS, CANCELLED, RETRIES, FALLBACKS = range(6)
    INPUT, OUTPUT, UNKNOWN_PRICE, PRICED_INPUT, PRICED_CACHED, PRICED_OUTPUT = range(6, 12)
    SIZE: ClassVar[int] = 12

    __slots__ = ("alias", "deployment", "latency", "n", "prices", "sums", "tpot", "ttft")

    def __init__(
        self,
        deployment: deque[Any],
        alias: deque[Any],
        prices: tuple[Decimal | None, Decimal | None, Decimal | None],
    ) -> None:
        self.deployment = deployment
        self.alias = alias
        self.prices = prices  # input, cached input, output: USD per 1M tokens
        self.n = [0] * self.SIZE
        self.ttft = [0] * (len(TTFT_BUCKETS) + 1)
        self.tpot = [0] * (len(TPOT_BUCKETS) + 1)
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sums = [0.0, 0.0, 0.0]


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    running, out = 0, []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        running += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
    return out


class RouterCollector(Collector):
    """Every ``staffer_router_*`` family, read from a `MetricsObserver` when scraped."""

    def __init__(self, metrics: MetricsObserver) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        pairs = list(m.pairs.items())
        pair_labels = ["deployment", "alias"]
        for name, doc, bounds, attr, index in (
            ("ttft_seconds", "Time to first token.", TTFT_BUCKETS, "ttft", 0),
            ("tpot_seconds", "Time per output token after the first.", TPOT_BUCKETS, "tpot", 1),
            (
                "latency_seconds",
                "Total latency of successful attempts.",
                LATENCY_BUCKETS,
                "latency",
                2,
            ),
        ):
            histogram = HistogramMetricFamily(f"{_P}{name}", doc, labels=pair_labels)
            for (deployment, alias), pair in pairs:
                if pair.n[Pair.OK]:
                    counts = getattr(pair, attr)
                    histogram.add_metric(
                        [deployment, alias], _buckets(bounds, counts), pair.sums[index]
                    )
            yield histogram

        requests = CounterMetricFamily(f"{_P}requests", "Requests by alias.", labels=["alias"])
        by_alias: dict[str, int] = {}
        for (_, alias), pair in pairs:
            if alias:
                by_alias[alias] = by_alias.get(alias, 0) + pair.n[Pair.REQUESTS]
        for alias, count in by_alias.items():
            requests.add_metric([alias], count)
        yield requests

        attempts = CounterMetricFamily(
            f"{_P}attempts", "Attempts by outcome.", labels=[*pair_labels, "outcome"]
        )
        for (deployment, alias), pair in pairs:
            for outcome, index in (
                ("ok", Pair.OK),
                ("error", Pair.ERRORS),
                ("cancelled", Pair.CANCELLED),
            ):
                if pair.n[index]:
                    attempts.add_metric([deployment, alias, outcome], pair.n[index])
        yield attempts

        for name, doc, index in (
            ("input_tokens", "Input tokens (cached included).", Pair.INPUT),
            ("output_tokens", "Output tokens.", Pair.OUTPUT),
            (
                "unknown_price_requests",
                "Calls whose cost is unknown: a price is missing.",
                Pair.UNKNOWN_PRICE,
            ),
            ("retries", "Retries on the same deployment.", Pair.RETRIES),
            ("fallbacks", "Fallbacks away from a deployment.", Pair.FALLBACKS),
        ):
            family = CounterMetricFamily(f"{_P}{name}", doc, labels=pair_labels)
            for (deployment, alias), pair in pairs:
                family.add_metric([deployment, alias], pair.n[index])
            yield family

        if m.costs is not None:
            cost = CounterMetricFamily(
                f"{_P}cost_usd", "Cost in USD of calls whose prices are known.", labels=pair_labels
            )
            for (deployment, alias), pair in pairs:
                cost.add_metric([deployment, alias], m.cost_usd([pair]) or 0.0)
            yield cost

        transitions = CounterMetricFamily(
            f"{_P}breaker_transitions", "Circuit breaker transitions.", labels=["deployment", "to"]
        )
        for (deployment, to), count in m.transitions.items():
            transitions.add_metric([deployment, to], count)
        yield transitions

        hits = CounterMetricFamily(f"{_P}cache_hits", "Response cache hits.", labels=["model"])
        misses = CounterMetricFamily(
            f"{_P}cache_misses", "Response cache misses.", labels=["model"]
        )
        for model, (hit, miss) in m.cache.items():
            hits.add_metric([model], hit)
            misses.add_metric([model], miss)
        yield hits
        yield misses

        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        m = self.metrics
        now = m.clock()
        goodput = GaugeMetricFamily(
            f"{_P}goodput",
            "SLO-compliant requests per second over the rolling window.",
            labels=["scope", "name"],
        )
        for scope, table in (("deployment", m.deployments), ("alias", m.aliases)):
            for name, samples in table.items():
                if name:
                    goodput.add_metric([scope, name], m.goodput(samples, now))
        yield goodput
        states = m.router_states()
        breaker = GaugeMetricFamily(
            f"{_P}breaker_state",
            "Breaker state: 0 closed, 1 half-open, 2 open.",
            labels=["deployment"],
        )
        known = {str(s["name"]): s.get("state") for s in states if "name" in s}
        for deployment, state in {**m.breakers, **known}.items():
            if state in BREAKER_VALUES:
                breaker.add_metric([deployment], BREAKER_VALUES[str(state)])
        yield breaker
        in_flight = GaugeMetricFamily(
            f"{_P}in_flight", "Requests in flight per deployment.", labels=["deployment"]
        )
        for state in states:
            # The router's deployment_states() calls it "inflight".
            count = state.get("inflight", state.get("in_flight"))
            if "name" in state and isinstance(count, int | float):
                in_flight.add_metric([str(state["name"])], float(count))
        yield in_flight
