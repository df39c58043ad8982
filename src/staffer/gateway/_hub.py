"""In-memory event fan-out: every run event gets a sequence number and goes to each subscriber.

A bounded buffer per session lets a client that reconnects with ``after=<seq>``
catch up; the durable record is the session history in the store. Sequence
numbers start from the clock so that numbers handed out before a restart are
always below the ones after it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

Event = dict[str, Any]


class _Lane:
    __slots__ = ("buffer", "subscribers")

    def __init__(self, size: int) -> None:
        self.buffer: deque[Event] = deque(maxlen=size)
        self.subscribers: set[asyncio.Queue[Event]] = set()


class EventHub:
    """Publishes events per session and lets clients follow a session live."""

    def __init__(self, *, buffer_size: int = 2000) -> None:
        self._seq = itertools.count(time.time_ns() // 1000)
        self._lanes: dict[str, _Lane] = {}
        self._buffer_size = buffer_size

    def last_seq(self) -> int:
        """A number below every event published from now on."""
        return next(self._seq)

    def publish(self, session_id: str, run_id: str, event: Event) -> Event:
        event = {**event, "seq": next(self._seq), "session_id": session_id, "run_id": run_id}
        lane = self._lane(session_id)
        lane.buffer.append(event)
        for queue in lane.subscribers:
            queue.put_nowait(event)
        return event

    async def follow(
        self, session_id: str, after: int, *, idle: float | None = None
    ) -> AsyncGenerator[Event | None, None]:
        """Buffered events with seq > `after`, then live ones, until the caller stops.

        With `idle`, yields None after that many seconds without an event (for keep-alives).
        """
        lane = self._lane(session_id)
        queue: asyncio.Queue[Event] = asyncio.Queue()
        lane.subscribers.add(queue)
        try:
            backlog = [e for e in lane.buffer if e["seq"] > after]
            last = after
            for event in backlog:
                last = event["seq"]
                yield event
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), idle)
                except TimeoutError:
                    yield None
                    continue
                if event["seq"] > last:
                    last = event["seq"]
                    yield event
        finally:
            lane.subscribers.discard(queue)

    def _lane(self, session_id: str) -> _Lane:
        lane = self._lanes.get(session_id)
        if lane is None:
            lane = self._lanes[session_id] = _Lane(self._buffer_size)
        return lane
