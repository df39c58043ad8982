"""The router: a `Model` made of deployments, with retries, fallback and breakers.

For each request it resolves the alias, keeps the deployments that can serve it
(tools), lets the alias's strategy order them, and tries them in turn:

    retryable (429, 5xx, connect, timeouts, bad stream data)
        → same deployment again after exponential backoff with full jitter, at least
          Retry-After, up to `max_retries`; then the next deployment
    the deployment's own fault (401/403 key, 404 model, 402 billing) → next deployment
    context length → the next deployment with a larger context window
    any other 400/422 → raised at once: the request itself is wrong

Once an event has reached the caller nothing is retried (that would repeat text):
a failure then ends the stream with `StreamInterruptedError`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from staffer.errors import (
    BadRequestError,
    ConfigError,
    ContextLengthError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
)
from staffer.models import Model, ModelEvent, ModelRequest, Usage
from staffer.router._build import Route, build_deployments, build_routes
from staffer.router._deployment import AttemptState, Deployment, StalledError, Watchdog, describe
from staffer.router._strategies import STRATEGIES, Orderer
from staffer.router._types import (
    RouterConfig,
    RouterEvent,
    RouterEventKind,
    RouterObserver,
)

logger = logging.getLogger("staffer.router")
#: Request ids: a random prefix per process and a counter (unique without a syscall each).
_ID_PREFIX = os.urandom(4).hex()
_ids = itertools.count()


class UnknownAliasError(BadRequestError):
    """The request named a model that is neither an alias nor a deployment."""


class NoCapableDeploymentError(BadRequestError):
    """No deployment of the alias has a capability the request needs (e.g. tools)."""


class StreamInterruptedError(ProviderError):
    """A deployment failed after part of the answer reached the caller; not retried."""


class NoDeploymentAvailableError(ProviderUnavailableError):
    """Every deployment of the alias failed, is disabled, or has its breaker open."""


_FATAL, _NEXT, _RETRY, _LARGER = range(4)


def _classify(exc: ProviderError) -> int:
    if isinstance(exc, ContextLengthError):
        return _LARGER
    if isinstance(exc, BadRequestError):
        return _NEXT if exc.status == 404 else _FATAL
    return _RETRY if exc.retryable else _NEXT


async def _close(events: AsyncIterator[ModelEvent]) -> None:
    if isinstance(events, AsyncGenerator):
        await events.aclose()


class Router(Model):
    """Routes each request to a deployment of the alias it names, with fallback.

    `request.model` is an alias, a deployment name, or None for the default alias.
    `env` supplies API keys; `adapters` may supply ready models by deployment name.
    `clock`, `sleep` and `rng` are injectable so tests can control time and jitter.
    """

    def __init__(
        self,
        config: RouterConfig,
        *,
        env: Mapping[str, str] | None = None,
        observers: Iterable[RouterObserver] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
        strategies: Mapping[str, Orderer] | None = None,
        adapters: Mapping[str, Model] | None = None,
    ) -> None:
        if not config.deployments:
            raise ConfigError(
                "the router has no deployments",
                key="deployments",
                fix='add a [deployments.NAME] table with provider = "…" and model = "…"',
            )
        self.config = config
        self._observers: list[RouterObserver] = list(observers)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._deployments = build_deployments(config, env or {}, adapters or {})
        self._routes = build_routes(config, self._deployments, {**STRATEGIES, **(strategies or {})})
        self.default_alias = config.default_alias or next(
            iter(config.aliases or config.deployments)
        )
        if self.default_alias not in self._routes:
            raise ConfigError(
                f"no alias or deployment named {self.default_alias!r}",
                key="router.default_alias",
                fix=f"use one of {', '.join(self._routes)}",
            )
        self.name = f"router:{self.default_alias}"

    # --- public surface ---------------------------------------------------------

    def add_observer(self, observer: RouterObserver) -> None:
        """Report attempts and events to `observer` too (metrics, cost, logs)."""
        self._observers.append(observer)

    def deployment_states(self) -> list[dict[str, Any]]:
        """Breaker state, in-flight count, latency averages and error rate per deployment."""
        now = self._clock()
        return [d.state(now) for d in self._deployments.values()]

    @property
    def aliases(self) -> list[str]:
        return list(self.config.aliases)

    async def aclose(self) -> None:
        for deployment in self._deployments.values():
            if deployment.model is not None:
                await deployment.model.aclose()

    def _route(self, name: str | None) -> Route:
        route = self._routes.get(name or self.default_alias)
        if route is None:
            known = ", ".join(self.config.aliases) or "none"
            raise UnknownAliasError(
                f"unknown model {name!r}: it is neither an alias nor a deployment. "
                f"Aliases: {known}; deployments: {', '.join(self._deployments)}. "
                "Fix: ask for one of those, or add it to config.toml.",
                provider="router",
                status=404,
            )
        return route

    # --- the request path -------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        route = self._route(request.model)
        candidates = route.with_tools if request.tools else route.deployments
        if not candidates:
            raise NoCapableDeploymentError(
                f'no deployment of {route.name!r} supports tools. Fix: add "tools" to the '
                f"capabilities of one of {', '.join(d.name for d in route.deployments)}.",
                provider="router",
                status=400,
            )
        plan = route.order(candidates, request, self._rng)
        if request.model is not None:
            request = request.with_model(None)  # adapters would send it as the wire model
        metadata = request.metadata
        request_id = metadata.get("request_id") or f"{_ID_PREFIX}{next(_ids):08x}"
        loop = asyncio.get_running_loop()
        clock = self._clock
        failures: list[str] = []
        last: ProviderError | None = None
        pending: tuple[Deployment, ProviderError, float] | None = None
        min_window: int | None = None
        number = 0
        for dep in plan:
            model = dep.model
            if model is None:
                failures.append(f"{dep.name}: disabled ({dep.disabled})")
                continue
            if min_window is not None and (dep.config.context_window or 0) <= min_window:
                failures.append(f"{dep.name}: context window not larger than {min_window}")
                continue
            timeouts = dep.config.timeouts
            tries = 0
            while True:
                if not self._admit(dep, route.name, number):
                    wait = dep.config.breaker.cooldown - (clock() - dep.breaker.opened_at)
                    failures.append(f"{dep.name}: circuit open (probing again in {wait:.0f} s)")
                    break
                if pending is not None:
                    failed, why, latency = pending
                    text = f"{describe(why)}; falling back to {dep.name}"
                    self._event("fallback", failed, text, route.name, number, latency)
                    pending = None
                number += 1
                tries += 1
                dep.inflight += 1
                dep.requests += 1
                state = AttemptState(dep, number, clock())
                events = model.stream(request)
                error: ProviderError | None = None
                done = False
                watchdog = Watchdog(loop, loop.time() + timeouts.ttft)
                try:
                    while True:
                        watchdog.waiting = True
                        try:
                            event = await anext(events)
                        except StopAsyncIteration:
                            done = True
                            break
                        except ProviderError as exc:
                            error = exc
                            break
                        except asyncio.CancelledError:
                            if not watchdog.claim():
                                raise
                            error = watchdog.error(dep, state.chunks)
                            break
                        watchdog.waiting = False
                        if not state.chunks:
                            state.first = clock()
                        state.chunks += 1
                        if isinstance(event, Usage):
                            state.usage = event
                        yield event
                        watchdog.move(loop.time() + timeouts.idle)
                finally:
                    watchdog.stop()
                    dep.inflight -= 1
                    if not done and error is None:  # the caller stopped reading, or cancelled
                        await _close(events)
                        dep.breaker.release()
                        now = clock()
                        self._report(state, request_id, route.name, metadata, now, cancelled=True)
                now = clock()
                if error is None:
                    self._succeeded(state, route.name, now)
                    self._report(state, request_id, route.name, metadata, now)
                    return
                await _close(events)
                last = error
                self._report(state, request_id, route.name, metadata, now, error)
                # A stall is not worth waiting for twice: it falls back at once.
                kind = _NEXT if isinstance(error, StalledError) else _classify(error)
                if kind not in (_FATAL, _LARGER):
                    dep.failures += 1
                    if dep.breaker.record_failure(now) == "open":
                        latency = now - state.started
                        self._event(
                            "breaker_open", dep, describe(error), route.name, number, latency
                        )
                if state.chunks:
                    raise StreamInterruptedError(
                        f"{dep.name} failed after {state.chunks} events had reached the caller, "
                        f"so the answer is incomplete and was not retried: {error}",
                        provider=error.provider,
                        status=error.status,
                        body=error.body,
                    ) from error
                if kind == _FATAL:
                    raise error
                if kind == _RETRY and tries <= dep.config.max_retries:
                    delay = self._retry_delay(dep, error, tries)
                    if delay is not None:
                        cause = f"{describe(error)}; retrying in {delay:.3g} s"
                        self._event("retry", dep, cause, route.name, number, now - state.started)
                        await self._sleep(delay)
                        continue
                if kind == _LARGER:
                    min_window = dep.config.context_window or 0
                failures.append(f"{dep.name}: {describe(error)}")
                pending = (dep, error, now - state.started)
                break
        if last is not None and number == 1 and len(failures) == 1:
            raise last
        raise NoDeploymentAvailableError(
            f"no deployment of {route.name!r} could answer ({number} attempts): "
            + "; ".join(failures)
            + ". Fix: check the deployments' state (breakers, keys) and the log of staffer.router.",
            provider="router",
            status=last.status if last else None,
            body=last.body if last else None,
        ) from last

    # --- bookkeeping --------------------------------------------------------------

    def _admit(self, dep: Deployment, alias: str, number: int) -> bool:
        breaker = dep.breaker
        if breaker.state == "closed":
            return True
        allowed, change = breaker.allow(self._clock())
        if change == "half_open":
            cause = f"cooldown of {breaker.config.cooldown:g} s over; sending one probe"
            self._event("breaker_half_open", dep, cause, alias, number + 1, None)
        return allowed

    def _succeeded(self, state: AttemptState, alias: str, now: float) -> None:
        dep, chunks, usage = state.deployment, state.chunks, state.usage
        if chunks:
            tokens = usage.output_tokens if usage and usage.output_tokens else chunks
            tpot = (now - state.first) / (tokens - 1) if tokens > 1 else None
            dep.observe_latency(state.first - state.started, tpot)
        if dep.breaker.record_success(now) == "closed":
            latency = now - state.started
            self._event("breaker_closed", dep, "probe succeeded", alias, state.number, latency)

    def _retry_delay(self, dep: Deployment, error: ProviderError, tries: int) -> float | None:
        """Backoff with full jitter, never shorter than Retry-After; None when the wait
        would exceed the deployment's limit (falling back is better than waiting)."""
        cfg = dep.config
        cap = min(cfg.retry_max_wait, cfg.timeouts.total)
        delay = self._rng.uniform(0.0, min(cap, cfg.retry_backoff * 2 ** (tries - 1)))
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            if error.retry_after > cap:
                return None
            delay = max(delay, error.retry_after)
        return delay

    def _event(
        self,
        kind: RouterEventKind,
        dep: Deployment,
        cause: str,
        alias: str,
        attempt: int | None,
        latency: float | None,
    ) -> None:
        event = RouterEvent(kind, dep.name, cause, alias, attempt, latency, time.time())
        level = logging.WARNING if kind in ("fallback", "breaker_open") else logging.INFO
        took = "-" if latency is None else f"{latency:.3f}s"
        logger.log(
            level,
            "%s deployment=%s alias=%s attempt=%s latency=%s cause=%s",
            kind, dep.name, alias, attempt, took, cause,
        )  # fmt: skip
        for observer in self._observers:
            try:
                observer.on_event(event)
            except Exception:
                logger.exception("router observer %r failed on an event", observer)

    def _report(self, state: AttemptState, *args: Any, **kw: Any) -> None:
        if not self._observers:
            return
        record = state.record(*args, **kw)
        for observer in self._observers:
            try:
                observer.on_attempt(record)
            except Exception:
                logger.exception("router observer %r failed on an attempt", observer)
