"""Latency, throughput, errors, goodput and cost of the router, per deployment and alias.

`MetricsObserver` is a `RouterObserver` on the request path, so `on_attempt`
only does arithmetic on plain lists: it appends one tuple per rolling window,
bumps integer counters and histogram buckets, and adds up token counts.
Percentiles, costs (tokens × prices, in `Decimal`) and the Prometheus
exposition are computed when someone reads them.

Deployment figures are per *attempt*. Alias figures are per *request* as the
caller saw it: a request that fell back has its TTFT and latency measured from
the start of its first attempt. Error rates count failed attempts over all
attempts in the window.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict
from decimal import Decimal
from typing import Any, Final

from prometheus_client import CollectorRegistry

from staffer.router._cost import CostTable
from staffer.router._prometheus import (
    LATENCY_BUCKETS,
    TPOT_BUCKETS,
    TTFT_BUCKETS,
    Pair,
    RouterCollector,
)
from staffer.router._types import SLO, Attempt, RouterEvent

BREAKER_STATES = {
    "breaker_closed": "closed",
    "breaker_half_open": "half_open",
    "breaker_open": "open",
}
_MAX_OPEN_REQUESTS = 10_000  # requests whose first attempt failed, kept to spot fallbacks
_MILLION = Decimal(1_000_000)

# A window sample is a plain tuple (cheaper to build than a NamedTuple):
# (ended_at, ok, ttft, tpot, latency, tokens_per_s, output_tokens, good, fell_back)
Sample = tuple[float, bool, float | None, float | None, float, float | None, int, bool, bool]
AT: Final = 0
OK: Final = 1
TTFT: Final = 2
TPOT: Final = 3
LATENCY: Final = 4
TPS: Final = 5
OUT: Final = 6
GOOD: Final = 7
FELL_BACK: Final = 8


def percentile(values: list[float], q: float) -> float | None:
    """The `q` quantile (0–1) of sorted `values` by linear interpolation; None if empty."""
    if not values:
        return None
    k = (len(values) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _quantiles(values: Iterable[float | None]) -> dict[str, float | None]:
    ordered = sorted(v for v in values if v is not None)
    return {q: percentile(ordered, f) for q, f in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}


class MetricsObserver:
    """Rolling-window latency, error, fallback, goodput and cost figures, plus Prometheus series.

    `slo` defines a *good* request (goodput = good requests per second over the
    window). `costs` prices the tokens; without it cost is not tracked.
    `registry` is the Prometheus registry to register into (a new one by
    default: never the process-global one). `clock` is ``time.time`` or a fake.
    """

    def __init__(
        self,
        slo: SLO | None = None,
        *,
        costs: CostTable | None = None,
        window: float = 300.0,
        max_samples: int = 2048,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.slo = slo or SLO()
        self.costs = costs
        self.window = window
        self.max_samples = max_samples
        self.clock = clock
        self.started_at = clock()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.pairs: dict[tuple[str, str], Pair] = {}  # (deployment, alias) → counters
        self.deployments: dict[str, deque[Sample]] = {}
        self.aliases: dict[str, deque[Sample]] = {}
        self.breakers: dict[str, str] = {}
        self.transitions: dict[tuple[str, str], int] = {}  # (deployment, to) → count
        self.cache: dict[str, list[int]] = {}  # model → [hits, misses]
        self._open: dict[str, tuple[str, float]] = {}  # request_id → (first deployment, start)
        self._states: Callable[[], list[dict[str, Any]]] | None = None
        self.registry.register(RouterCollector(self))

    # --- the hot path ------------------------------------------------------

    def on_attempt(self, attempt: Attempt) -> None:
        """Record one finished attempt: O(1), no I/O, no locks."""
        a = attempt
        pair = self.pairs.get((a.deployment, a.alias)) or self._pair(a.deployment, a.alias)
        n = pair.n
        if a.attempt == 1:
            n[Pair.REQUESTS] += 1
        usage = a.usage
        out = usage.output_tokens
        cached = max(0, min(usage.cached_input_tokens, usage.input_tokens))
        uncached = usage.input_tokens - cached
        n[Pair.INPUT] += usage.input_tokens
        n[Pair.OUTPUT] += out
        if self.costs is not None:
            p_in, p_cached, p_out = pair.prices
            if (
                (uncached and p_in is None)
                or (cached and p_cached is None)
                or (out and p_out is None)
            ):
                n[Pair.UNKNOWN_PRICE] += 1  # never counted as free: left out of the cost sums
            else:
                n[Pair.PRICED_INPUT] += uncached
                n[Pair.PRICED_CACHED] += cached
                n[Pair.PRICED_OUTPUT] += out
        if a.cancelled:  # the caller went away: neither a success nor a failure
            n[Pair.CANCELLED] += 1
            return
        end = a.started_at + a.duration
        if not a.ok:
            n[Pair.ERRORS] += 1
            failed: Sample = (end, False, None, None, a.duration, None, 0, False, False)
            pair.deployment.append(failed)
            pair.alias.append(failed)
            if a.attempt == 1:
                if len(self._open) >= _MAX_OPEN_REQUESTS:
                    del self._open[next(iter(self._open))]
                self._open[a.request_id] = (a.deployment, a.started_at)
            return
        n[Pair.OK] += 1
        ttft, duration = a.ttft, a.duration
        tpot = (
            (duration - ttft) / (a.output_chunks - 1)
            if ttft is not None and a.output_chunks > 1
            else None
        )
        tps = out / duration if duration > 0 else None
        good = self._good(ttft, tpot, duration)
        pair.deployment.append((end, True, ttft, tpot, duration, tps, out, good, False))
        if ttft is not None:
            pair.ttft[bisect_left(TTFT_BUCKETS, ttft)] += 1
            pair.sums[0] += ttft
        if tpot is not None:
            pair.tpot[bisect_left(TPOT_BUCKETS, tpot)] += 1
            pair.sums[1] += tpot
        pair.latency[bisect_left(LATENCY_BUCKETS, duration)] += 1
        pair.sums[2] += duration
        if a.attempt == 1:
            pair.alias.append((end, True, ttft, tpot, duration, tps, out, good, False))
            return
        # The caller waited from the request's first attempt, whichever one answered.
        first, started = self._open.pop(a.request_id, (a.deployment, a.started_at))
        waited = a.started_at - started
        r_ttft = None if ttft is None else ttft + waited
        latency = duration + waited
        good = self._good(r_ttft, tpot, latency)
        pair.alias.append((end, True, r_ttft, tpot, latency, tps, out, good, first != a.deployment))

    def on_event(self, event: RouterEvent) -> None:
        """Count retries and fallbacks; follow breaker states."""
        kind = event.kind
        state = BREAKER_STATES.get(kind)
        if state is not None:
            self.breakers[event.deployment] = state
            key = (event.deployment, state)
            self.transitions[key] = self.transitions.get(key, 0) + 1
            return
        if kind not in ("retry", "fallback"):
            return  # rollbacks and flips are in the event log, not the rates
        alias = event.alias or ""
        pair = self.pairs.get((event.deployment, alias)) or self._pair(event.deployment, alias)
        pair.n[Pair.RETRIES if kind == "retry" else Pair.FALLBACKS] += 1

    def on_cache(self, hit: bool, model: str = "") -> None:
        """Count a response-cache hit or miss (called by `CachedModel`)."""
        counts = self.cache.get(model)
        if counts is None:
            counts = self.cache[model] = [0, 0]
        counts[0 if hit else 1] += 1

    def _good(self, ttft: float | None, tpot: float | None, latency: float) -> bool:
        slo = self.slo
        return (
            (slo.ttft is None or (ttft if ttft is not None else latency) <= slo.ttft)
            and (slo.tpot is None or tpot is None or tpot <= slo.tpot)
            and (slo.total is None or latency <= slo.total)
        )

    def _pair(self, deployment: str, alias: str) -> Pair:
        d = self.deployments.get(deployment)
        if d is None:
            d = self.deployments[deployment] = deque(maxlen=self.max_samples)
        a = self.aliases.get(alias)
        if a is None:
            a = self.aliases[alias] = deque(maxlen=self.max_samples)
        prices = self.costs.prices(deployment) if self.costs is not None else (None, None, None)
        pair = self.pairs[(deployment, alias)] = Pair(d, a, prices)
        return pair

    # --- reading -----------------------------------------------------------

    def bind_router(self, states: Callable[[], list[dict[str, Any]]]) -> None:
        """Read breaker states and in-flight counts from the router (its `deployment_states`)."""
        self._states = states

    def router_states(self) -> list[dict[str, Any]]:
        """The router's own view of its deployments, or [] when none is bound."""
        return self._states() if self._states is not None else []

    def seconds(self, now: float) -> float:
        """What rates are divided by: the window, or the observer's age until it is that old."""
        return max(min(self.window, now - self.started_at), 1.0)

    def goodput(self, samples: Iterable[Sample], now: float) -> float:
        """Good requests per second among `samples` over the window ending `now`."""
        since = now - self.window
        return sum(1 for s in samples if s[GOOD] and s[AT] >= since) / self.seconds(now)

    def cost_usd(self, pairs: Iterable[Pair]) -> float | None:
        """The exact cost of the priced tokens of `pairs` (None when no price table is set)."""
        if self.costs is None:
            return None
        total = Decimal(0)
        for pair in pairs:
            n = pair.n
            for tokens, price in zip(
                (n[Pair.PRICED_INPUT], n[Pair.PRICED_CACHED], n[Pair.PRICED_OUTPUT]),
                pair.prices,
                strict=True,
            ):
                if tokens and price is not None:
                    total += tokens * price
        return float(total / _MILLION)

    def stats(
        self, samples: deque[Sample], pairs: list[Pair], now: float, *, alias: bool
    ) -> dict[str, Any]:
        """The window's figures for one deployment or alias (see docs/observability.md).

        An alias's fallback rate is the share of its answered requests that fell back;
        a deployment's is the share of its attempts that ended in a fallback away from it.
        """
        since = now - self.window
        recent = [s for s in samples if s[AT] >= since]
        ok = [s for s in recent if s[OK]]
        good = sum(1 for s in ok if s[GOOD])
        seconds = self.seconds(now)
        errors = len(recent) - len(ok)

        def total(index: int) -> int:
            return sum(p.n[index] for p in pairs)

        tried = total(Pair.OK) + total(Pair.ERRORS)
        if alias:
            fallback_rate = sum(1 for s in ok if s[FELL_BACK]) / len(ok) if ok else None
        else:
            fallback_rate = total(Pair.FALLBACKS) / tried if tried else None
        return {
            "count": len(recent),
            "ok": len(ok),
            "errors": errors,
            "error_rate": errors / len(recent) if recent else None,
            "fallback_rate": fallback_rate,
            "ttft": _quantiles(s[TTFT] for s in ok),
            "tpot": _quantiles(s[TPOT] for s in ok),
            "latency": _quantiles(s[LATENCY] for s in ok),
            "tokens_per_s": _quantiles(s[TPS] for s in ok),
            "output_tokens_per_s": sum(s[OUT] for s in ok) / seconds,
            "attempts_per_s": len(recent) / seconds,
            "goodput": good / seconds,
            "slo_attainment": good / len(recent) if recent else None,
            "totals": {
                "requests": total(Pair.REQUESTS),
                "attempts": tried,
                "errors": total(Pair.ERRORS),
                "cancelled": total(Pair.CANCELLED),
                "retries": total(Pair.RETRIES),
                "fallbacks": total(Pair.FALLBACKS),
                "input_tokens": total(Pair.INPUT),
                "output_tokens": total(Pair.OUTPUT),
                "unknown_price_calls": total(Pair.UNKNOWN_PRICE),
                "cost_usd": self.cost_usd(pairs),
            },
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything `GET /api/router` shows, as plain JSON-ready data."""
        now = self.clock()
        hits = sum(c[0] for c in self.cache.values())
        misses = sum(c[1] for c in self.cache.values())
        deployments = {
            name: {
                **self.stats(
                    samples, [p for (d, _), p in self.pairs.items() if d == name], now, alias=False
                ),
                "breaker": self.breakers.get(name),
            }
            for name, samples in sorted(
                {**{b: deque[Sample]() for b in self.breakers}, **self.deployments}.items()
            )
        }
        aliases = {
            name: self.stats(
                samples, [p for (_, a), p in self.pairs.items() if a == name], now, alias=True
            )
            for name, samples in sorted(self.aliases.items())
            if name  # events without an alias are not a request path
        }
        return {
            "window_seconds": self.window,
            "slo": asdict(self.slo),
            "deployments": deployments,
            "aliases": aliases,
            "cache": {
                "hits": hits,
                "misses": misses,
                "hit_rate": hits / (hits + misses) if hits + misses else None,
            },
            "cost_usd": self.cost_usd(self.pairs.values()),
            "router": self.router_states(),
        }


class EventLog:
    """The last `size` `RouterEvent`s (retries, fallbacks, breaker transitions), for the API."""

    def __init__(self, size: int = 1000) -> None:
        self._events: deque[RouterEvent] = deque(maxlen=size)

    def on_attempt(self, attempt: Attempt) -> None:
        """Attempts are not events; nothing to keep."""

    def on_event(self, event: RouterEvent) -> None:
        self._events.append(event)

    def recent(self, limit: int = 100) -> list[RouterEvent]:
        """Up to `limit` events, newest first."""
        if limit <= 0:
            return []
        return list(reversed(self._events))[:limit]
