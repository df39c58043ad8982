"""A deployment at run time (its adapter, breaker and the figures routing reads), and the
bookkeeping of one attempt on it: its record and its timeouts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from staffer.errors import ProviderError, ProviderUnavailableError
from staffer.models import Model, Usage
from staffer.router._breaker import CircuitBreaker
from staffer.router._types import Attempt, DeploymentConfig

#: weight of the newest sample in the latency averages
EWMA_ALPHA = 0.3


class Deployment:
    """One configured deployment: the adapter that reaches it plus live statistics.

    `disabled` holds the reason when the deployment could not be set up (a missing key):
    the router then skips it, says why, and keeps serving with the others.
    """

    __slots__ = (
        "breaker",
        "capabilities",
        "config",
        "disabled",
        "ewma_tpot",
        "ewma_ttft",
        "failures",
        "inflight",
        "model",
        "name",
        "requests",
    )

    def __init__(
        self, config: DeploymentConfig, model: Model | None, disabled: str | None = None
    ) -> None:
        self.config = config
        self.name = config.name
        self.model = model
        self.disabled = disabled if model is None else None
        self.capabilities = config.capabilities
        self.breaker = CircuitBreaker(config.breaker)
        self.inflight = 0
        self.ewma_ttft: float | None = None
        self.ewma_tpot: float | None = None
        self.requests = 0
        self.failures = 0

    def observe_latency(self, ttft: float, tpot: float | None) -> None:
        """Fold one successful attempt's time to first token and time per output token in."""
        old = self.ewma_ttft
        self.ewma_ttft = ttft if old is None else old + EWMA_ALPHA * (ttft - old)
        if tpot is not None:
            old = self.ewma_tpot
            self.ewma_tpot = tpot if old is None else old + EWMA_ALPHA * (tpot - old)

    def state(self, now: float) -> dict[str, Any]:
        """What the API and metrics show about this deployment."""
        breaker = self.breaker
        return {
            "name": self.name,
            "provider": self.config.provider,
            "model": self.config.model,
            "state": "disabled" if self.disabled else breaker.state,
            "disabled_reason": self.disabled,
            "inflight": self.inflight,
            "ewma_ttft": self.ewma_ttft,
            "ewma_tpot": self.ewma_tpot,
            "consecutive_failures": breaker.consecutive_failures,
            "error_rate": breaker.error_rate(now),
            "requests": self.requests,
            "failures": self.failures,
        }


class AttemptState:
    """What one attempt has seen so far; turned into an `Attempt` record when it ends."""

    __slots__ = ("chunks", "deployment", "first", "number", "started", "usage", "wall")

    def __init__(self, deployment: Deployment, number: int, started: float) -> None:
        self.deployment = deployment
        self.number = number
        self.wall = time.time()
        self.started = started
        self.first = 0.0
        self.chunks = 0
        self.usage: Usage | None = None

    def record(
        self,
        request_id: str,
        alias: str,
        metadata: dict[str, str],
        now: float,
        error: ProviderError | None = None,
        *,
        cancelled: bool = False,
    ) -> Attempt:
        return Attempt(
            request_id=request_id,
            alias=alias,
            deployment=self.deployment.name,
            attempt=self.number,
            ok=error is None and not cancelled,
            error=None if error is None else describe(error),
            status=None if error is None else error.status,
            started_at=self.wall,
            ttft=self.first - self.started if self.chunks else None,
            duration=now - self.started,
            output_chunks=self.chunks,
            usage=self.usage or Usage(),
            metadata=metadata,
            cancelled=cancelled,
        )


class StalledError(ProviderUnavailableError):
    """The router's own time-to-first-token or idle-gap timeout fired."""


class Watchdog:
    """The time-to-first-token and idle-gap timeouts of one attempt, on a single timer.

    `asyncio.timeout` around every chunk costs a timer per chunk; this keeps one timer
    that re-arms itself only when the deadline has moved. It cancels the task only while
    `waiting` is set, i.e. while the task awaits the provider, never while the caller's
    code runs between chunks. After a CancelledError, `claim()` says whether it was ours.
    """

    __slots__ = (
        "_armed_at",
        "_baseline",
        "_handle",
        "_loop",
        "_task",
        "deadline",
        "expired",
        "waiting",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        task = asyncio.current_task(loop)
        assert task is not None, "the router must run inside a task"
        self._loop = loop
        self._task = task
        self._baseline = task.cancelling()
        self.deadline = deadline
        self.expired = False
        self.waiting = False
        self._armed_at = deadline
        self._handle = loop.call_at(deadline, self._fire)

    def move(self, deadline: float) -> None:
        """Set a new deadline; the timer is only re-armed when it moves earlier."""
        self.deadline = deadline
        if deadline < self._armed_at:
            self._handle.cancel()
            self._armed_at = deadline
            self._handle = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        now = self._loop.time()
        if not self.waiting or now < self.deadline:
            self._armed_at = max(self.deadline, now + 0.001)
            self._handle = self._loop.call_at(self._armed_at, self._fire)
            return
        self.expired = True
        self._task.cancel()

    def claim(self) -> bool:
        """True when the pending cancellation was only this watchdog's (it is withdrawn)."""
        if not self.expired:
            return False
        self.expired = False
        return self._task.uncancel() <= self._baseline

    @staticmethod
    def error(deployment: Deployment, chunks: int) -> StalledError:
        """The error for a timeout that fired after `chunks` events."""
        t, name = deployment.config.timeouts, deployment.name
        if chunks:
            what, key = f"went silent for more than {t.idle:g} s after {chunks} events", "idle"
        else:
            what, key = f"sent no first token within {t.ttft:g} s", "ttft"
        return StalledError(
            f"{name} {what}. Fix: retry, or raise timeout_{key} of deployments.{name}.",
            provider=deployment.config.provider,
        )

    def stop(self) -> None:
        self._handle.cancel()
        if self.expired and self._task.cancelling() > self._baseline:
            # Fired, but the provider's stream ended before the cancellation landed.
            self._task.uncancel()
            self.expired = False


def describe(exc: BaseException) -> str:
    """One line for logs and records: the error's class and message, without the fix."""
    text = str(exc).split(" Fix:", 1)[0].strip().rstrip(".")
    return f"{type(exc).__name__}: {text[:300]}"
