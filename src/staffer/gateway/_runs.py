"""Runs turns as background tasks, one at a time per session (the session is a lane).

A message sent while the session's run is active is, by ``agent.busy``:

- ``queue``: kept in memory with a ticket (``q_…``) and started as its own run when
  the active run ends; its user message is stored then, so the history stays in order;
- ``steer``: handed to the active run, which adds it to its context before its next
  model call (see `RunControl`);
- ``reject``: refused with `RunActiveError` (409).

`cancel` stops the active run (at once while it streams or runs a tool) and drops the
messages still waiting. A watchdog fails a run that emits nothing for
``agent.stuck_after`` seconds. Waiting messages live in memory only: a restart loses them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from staffer.agent import Agent, RunControl
from staffer.config._model import BUSY_MODES
from staffer.errors import ConfigError
from staffer.gateway._hub import EventHub

logger = logging.getLogger("staffer.gateway")
DROPPED = "cancelled before it started"


class RunActiveError(Exception):
    """A session already has a run in progress (`run_id` is None while it is starting)."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        super().__init__("a run is still active in this session")


class QueueFullError(Exception):
    """The session already has `limit` messages waiting for its active run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"{limit} messages are already waiting in this session")


@dataclass(slots=True, frozen=True)
class Accepted:
    """What became of a message: a new run, a queued message (`ticket`) or steering."""

    run_id: str | None
    after: int  # every event about this message has seq > after
    status: str  # "running", "queued" or "steered"
    ticket: str | None = None
    position: int | None = None


@dataclass(slots=True)
class _Waiting:
    ticket: str
    text: str
    title: str | None


@dataclass(slots=True)
class _Lane:
    control: RunControl = field(default_factory=RunControl)
    run_id: str | None = None  # None while the next run is starting
    task: asyncio.Task[None] | None = None
    queue: deque[_Waiting] = field(default_factory=deque)
    last_event: float = field(default_factory=time.monotonic)


class RunManager:
    """Owns the tasks that execute runs; the app's lifespan cancels them on shutdown."""

    def __init__(self, agent: Agent, hub: EventHub) -> None:
        config = agent.config
        if config.busy not in BUSY_MODES:
            raise ConfigError(
                f"unknown mode {config.busy!r}",
                key="agent.busy",
                fix='use "queue", "steer" or "reject"',
            )
        self.agent = agent
        self.hub = hub
        self.busy = config.busy
        self.stuck_after = config.stuck_after
        self.max_queued = config.max_queued
        self._lanes: dict[str, _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def active_run(self, session_id: str) -> str | None:
        lane = self._lanes.get(session_id)
        return lane.run_id if lane else None

    def queued(self, session_id: str) -> list[dict[str, Any]]:
        """The session's waiting messages, next first."""
        lane = self._lanes.get(session_id)
        if lane is None:
            return []
        return [{"ticket": w.ticket, "text": w.text} for w in lane.queue]

    def session_of(self, run_id: str) -> str | None:
        """The session whose active run (or queued ticket) this is."""
        for session_id, lane in self._lanes.items():
            if lane.run_id == run_id or any(w.ticket == run_id for w in lane.queue):
                return session_id
        return None

    async def start(self, session_id: str, text: str, *, title: str | None = None) -> Accepted:
        """Start a run for the message, or queue it, steer with it or refuse it (`busy`).

        `title` names an untitled session. Raises `RunActiveError` (reject mode) or
        `QueueFullError`.
        """
        lane = self._lanes.get(session_id)
        if lane is None:
            lane = self._lanes[session_id] = _Lane()
            after = self.hub.last_seq()
            try:
                run_id = await self._begin(session_id, lane, text, title, ticket=None)
            except BaseException:
                if lane.queue:  # messages queued meanwhile still get their turn
                    self._spawn(self._advance(session_id, lane), f"lane-{session_id}")
                else:
                    self._lanes.pop(session_id, None)
                raise
            return Accepted(run_id, after, "running")
        if self.busy == "reject":
            raise RunActiveError(lane.run_id)
        if len(lane.queue) + lane.control.inbox.qsize() >= self.max_queued:
            raise QueueFullError(self.max_queued)
        after = self.hub.last_seq()
        if self.busy == "steer" and lane.run_id is not None and lane.control.stopped is None:
            lane.control.inbox.put_nowait(text)
            return Accepted(lane.run_id, after, "steered")
        waiting = _Waiting(f"q_{secrets.token_hex(8)}", text, title)
        lane.queue.append(waiting)
        self._announce(session_id, waiting, len(lane.queue))
        return Accepted(None, after, "queued", waiting.ticket, len(lane.queue))

    def cancel(self, session_id: str) -> tuple[bool, str | None, int]:
        """Stop the session's run and drop its waiting messages.

        Return ``(anything_stopped, run_id, dropped)``; the run ends "cancelled" at its
        next step boundary, or at once while it streams or runs a tool.
        """
        lane = self._lanes.get(session_id)
        if lane is None:
            return False, None, 0
        dropped = self._drop_waiting(session_id, lane)
        lane.control.stop("cancelled", "cancelled by the user")
        if lane.task is not None:
            lane.task.cancel()
        logger.info("session %s: run %s cancelled", session_id, lane.run_id)
        return True, lane.run_id, dropped

    async def aclose(self) -> None:
        """Cancel runs still in flight and wait for them to record their end."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the lane's life ------------------------------------------------------

    async def _begin(
        self, session_id: str, lane: _Lane, text: str, title: str | None, *, ticket: str | None
    ) -> str:
        if title:
            await self.agent.store.rename_session(session_id, title)
        run_id = await self.agent.start_run(session_id, text)
        lane.run_id = run_id
        lane.task = self._spawn(self._execute(session_id, lane, run_id, ticket), f"run-{run_id}")
        return run_id

    async def _execute(self, session_id: str, lane: _Lane, run_id: str, ticket: str | None) -> None:
        finished = False
        lane.last_event = time.monotonic()
        watchdog = None
        if self.stuck_after > 0:
            watchdog = self._spawn(self._watch(session_id, lane), f"watch-{run_id}")

        def emit(event: dict[str, Any]) -> None:
            nonlocal finished
            lane.last_event = time.monotonic()
            finished = finished or event.get("type") == "run_finished"
            if ticket is not None and event.get("type") == "run_started":
                event = {**event, "ticket": ticket}
            self.hub.publish(session_id, run_id, event)

        try:
            await self.agent.run_turn(session_id, run_id, emit, control=lane.control)
        except asyncio.CancelledError:
            if lane.control.stopped is None or self._closing:
                raise  # shutdown: the run recorded its end; let the task be cancelled
        except Exception as exc:
            # Ending the run failed (the store, most likely): listeners must still hear
            # that it is over, or they would wait forever.
            logger.exception("run %s could not be finished", run_id)
            if not finished:
                emit(
                    {
                        "type": "run_finished",
                        "status": "failed",
                        "error": f"internal error: {exc}",
                        "text": "",
                        "usage": None,
                    }
                )
        finally:
            # No await in here: a cancel that arrives now must not interrupt the hand-over.
            if watchdog is not None:
                watchdog.cancel()
            self._next_run(session_id, lane)

    def _next_run(self, session_id: str, lane: _Lane) -> None:
        # Steering that arrived after the run's last step becomes the next run.
        leftovers: list[_Waiting] = []
        while not lane.control.inbox.empty():
            text = lane.control.inbox.get_nowait()
            leftovers.append(_Waiting(f"q_{secrets.token_hex(8)}", text, None))
        lane.queue.extendleft(reversed(leftovers))
        for waiting in leftovers:
            self._announce(session_id, waiting, lane.queue.index(waiting) + 1)
        lane.run_id, lane.task, lane.control = None, None, RunControl()
        if self._closing or not lane.queue:
            self._lanes.pop(session_id, None)
            self.hub.release(session_id)
            return
        self._spawn(self._advance(session_id, lane), f"lane-{session_id}")

    async def _advance(self, session_id: str, lane: _Lane) -> None:
        """Start the next waiting message of the lane as its own run."""
        while lane.queue and not self._closing:
            waiting = lane.queue.popleft()
            try:
                await self._begin(
                    session_id, lane, waiting.text, waiting.title, ticket=waiting.ticket
                )
                return
            except Exception as exc:
                logger.exception("queued message %s could not start", waiting.ticket)
                self._publish_end(session_id, waiting.ticket, "failed", f"could not start: {exc}")
        self._lanes.pop(session_id, None)
        self.hub.release(session_id)

    async def _watch(self, session_id: str, lane: _Lane) -> None:
        """Fail the lane's run once it has gone `stuck_after` seconds without an event."""
        while True:
            idle = time.monotonic() - lane.last_event
            if idle >= self.stuck_after:
                break
            await asyncio.sleep(self.stuck_after - idle)
        reason = f"stopped: no progress for {self.stuck_after:g} s"
        logger.warning("session %s: run %s %s", session_id, lane.run_id, reason)
        if lane.run_id is not None:
            self.hub.publish(
                session_id,
                lane.run_id,
                {
                    "type": "notice",
                    "text": f"{reason} (the model or a tool hung); send the message again, "
                    "or raise agent.stuck_after",
                },
            )
        lane.control.stop("failed", reason)
        if lane.task is not None:
            lane.task.cancel()

    # --- helpers ----------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _announce(self, session_id: str, waiting: _Waiting, position: int) -> None:
        # Until its run exists, a queued message's events carry its ticket as run_id.
        event = {"type": "run_queued", "ticket": waiting.ticket, "position": position}
        self.hub.publish(session_id, waiting.ticket, {**event, "text": waiting.text})

    def _drop_waiting(self, session_id: str, lane: _Lane) -> int:
        dropped = list(lane.queue)
        lane.queue.clear()
        while not lane.control.inbox.empty():
            text = lane.control.inbox.get_nowait()
            dropped.append(_Waiting("", text, None))
        for waiting in dropped:
            if waiting.ticket:
                self._publish_end(session_id, waiting.ticket, "cancelled", DROPPED)
        return len(dropped)

    def _publish_end(self, session_id: str, ticket: str, status: str, error: str) -> None:
        event = {"type": "run_finished", "status": status, "error": error, "text": ""}
        self.hub.publish(session_id, ticket, {**event, "usage": None, "ticket": ticket})
