"""An exact-match response cache that wraps any `Model` and is itself a `Model`.

The key is a hash of the normalized request: messages, tools, model (or alias),
``max_tokens`` and ``temperature``; ``metadata`` (agent, session, user…) is left
out, so the same question from two sessions hits. Only complete answers are
kept (the stream ended with a non-error `Finish` and nobody stopped reading);
a hit replays the same event sequence. A request opts out with
``metadata={"cache": "no"}``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from staffer.models import Finish, Model, ModelEvent, ModelRequest

#: ``ModelRequest.metadata["cache"]`` value that bypasses the cache
OPT_OUT = "no"


class CacheObserver(Protocol):
    """Told about every lookup; `MetricsObserver` implements it."""

    def on_cache(self, hit: bool, model: str = "") -> None: ...


def cache_key(request: ModelRequest) -> str:
    """The hex SHA-256 of `request` in a canonical JSON form (metadata excluded)."""
    normalized: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "tool_calls": [[c.id, c.name, c.arguments] for c in m.tool_calls],
                "tool_call_id": m.tool_call_id,
                "name": m.name,
                "is_error": m.is_error,
            }
            for m in request.messages
        ],
        "tools": [[t.name, t.description, t.parameters] for t in request.tools],
    }
    text = json.dumps(normalized, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class CachedModel(Model):
    """`model` with a bounded, TTL'd cache of complete answers in front of it.

    `ttl` is in seconds; at most `max_entries` answers are kept, the least
    recently used evicted first. `metrics` is told about each hit and miss (a
    bypassed request is neither). `clock` is ``time.monotonic`` or a fake.
    """

    def __init__(
        self,
        model: Model,
        *,
        ttl: float = 300.0,
        max_entries: int = 1000,
        metrics: CacheObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.name = model.name
        self.ttl = ttl
        self.max_entries = max_entries
        self.metrics = metrics
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self.bypassed = 0
        self._entries: OrderedDict[str, tuple[float, tuple[ModelEvent, ...]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every cached answer."""
        self._entries.clear()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        if request.metadata.get("cache") == OPT_OUT:
            self.bypassed += 1
            async for event in self.model.stream(request):
                yield event
            return
        key = cache_key(request)
        cached = self._get(key)
        self._count(cached is not None)
        if cached is not None:
            for event in cached:  # events are frozen dataclasses: safe to hand out again
                yield event
            return
        events: list[ModelEvent] = []
        async for event in self.model.stream(request):
            events.append(event)
            yield event
        # Reached only when the stream ended normally and the caller read it all.
        last = events[-1] if events else None
        if isinstance(last, Finish) and last.reason != "error":
            self._put(key, tuple(events))

    async def aclose(self) -> None:
        await self.model.aclose()

    def _get(self, key: str) -> tuple[ModelEvent, ...] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, events = entry
        if self.clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return events

    def _put(self, key: str, events: tuple[ModelEvent, ...]) -> None:
        self._entries[key] = (self.clock() + self.ttl, events)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def _count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        if self.metrics is not None:
            self.metrics.on_cache(hit, self.name)
