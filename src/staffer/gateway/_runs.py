"""The gateway's side of runs: each message becomes a durable run in the store.

Runs execute on an `Executor` (this process's, or a worker's), one at a time per
session (the session is a lane). A message sent while the session's run is active
is, by ``agent.busy``:

- ``queue``: stored as a queued run (its id is also its ``ticket``), started when the
  active run ends; its user message joins the history then, so the history stays in order;
- ``steer``: handed to the active run, which adds it to its context before its next
  model call (when that run executes in another process, the message is queued);
- ``reject``: refused with `RunActiveError` (409).

`cancel` stops the active run (at once when it executes here; at the owner's next
heartbeat, or its notification, when elsewhere) and cancels the queued ones. Queued
runs live in the store: a restart keeps them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from staffer.config import AgentConfig
from staffer.config._model import BUSY_MODES
from staffer.errors import ConfigError
from staffer.gateway._hub import EventHub
from staffer.runs import Executor
from staffer.store import Store

logger = logging.getLogger("staffer.gateway")
DROPPED = "cancelled before it started"
CANCELLED = "cancelled by the user"


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
    """What became of a message: a new run, a queued run (`ticket`) or steering."""

    run_id: str | None
    after: int  # every event about this message has seq > after
    status: str  # "running", "queued" or "steered"
    ticket: str | None = None
    position: int | None = None


class RunManager:
    """Turns messages into queued runs and wakes whoever executes them."""

    def __init__(
        self,
        store: Store,
        hub: EventHub,
        config: AgentConfig,
        *,
        executor: Executor | None = None,
        notify: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        if config.busy not in BUSY_MODES:
            raise ConfigError(
                f"unknown mode {config.busy!r}",
                key="agent.busy",
                fix='use "queue", "steer" or "reject"',
            )
        self.store = store
        self.hub = hub
        self.executor = executor
        self.busy = config.busy
        self.max_queued = config.max_queued
        self._notify = notify  # tells other processes (Postgres NOTIFY), if any

    async def active_run(self, session_id: str) -> str | None:
        run = await self.store.active_run(session_id)
        return run.id if run else None

    async def queued(self, session_id: str) -> list[dict[str, Any]]:
        """The session's waiting messages, next first."""
        return [{"ticket": r.id, "text": r.input} for r in await self.store.queued_runs(session_id)]

    async def session_of(self, run_id: str) -> str | None:
        """The session of the run, while it is active or queued."""
        run = await self.store.get_run(run_id)
        if run is None or run.status not in ("queued", "running", "waiting"):
            return None
        return run.session_id

    async def start(self, session_id: str, text: str, *, title: str | None = None) -> Accepted:
        """Queue a run for the message (or steer with it, or refuse it: `busy`).

        `title` names an untitled session. Raises `RunActiveError` (reject mode) or
        `QueueFullError`.
        """
        active = await self.store.active_run(session_id)
        waiting = await self.store.queued_runs(session_id)
        busy = active is not None or bool(waiting)
        if busy and self.busy == "reject":
            raise RunActiveError(active.id if active else None)
        if busy and len(waiting) >= self.max_queued:
            raise QueueFullError(self.max_queued)
        after = self.hub.last_seq()
        if (
            self.busy == "steer"
            and active is not None
            and not waiting
            and self.executor is not None
            and self.executor.steer(active.id, text)
        ):
            return Accepted(active.id, after, "steered")
        if title:
            await self.store.rename_session(session_id, title)
        session = await self.store.get_session(session_id)
        agent = session.agent if session else None
        run = await self.store.enqueue_run(session_id, text, agent=agent)
        self._wake()
        if not busy:
            return Accepted(run.id, after, "running")
        position = len(waiting) + 1
        event = {"type": "run_queued", "ticket": run.id, "position": position, "text": text}
        self.hub.publish(session_id, run.id, event)
        return Accepted(run.id, after, "queued", run.id, position)

    async def cancel(self, session_id: str) -> tuple[bool, str | None, int]:
        """Stop the session's run and cancel its queued ones.

        Return ``(anything_stopped, run_id, dropped)``; the run ends "cancelled" at its
        next step boundary, or at once while it streams or runs a tool.
        """
        active, dropped = await self.store.request_cancel(session_id, DROPPED)
        for run_id in dropped:
            event = {"type": "run_finished", "status": "cancelled", "error": DROPPED, "text": ""}
            self.hub.publish(session_id, run_id, {**event, "usage": None, "ticket": run_id})
        if active is not None:
            local = self.executor is not None and self.executor.stop(active, "cancelled", CANCELLED)
            if not local and self._notify is not None:
                self._notify("cancel", {"run_id": active})
            logger.info("session %s: run %s cancelled", session_id, active)
        return active is not None or bool(dropped), active, len(dropped)

    def _wake(self) -> None:
        if self.executor is not None:
            self.executor.wake()
        if self._notify is not None:
            self._notify("wake", {})
