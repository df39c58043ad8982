"""Starts turns as background tasks, one at a time per session, and publishes their events."""

from __future__ import annotations

import asyncio
import logging

from staffer.agent import Agent
from staffer.gateway._hub import EventHub

logger = logging.getLogger("staffer.gateway")


class RunActiveError(Exception):
    """A session already has a run in progress."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} is still active in this session")


class RunManager:
    """Owns the tasks that execute runs; the app's lifespan cancels them on shutdown."""

    def __init__(self, agent: Agent, hub: EventHub) -> None:
        self.agent = agent
        self.hub = hub
        self._active: dict[str, str] = {}  # session id → run id
        self._tasks: set[asyncio.Task[None]] = set()

    def active_run(self, session_id: str) -> str | None:
        return self._active.get(session_id)

    async def start(self, session_id: str, text: str) -> tuple[str, int]:
        """Record the message, start the run and return ``(run_id, after)``.

        Events of the new run all have seq > `after`.
        """
        if (run_id := self._active.get(session_id)) is not None:
            raise RunActiveError(run_id)
        self._active[session_id] = "starting"
        try:
            run_id = await self.agent.start_run(session_id, text)
        except BaseException:
            del self._active[session_id]
            raise
        self._active[session_id] = run_id
        after = self.hub.last_seq()
        task = asyncio.create_task(self._execute(session_id, run_id), name=f"run-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run_id, after

    async def _execute(self, session_id: str, run_id: str) -> None:
        def emit(event: dict[str, object]) -> None:
            self.hub.publish(session_id, run_id, event)

        try:
            await self.agent.run_turn(session_id, run_id, emit)
        finally:
            self._active.pop(session_id, None)

    async def aclose(self) -> None:
        """Cancel runs still in flight and wait for them to record their end."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
