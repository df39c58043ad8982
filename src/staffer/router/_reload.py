"""Swap the gateway's model (router, splits, cache, tiers) without dropping a request.

`ReloadableModel` is a `Model` that forwards to its current *generation*. A
stream keeps the generation it started with to its end; `swap` makes a new one
current at once, and the old one is closed in the background when its last
stream has finished (or after `drain_timeout` seconds, whichever comes first).

    swap(new) ──► new requests use `new`
                  streams already running finish on the old one
                  last old stream ends ──► old.aclose()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from staffer.models import Model, ModelEvent, ModelRequest
from staffer.router._types import RouterConfig

logger = logging.getLogger("staffer.router")


@dataclass(slots=True)
class Built:
    """One generation's parts: the model to serve and the router inside it, if any."""

    model: Model
    router: Any = None  # a Router (kept untyped so this module loads without httpx)


class _Generation:
    __slots__ = ("built", "idle", "inflight", "number", "retired")

    def __init__(self, built: Built, number: int) -> None:
        self.built = built
        self.number = number
        self.inflight = 0
        self.retired = False
        self.idle = asyncio.Event()


class ReloadableModel(Model):
    """The current generation of the gateway's model; `swap` replaces it (see module doc).

    It shows the current router's `config` and `deployment_states`, so code that
    looks for a router (the /v1 API, the metrics) sees through it; with a bare
    adapter inside, `model` is the adapter's own model id.
    """

    def __init__(self, built: Built, *, drain_timeout: float = 600.0) -> None:
        self.drain_timeout = drain_timeout
        self._current = _Generation(built, 1)
        self.name = built.model.name
        self._draining: dict[asyncio.Task[None], _Generation] = {}

    # --- what the rest of the gateway reads ----------------------------------

    @property
    def current(self) -> Built:
        return self._current.built

    @property
    def generation(self) -> int:
        return self._current.number

    @property
    def config(self) -> RouterConfig | None:
        router = self._current.built.router
        return None if router is None else router.config

    @property
    def model(self) -> str | None:
        inner = self._current.built.model
        while not isinstance(getattr(inner, "model", None), str | None):
            inner = inner.model  # type: ignore[attr-defined]
        short = getattr(inner, "model", None)
        return short if isinstance(short, str) else None

    def deployment_states(self) -> list[dict[str, Any]]:
        router = self._current.built.router
        return [] if router is None else router.deployment_states()

    def in_flight(self) -> dict[int, int]:
        """Streams running per generation still open (the current one included)."""
        gens = [*self._draining.values(), self._current]
        return {gen.number: gen.inflight for gen in gens}

    # --- swapping ----------------------------------------------------------------

    def swap(self, built: Built) -> int:
        """Make `built` current; the old generation closes once its streams are done."""
        old = self._current
        self._current = _Generation(built, old.number + 1)
        self.name = built.model.name
        old.retired = True
        if old.inflight == 0:
            old.idle.set()
        task = asyncio.get_running_loop().create_task(
            self._retire(old), name=f"staffer-router-drain-{old.number}"
        )
        self._draining[task] = old
        task.add_done_callback(self._forget)
        logger.info(
            "router generation %d is current; generation %d drains %d streams",
            self._current.number, old.number, old.inflight,
        )  # fmt: skip
        return self._current.number

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._draining.pop(task, None)

    async def _retire(self, gen: _Generation) -> None:
        try:
            await asyncio.wait_for(gen.idle.wait(), self.drain_timeout)
        except TimeoutError:
            logger.warning(
                "router generation %d still had %d streams after %g s; closing it",
                gen.number, gen.inflight, self.drain_timeout,
            )  # fmt: skip
        try:
            await gen.built.model.aclose()
        except Exception:  # closing an old generation must never break the new one
            logger.exception("closing router generation %d failed", gen.number)

    async def drained(self) -> None:
        """Wait until every retired generation is closed (for tests and shutdown)."""
        while self._draining:
            await asyncio.gather(*list(self._draining), return_exceptions=True)

    # --- Model ------------------------------------------------------------------------

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        gen = self._current
        gen.inflight += 1
        try:
            async for event in gen.built.model.stream(request):
                yield event
        finally:
            gen.inflight -= 1
            if gen.retired and gen.inflight == 0:
                gen.idle.set()

    async def aclose(self) -> None:
        """Close every generation: retired ones without waiting for their streams."""
        for gen in self._draining.values():
            gen.idle.set()
        await self.drained()
        await self._current.built.model.aclose()
