"""In-memory event fan-out: every run event gets a sequence number and goes to each subscriber.

A bounded buffer per session lets a client that reconnects with ``after=<seq>``
catch up while the session is live; `linger` seconds after a run ends with no new event
and nobody following, the buffer is dropped (the durable record is the session history
in the store).
Sequence numbers start from the clock so that numbers handed out before a
restart are always below the ones after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

Event = dict[str, Any]

#: A subscriber this far behind is cut off: a stalled reader must not hold memory forever.
MAX_BEHIND = 10_000
_SLOW: Event = {"type": "_slow_subscriber"}


class _Lane:
    __slots__ = ("active", "buffer", "subscribers")

    def __init__(self, size: int) -> None:
        self.buffer: deque[Event] = deque(maxlen=size)
        self.subscribers: set[asyncio.Queue[Event]] = set()
        self.active = True


class Subscription:
    """Events of one session with seq > `after`: the backlog first, then live ones.

    Subscribed from the moment it is created, so nothing published afterwards is
    missed; `aclose` unsubscribes whether or not it was ever iterated.
    """

    def __init__(self, hub: EventHub, session_id: str, after: int, idle: float | None) -> None:
        self._hub = hub
        self._session_id = session_id
        self._lane = hub._lane(session_id)
        self._queue: asyncio.Queue[Event] = asyncio.Queue(MAX_BEHIND)
        self._lane.subscribers.add(self._queue)
        self._backlog = deque(e for e in self._lane.buffer if e["seq"] > after)
        self._last = after
        self._idle = idle
        self._closed = False

    def __aiter__(self) -> AsyncIterator[Event | None]:
        return self

    async def __anext__(self) -> Event | None:
        """The next event, or None after `idle` seconds without one (for keep-alives)."""
        while not self._closed:
            if self._backlog:
                event = self._backlog.popleft()
            else:
                try:
                    event = await asyncio.wait_for(self._queue.get(), self._idle)
                except TimeoutError:
                    return None
                if event is _SLOW:
                    break
            if event["seq"] > self._last:
                self._last = event["seq"]
                return event
        await self.aclose()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._lane.subscribers.discard(self._queue)
            self._hub._forget_if_idle(self._session_id, self._lane)


class EventHub:
    """Publishes events per session and lets clients follow a session live."""

    def __init__(self, *, buffer_size: int = 2000, linger: float = 60.0) -> None:
        self._seq = itertools.count(time.time_ns() // 1000)
        self._lanes: dict[str, _Lane] = {}
        self._buffer_size = buffer_size
        self._linger = linger

    def last_seq(self) -> int:
        """A number below every event published from now on."""
        return next(self._seq)

    def publish(self, session_id: str, run_id: str, event: Event) -> Event:
        event = {**event, "seq": next(self._seq), "session_id": session_id, "run_id": run_id}
        lane = self._lane(session_id)
        lane.active = True
        lane.buffer.append(event)
        for queue in list(lane.subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                lane.subscribers.discard(queue)
                queue.get_nowait()  # make room for the marker that ends that stream
                queue.put_nowait(_SLOW)
        if event["type"] == "run_finished":
            lane.active = False
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to expire
                loop = asyncio.get_running_loop()
                loop.call_later(self._linger, self._expire, session_id, lane, event["seq"])
        return event

    def follow(self, session_id: str, after: int, *, idle: float | None = None) -> Subscription:
        """Subscribe now to the session's events with seq > `after`."""
        return Subscription(self, session_id, after, idle)

    def release(self, session_id: str) -> None:
        """The session's run is over: drop its buffer once nobody follows it."""
        lane = self._lanes.get(session_id)
        if lane is not None:
            lane.active = False
            self._forget_if_idle(session_id, lane)

    def _expire(self, session_id: str, lane: _Lane, seq: int) -> None:
        if lane.buffer and lane.buffer[-1]["seq"] == seq:  # nothing published since
            lane.active = False
            self._forget_if_idle(session_id, lane)

    def sessions_buffered(self) -> int:
        return len(self._lanes)

    def _forget_if_idle(self, session_id: str, lane: _Lane) -> None:
        if not lane.subscribers and not lane.active and self._lanes.get(session_id) is lane:
            del self._lanes[session_id]

    def _lane(self, session_id: str) -> _Lane:
        lane = self._lanes.get(session_id)
        if lane is None:
            lane = self._lanes[session_id] = _Lane(self._buffer_size)
        return lane
