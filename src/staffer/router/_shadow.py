"""Shadow requests: the champion answers the caller, the challenger answers a copy.

`ShadowModel` wraps the router. For a request to an alias with a shadowing
champion–challenger split it starts a background task that sends the same request
to the challenger deployment, then streams the champion's answer to the caller
exactly as the router gives it. The copy never delays or changes the caller's
stream: it runs in its own task, at most ``shadow_concurrency`` at a time per
split (more are skipped and counted), and its failures are swallowed and counted.
Both answers, cut to `TEXT_LIMIT` characters, are kept for the side-by-side report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from staffer.errors import ProviderError
from staffer.models import Model, ModelEvent, ModelRequest, TextDelta
from staffer.router._deployment import describe
from staffer.router._router import Router
from staffer.router._splits import SHADOW_KEY, TEXT_LIMIT, ShadowPair, Splits, SplitState
from staffer.router._types import RouterConfig

logger = logging.getLogger("staffer.router")

#: seconds `aclose` lets running shadow copies finish before cancelling them
CLOSE_GRACE = 5.0


def _last_user(request: ModelRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return (message.content or "")[:TEXT_LIMIT]
    return ""


def _side(deployment: str) -> dict[str, Any]:
    return {"deployment": deployment, "text": "", "ok": None, "error": None, "latency": None}


class ShadowModel(Model):
    """`router` plus shadow copies for the splits in `splits` that shadow (see module doc)."""

    def __init__(self, router: Router, splits: Splits) -> None:
        self.router = router
        self.splits = splits
        self.name = router.name
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def config(self) -> RouterConfig:
        return self.router.config

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        state = None
        if SHADOW_KEY not in request.metadata:
            state = self.splits.shadow_for(request.model or self.router.default_alias)
        if state is None:
            async for event in self.router.stream(request):
                yield event
            return
        request_id = request.metadata.get("request_id") or os.urandom(8).hex()
        # The champion's attempts and the shadow pair carry the same request id.
        request = replace(request, metadata={**request.metadata, "request_id": request_id})
        pair = self._start_shadow(state, request, request_id)
        started = time.monotonic()
        text: list[str] = []
        side = pair.champion if pair is not None else None
        try:
            async for event in self.router.stream(request):
                if side is not None and isinstance(event, TextDelta):
                    text.append(event.text)
                yield event
        except ProviderError as exc:
            if side is not None:
                side.update(ok=False, error=describe(exc))
            raise
        else:
            if side is not None:
                side["ok"] = True
        finally:
            if side is not None:
                side["text"] = "".join(text)[:TEXT_LIMIT]
                side["latency"] = time.monotonic() - started
                if side["ok"] is None:
                    side["error"] = "the caller stopped reading"

    def _start_shadow(
        self, state: SplitState, request: ModelRequest, request_id: str
    ) -> ShadowPair | None:
        c = state.config
        if state.shadow_in_flight >= c.shadow_concurrency:
            state.shadow_skipped += 1
            return None
        pair = ShadowPair(
            request_id, time.time(), _last_user(request), _side(c.stable), _side(c.candidate)
        )
        state.pairs.append(pair)
        copy = replace(
            request,
            model=c.candidate,
            messages=list(request.messages),  # the caller may append to its list afterwards
            tools=list(request.tools),
            metadata={
                **request.metadata,
                SHADOW_KEY: c.name,
                "cache": "no",
                "request_id": f"{request_id}-shadow",
            },
        )
        state.shadow_in_flight += 1
        state.shadow_sent += 1
        task = asyncio.get_running_loop().create_task(
            self._challenge(state, pair, copy), name=f"staffer-shadow-{c.name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return pair

    async def _challenge(self, state: SplitState, pair: ShadowPair, request: ModelRequest) -> None:
        side = pair.challenger
        started = time.monotonic()
        text: list[str] = []
        try:
            async for event in self.router.stream(request):
                if isinstance(event, TextDelta):
                    text.append(event.text)
            side["ok"] = True
        except asyncio.CancelledError:
            side.update(ok=False, error="cancelled")
            raise
        except Exception as exc:  # a shadow copy must never fail anything: count it and go on
            state.shadow_failed += 1
            side.update(ok=False, error=describe(exc))
            logger.info("shadow split=%s deployment=%s failed: %s", state.config.name,
                        state.config.candidate, describe(exc))  # fmt: skip
        finally:
            state.shadow_in_flight -= 1
            side["text"] = "".join(text)[:TEXT_LIMIT]
            side["latency"] = time.monotonic() - started

    async def drain(self, grace: float = CLOSE_GRACE) -> None:
        """Wait up to `grace` seconds for running shadow copies, then cancel the rest."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def aclose(self) -> None:
        await self.drain()
        await self.router.aclose()
