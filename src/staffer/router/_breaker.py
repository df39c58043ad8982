"""A circuit breaker per deployment: closed → open → half-open → closed.

    closed     requests flow; failures are counted
       │  `failures` consecutive failures, or a failure rate above `failure_rate`
       ▼  over the last `window` seconds (with at least `min_requests` outcomes)
    open       requests skip the deployment without a network call
       │  after `cooldown` seconds
       ▼
    half_open  exactly one request (the probe) goes through;
               success → closed, failure → open again for another cooldown

The breaker only keeps counts and timestamps; the router reads the transitions it
returns and reports them, so this module has no clock, logger or observers of its own.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from staffer.router._types import BreakerConfig

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """The state machine of one deployment's breaker. Times are seconds from any clock."""

    __slots__ = (
        "_failed_in_window",
        "_outcomes",
        "_probing",
        "config",
        "consecutive_failures",
        "opened_at",
        "state",
    )

    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self.state: BreakerState = "closed"
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self._probing = False
        self._outcomes: deque[tuple[float, bool]] = deque()  # (time, failed)
        self._failed_in_window = 0

    def allow(self, now: float) -> tuple[bool, BreakerState | None]:
        """May a request go to the deployment now? Also returns the new state, if it changed.

        In half-open state only one caller gets True until that probe reports back.
        """
        if self.state == "closed":
            return True, None
        if self.state == "open":
            if now - self.opened_at < self.config.cooldown:
                return False, None
            self.state = "half_open"
            self._probing = True
            return True, "half_open"
        if self._probing:
            return False, None
        self._probing = True  # the previous probe was abandoned without an outcome
        return True, None

    def record_success(self, now: float) -> BreakerState | None:
        """A request succeeded; returns "closed" when this closes the breaker."""
        self.consecutive_failures = 0
        if self.state == "half_open":
            self.state = "closed"
            self._probing = False
            self._outcomes.clear()
            self._failed_in_window = 0
            return "closed"
        self._add(now, failed=False)
        return None

    def record_failure(self, now: float) -> BreakerState | None:
        """A request failed because of the deployment; returns "open" when this opens it."""
        self.consecutive_failures += 1
        self._add(now, failed=True)
        if self.state == "half_open" or (self.state == "closed" and self._tripped()):
            self.state = "open"
            self.opened_at = now
            self._probing = False
            return "open"
        return None

    def release(self) -> None:
        """A probe ended without an outcome (the caller went away): let another one try."""
        self._probing = False

    def error_rate(self, now: float) -> float:
        """Failures / outcomes within the window (0.0 when there were none)."""
        self._prune(now)
        total = len(self._outcomes)
        return self._failed_in_window / total if total else 0.0

    def _add(self, now: float, *, failed: bool) -> None:
        self._outcomes.append((now, failed))
        if failed:
            self._failed_in_window += 1
        self._prune(now)

    def _prune(self, now: float) -> None:
        horizon = now - self.config.window
        outcomes = self._outcomes
        while outcomes and outcomes[0][0] < horizon:
            if outcomes.popleft()[1]:
                self._failed_in_window -= 1

    def _tripped(self) -> bool:
        cfg = self.config
        if self.consecutive_failures >= cfg.failures:
            return True
        total = len(self._outcomes)
        return total >= cfg.min_requests and self._failed_in_window / total > cfg.failure_rate
