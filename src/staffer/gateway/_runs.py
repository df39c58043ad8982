"""Starts turns as background tasks, one at a time per session, and publishes their events."""

from __future__ import annotations

import asyncio
import logging

from staffer.agent import Agent
from staffer.gateway._hub import EventHub

logger = logging.getLogger("staffer.gateway")
_STARTING = "…starting"


class RunActiveError(Exception):
    """A session already has a run in progress (`run_id` is None while it is starting)."""

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        super().__init__("a run is still active in this session")


class RunManager:
    """Owns the tasks that execute runs; the app's lifespan cancels them on shutdown."""

    def __init__(self, agent: Agent, hub: EventHub) -> None:
        self.agent = agent
        self.hub = hub
        self._active: dict[str, str] = {}  # session id → run id
        self._tasks: set[asyncio.Task[None]] = set()

    def active_run(self, session_id: str) -> str | None:
        run_id = self._active.get(session_id)
        return None if run_id is _STARTING else run_id

    async def start(
        self, session_id: str, text: str, *, title: str | None = None
    ) -> tuple[str, int]:
        """Record the message, start the run and return ``(run_id, after)``.

        Events of the new run all have seq > `after`. `title` names an untitled session.
        """
        if session_id in self._active:
            raise RunActiveError(self.active_run(session_id))
        self._active[session_id] = _STARTING
        try:
            if title:
                await self.agent.store.rename_session(session_id, title)
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
        finished = False

        def emit(event: dict[str, object]) -> None:
            nonlocal finished
            finished = finished or event.get("type") == "run_finished"
            self.hub.publish(session_id, run_id, event)

        try:
            await self.agent.run_turn(session_id, run_id, emit)
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
            self._active.pop(session_id, None)
            self.hub.release(session_id)

    async def aclose(self) -> None:
        """Cancel runs still in flight and wait for them to record their end."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
