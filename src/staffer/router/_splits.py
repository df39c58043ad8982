"""Traffic splits for safe rollout: canary, blue–green and champion–challenger.

A split takes over one alias through the router's own extension point: its state
is a routing strategy (``split:NAME``) that puts one arm first and keeps the
alias's other deployments, in their strategy's order, as fallback:

    canary, challenger share   candidate first (then stable) for `percent` of
                               requests; otherwise stable, the candidate left out
    blue–green                 the active arm only; `flip()` swaps instantly
    shadow                     the champion (stable) only; `ShadowModel` sends a copy

`Splits` is also a `RouterObserver`: it keeps per-arm figures from the router's
attempts (and the shadow copies) for the side-by-side report, and rolls a canary
back to 0 % when its candidate breaks ``max_error_rate`` or ``max_p95_latency``.
Its state outlives a config reload as long as the split's own settings do not change.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, cast

from staffer.models import ModelRequest
from staffer.router._cost import CostTable
from staffer.router._deployment import Deployment
from staffer.router._metrics import percentile
from staffer.router._strategies import STRATEGIES, Orderer
from staffer.router._traffic import Arm, SplitConfig
from staffer.router._types import AliasConfig, Attempt, RouterConfig, RouterEvent, RouterEventKind

logger = logging.getLogger("staffer.router")

#: the metadata key that marks a shadow copy (its value is the split's name)
SHADOW_KEY = "shadow"
_LATENCIES = 1000  # successful latencies kept per arm for the report's percentiles
_PAIRS = 50  # shadow pairs kept per split
TEXT_LIMIT = 500  # characters of each answer kept in a shadow pair


class ArmStats:
    """What one arm of a split did: attempts, errors, latency, tokens and cost."""

    __slots__ = (
        "cost",
        "deployment",
        "errors",
        "input_tokens",
        "latencies",
        "output_tokens",
        "recent",
        "requests",
        "unknown_price",
    )

    def __init__(self, deployment: str, window: int) -> None:
        self.deployment = deployment
        self.requests = 0
        self.errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = Decimal(0)
        self.unknown_price = 0
        self.latencies: deque[float] = deque(maxlen=_LATENCIES)
        self.recent: deque[tuple[bool, float]] = deque(maxlen=window)  # (ok, latency)

    def add(self, attempt: Attempt, costs: CostTable | None) -> None:
        self.requests += 1
        self.input_tokens += attempt.usage.input_tokens
        self.output_tokens += attempt.usage.output_tokens
        if costs is not None:
            cost = costs.cost(attempt.deployment, attempt.usage)
            if cost.exact is None:
                self.unknown_price += 1
            else:
                self.cost += cost.exact
        if not attempt.ok:
            self.errors += 1
        else:
            self.latencies.append(attempt.duration)
        self.recent.append((attempt.ok, attempt.duration))

    def window_figures(self) -> tuple[float, float | None]:
        """(error rate, p95 latency of the successes) over the recent outcomes."""
        errors = sum(1 for ok, _ in self.recent if not ok)
        ok = sorted(latency for good, latency in self.recent if good)
        return errors / len(self.recent), percentile(ok, 0.95)

    def report(self, priced: bool) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "deployment": self.deployment,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else None,
            "latency_p50": percentile(ordered, 0.5),
            "latency_p95": percentile(ordered, 0.95),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": float(self.cost) if priced else None,
            "unknown_price_calls": self.unknown_price,
        }


@dataclass(slots=True)
class ShadowPair:
    """One request answered by the champion and, in the background, by the challenger."""

    request_id: str
    at: float
    prompt: str
    champion: dict[str, Any]
    challenger: dict[str, Any]


class SplitState:
    """One split at run time: its live share or colour, its arms and its shadow pairs."""

    def __init__(self, config: SplitConfig) -> None:
        self.config = config
        self.percent = config.percent
        self.active: Arm = config.active
        self.state = "active"
        self.reason: str | None = None
        self.changed_at: float | None = None
        self.base: Orderer = STRATEGIES["priority"]
        self.arms = {
            "stable": ArmStats(config.stable, config.window),
            "candidate": ArmStats(config.candidate, config.window),
        }
        self.pairs: deque[ShadowPair] = deque(maxlen=_PAIRS)
        self.shadow_in_flight = 0
        self.shadow_sent = 0
        self.shadow_skipped = 0
        self.shadow_failed = 0

    @property
    def shadowing(self) -> bool:
        c = self.config
        return c.kind == "champion_challenger" and c.shadow

    def first_arm(self, rng: random.Random) -> Arm | None:
        """The arm to try first, or None for "stable only" (the candidate left out)."""
        c = self.config
        if c.kind == "blue_green":
            return self.active
        if self.shadowing or self.percent <= 0:
            return None
        return "candidate" if rng.random() * 100.0 < self.percent else None

    def order(
        self, candidates: Sequence[Deployment], request: ModelRequest, rng: random.Random
    ) -> list[Deployment]:
        """The `Orderer` of the split's alias (see the module docstring)."""
        c = self.config
        arms = {c.stable, c.candidate}
        by_name = {d.name: d for d in candidates if d.name in arms}
        others = [d for d in candidates if d.name not in arms]
        rest = self.base(others, request, rng) if others else []
        arm = self.first_arm(rng)
        if arm == "candidate" and c.kind != "blue_green":
            names = [c.candidate, c.stable]
        else:
            names = [c.candidate if arm == "candidate" else c.stable]
        return [by_name[n] for n in names if n in by_name] + rest

    def pairs_report(self) -> list[dict[str, Any]]:
        return [
            {
                "request_id": p.request_id,
                "at": p.at,
                "prompt": p.prompt,
                "champion": p.champion,
                "challenger": p.challenger,
            }
            for p in reversed(self.pairs)
        ]

    def report(self, priced: bool) -> dict[str, Any]:
        c = self.config
        data: dict[str, Any] = {
            "name": c.name,
            "alias": c.alias,
            "kind": c.kind,
            "state": self.state,
            "reason": self.reason,
            "changed_at": self.changed_at,
            "stable": c.stable,
            "candidate": c.candidate,
            "percent": self.percent,
            "configured_percent": c.percent,
            "shadow": c.shadow,
            "arms": {arm: stats.report(priced) for arm, stats in self.arms.items()},
        }
        if c.kind == "blue_green":
            data["active"] = self.active
            data["active_deployment"] = c.candidate if self.active == "candidate" else c.stable
        if c.kind == "canary":
            data["thresholds"] = {
                "max_error_rate": c.max_error_rate,
                "max_p95_latency": c.max_p95_latency,
                "min_requests": c.min_requests,
                "window": c.window,
            }
        if self.shadowing:
            data["shadow_requests"] = {
                "sent": self.shadow_sent,
                "skipped": self.shadow_skipped,
                "failed": self.shadow_failed,
                "in_flight": self.shadow_in_flight,
            }
            data["pairs"] = self.pairs_report()
        return data


class UnknownSplitError(KeyError):
    """No split of that name is configured."""


class Splits:
    """Every split of the gateway: strategies for the router, an observer, the report.

    `costs` prices the arms' tokens; `on_event` receives a `RouterEvent` of kind
    ``rollback`` or ``flip`` (the gateway's event log). `clock` is ``time.time``.
    """

    def __init__(
        self,
        *,
        costs: CostTable | None = None,
        on_event: Callable[[RouterEvent], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.costs = costs
        self.notify = on_event
        self.clock = clock
        self.states: dict[str, SplitState] = {}
        self._by_alias: dict[str, SplitState] = {}

    def __len__(self) -> int:
        return len(self.states)

    # --- configuration ---------------------------------------------------------

    def bind(
        self, config: RouterConfig, splits: Mapping[str, SplitConfig]
    ) -> tuple[RouterConfig, dict[str, Orderer], Callable[[], None]]:
        """Take over the aliases of `splits` in `config`: the router config and strategies
        to build a `Router` with, and `commit`, to call once that router is built (until
        then the running router keeps the current states). A split whose settings are
        unchanged keeps its state: its share, colour, rollback and figures."""
        states: dict[str, SplitState] = {}
        aliases = dict(config.aliases)
        strategies: dict[str, Orderer] = {}
        for name, split in splits.items():
            old = self.states.get(name)
            state = old if old is not None and old.config == split else SplitState(split)
            alias = aliases.get(split.alias)
            members = alias.deployments if alias is not None else ()
            base = alias.strategy if alias is not None else "priority"
            state.base = STRATEGIES.get(base, STRATEGIES["priority"])
            arms = (split.stable, split.candidate)
            deployments = (*arms, *(m for m in members if m not in arms))
            key = f"split:{name}"
            aliases[split.alias] = replace(
                alias or AliasConfig(split.alias, ()),
                deployments=deployments,
                strategy=cast(Any, key),
            )
            strategies[key] = state.order
            states[name] = state

        def commit() -> None:
            self.states = states
            self._by_alias = {s.config.alias: s for s in states.values()}

        return replace(config, aliases=aliases), strategies, commit

    def shadow_for(self, alias: str) -> SplitState | None:
        """The shadowing split over `alias`, if any."""
        state = self._by_alias.get(alias)
        return state if state is not None and state.shadowing else None

    # --- operations --------------------------------------------------------------

    def get(self, name: str) -> SplitState:
        state = self.states.get(name)
        if state is None:
            raise UnknownSplitError(name)
        return state

    def flip(self, name: str) -> SplitState:
        """Send all of a blue–green split's traffic to the other arm, at once."""
        state = self.get(name)
        if state.config.kind != "blue_green":
            raise ValueError(f"split {name!r} is a {state.config.kind}, not blue_green")
        state.active = "stable" if state.active == "candidate" else "candidate"
        state.state = "active"
        state.changed_at = self.clock()
        c = state.config
        now = c.candidate if state.active == "candidate" else c.stable
        state.reason = f"flipped to {state.active} ({now})"
        self._emit("flip", now, state.reason, c.alias)
        return state

    def report(self) -> list[dict[str, Any]]:
        """Every split's state and side-by-side figures (``GET /api/router/splits``)."""
        priced = self.costs is not None
        return [state.report(priced) for state in self.states.values()]

    # --- RouterObserver ------------------------------------------------------------

    def on_attempt(self, attempt: Attempt) -> None:
        if attempt.cancelled:
            return
        shadow = attempt.metadata.get(SHADOW_KEY)
        if shadow is not None:
            state = self.states.get(shadow)
            if state is not None and attempt.deployment == state.config.candidate:
                state.arms["candidate"].add(attempt, self.costs)
            return
        state = self._by_alias.get(attempt.alias)
        if state is None:
            return
        c = state.config
        if attempt.deployment == c.stable:
            state.arms["stable"].add(attempt, self.costs)
        elif attempt.deployment == c.candidate:
            state.arms["candidate"].add(attempt, self.costs)
            if c.kind == "canary" and state.state == "active":
                self._check_canary(state)

    def on_event(self, event: RouterEvent) -> None:
        """Retries and breaker transitions are the router's business, not the split's."""

    def _check_canary(self, state: SplitState) -> None:
        c, arm = state.config, state.arms["candidate"]
        if len(arm.recent) < c.min_requests:
            return
        error_rate, p95 = arm.window_figures()
        broken: list[str] = []
        if c.max_error_rate is not None and error_rate > c.max_error_rate:
            broken.append(f"error rate {error_rate:.1%} > {c.max_error_rate:.1%}")
        if c.max_p95_latency is not None and p95 is not None and p95 > c.max_p95_latency:
            broken.append(f"p95 latency {p95:.3f}s > {c.max_p95_latency:g}s")
        if not broken:
            return
        state.percent = 0.0
        state.state = "rolled_back"
        state.changed_at = self.clock()
        state.reason = (
            f"{' and '.join(broken)} over the last {len(arm.recent)} attempts of {c.candidate}"
        )
        self._emit("rollback", c.candidate, state.reason, c.alias)

    def _emit(self, kind: RouterEventKind, deployment: str, cause: str, alias: str) -> None:
        level = logging.WARNING if kind == "rollback" else logging.INFO
        logger.log(level, "%s deployment=%s alias=%s cause=%s", kind, deployment, alias, cause)
        if self.notify is not None:
            # It goes to the event log only, never to the metrics (which count router events).
            self.notify(RouterEvent(kind, deployment, cause, alias, at=self.clock()))
