"""`RunBroker`: starting and awaiting runs on behalf of a tool (delegation between agents).

A sub-run is an ordinary queued run in a new session of the target agent, linked to its
parent by `parent_run_id` and made unique by the calling tool's idempotency key, so a
parent resumed after a crash finds the sub-run it had started. Waiting uses the local
executor's "run finished" signal and, for runs executed by other processes, polls the
store.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from staffer.store import RunRecord, Store

_ACTIVE = ("queued", "running", "waiting")


class RunBroker:
    """Implements `staffer.tools.delegate.RunBroker` on a store and an executor."""

    def __init__(self, store: Store, *, poll_every: float = 0.5) -> None:
        self.store = store
        self.poll_every = poll_every
        self.wake: Callable[[], None] = lambda: None  # set to the executor's wake
        self._finished: dict[str, asyncio.Event] = {}

    def finished(self, run_id: str) -> None:
        """Called by the executor when a run ends here."""
        event = self._finished.get(run_id)
        if event is not None:
            event.set()

    async def submit(
        self, *, agent: str, text: str, title: str, parent_run_id: str | None, key: str
    ) -> RunRecord:
        existing = await self.store.find_run(key)
        if existing is not None:
            return existing
        session = await self.store.create_session(title=title, agent=agent)
        run = await self.store.enqueue_run(
            session.id, text, agent=agent, parent_run_id=parent_run_id, idempotency_key=key
        )
        self.wake()
        return run

    async def get(self, run_id: str) -> RunRecord | None:
        return await self.store.get_run(run_id)

    async def get_by_key(self, key: str) -> RunRecord | None:
        return await self.store.find_run(key)

    async def active_children(self, run_id: str) -> int:
        children = await self.store.list_child_runs(run_id)
        return sum(child.status in _ACTIVE for child in children)

    async def wait(self, run_id: str, seconds: float) -> RunRecord:
        deadline = time.monotonic() + seconds
        event = self._finished.setdefault(run_id, asyncio.Event())
        try:
            while True:
                run = await self.store.get_run(run_id)
                if run is None:
                    raise LookupError(f"run {run_id!r} does not exist")
                left = deadline - time.monotonic()
                if run.status not in _ACTIVE or left <= 0:
                    return run
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(left, self.poll_every))
        finally:
            self._finished.pop(run_id, None)

    async def answer(self, run: RunRecord) -> str:
        for record in reversed(await self.store.list_messages(run.session_id)):
            message = record.message
            if record.run_id == run.id and message.role == "assistant" and not message.tool_calls:
                return message.content
        return ""

    async def depth(self, run_id: str) -> int:
        """How many delegations deep the run is (0 for a run a person started)."""
        depth = 0
        run = await self.store.get_run(run_id)
        while run is not None and run.parent_run_id is not None and depth < 100:
            depth += 1
            run = await self.store.get_run(run.parent_run_id)
        return depth
