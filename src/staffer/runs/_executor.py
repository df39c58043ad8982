"""`Executor`: claims queued runs, executes them, keeps their leases, takes over the dead.

One per process. It claims runs whenever it is woken (a new message, a run ending) and
every `poll_every` seconds; heartbeats every `heartbeat_every` seconds, which extends
the leases of its runs and tells it of cancellations requested elsewhere; and puts back
in the queue the runs of executors that died: at once for a dead process on this host
(its pid is gone), after the lease ran out for any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from staffer.agent import Agent, RunControl
from staffer.errors import LeaseLostError, StafferError
from staffer.store import ExecutorRecord, RunRecord, RunStatus, Store

logger = logging.getLogger("staffer.runs")

#: Receives every event of a run: (session_id, run_id, event).
Publish = Callable[[str, str, dict[str, Any]], object]


@dataclass(slots=True)
class _Local:
    run: RunRecord
    control: RunControl
    task: asyncio.Task[None] | None = None
    last_event: float = field(default_factory=time.monotonic)


class Executor:
    """Executes the store's queued runs with `agents` (by the run's agent name)."""

    def __init__(
        self,
        store: Store,
        agents: Mapping[str, Agent],
        publish: Publish,
        *,
        kind: str = "gateway",
        lease_seconds: float = 15.0,
        heartbeat_every: float = 2.0,
        poll_every: float = 1.0,
        max_concurrent: int = 64,
        max_attempts: int = 5,
        stuck_after: float = 0.0,
        on_finished: Callable[[str], object] | None = None,
    ) -> None:
        if "main" not in agents and agents:
            raise ValueError("the agents must include one named 'main'")
        self.store = store
        self.agents = agents
        self.publish = publish
        self.kind = kind
        self.lease_seconds = lease_seconds
        self.heartbeat_every = heartbeat_every
        self.poll_every = poll_every
        self.max_concurrent = max_concurrent
        self.max_attempts = max_attempts
        self.stuck_after = stuck_after
        self.on_finished = on_finished
        self.host = socket.gethostname()
        self.id = f"{self.host}:{os.getpid()}:{secrets.token_hex(3)}"
        self._record = ExecutorRecord(self.id, kind, self.host, os.getpid(), time.time(), 0.0)
        self._local: dict[str, _Local] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False

    # --- what the gateway asks ----------------------------------------------

    def wake(self) -> None:
        """Look for queued runs now (a message arrived or a run ended)."""
        self._wake.set()

    def is_local(self, run_id: str) -> bool:
        return run_id in self._local

    def steer(self, run_id: str, text: str) -> bool:
        """Hand `text` to the run if it executes here and is not stopping."""
        local = self._local.get(run_id)
        if local is None or local.control.stopped is not None:
            return False
        local.control.inbox.put_nowait(text)
        return True

    def stop(
        self, run_id: str, status: RunStatus = "cancelled", reason: str = "cancelled by the user"
    ) -> bool:
        """Stop the run if it executes here (at once while it streams or runs a tool)."""
        local = self._local.get(run_id)
        if local is None:
            return False
        local.control.stop(status, reason)
        if local.task is not None:
            local.task.cancel()
        return True

    # --- life -------------------------------------------------------------------

    async def start(self) -> None:
        """Register, take over the runs of dead executors, and start claiming."""
        await self.store.heartbeat(self._record, lease_seconds=self.lease_seconds)
        await self._take_over()
        self._loops = [
            asyncio.create_task(self._claim_loop(), name=f"claim-{self.id}"),
            asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat-{self.id}"),
        ]
        logger.info("executor %s started", self.id)

    async def aclose(self) -> None:
        """Stop claiming; detach the runs in flight and put them back in the queue, so
        the next executor (or this one, restarted) resumes them from their journal."""
        self._closing = True
        for loop in self._loops:
            loop.cancel()
        for local in list(self._local.values()):
            local.control.detach()
            if local.task is not None:
                local.task.cancel()
        waiting = [*self._loops, *self._tasks]
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)
        with contextlib.suppress(StafferError):
            await self.store.requeue_runs(dead_owners=[self.id], max_attempts=self.max_attempts + 1)
        logger.info("executor %s stopped", self.id)

    # --- loops --------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_every)
            self._wake.clear()
            try:
                await self._claim()
            except StafferError as exc:
                logger.warning("executor %s: claiming runs failed: %s", self.id, exc)
            except Exception:
                logger.exception("executor %s: claiming runs failed", self.id)

    async def _claim(self) -> None:
        room = self.max_concurrent - len(self._local)
        if room <= 0:
            return
        runs = await self.store.claim_runs(self.id, limit=room, lease_seconds=self.lease_seconds)
        for run in runs:
            local = _Local(run, RunControl())
            self._local[run.id] = local
            local.task = self._spawn(self._execute(local), f"run-{run.id}")

    async def _heartbeat_loop(self) -> None:
        beats = 0
        while not self._closing:
            await asyncio.sleep(self.heartbeat_every)
            try:
                cancels = await self.store.heartbeat(self._record, lease_seconds=self.lease_seconds)
                for run_id in cancels:
                    self.stop(run_id)
                beats += 1
                if beats % 3 == 0:
                    await self._take_over()
            except StafferError as exc:
                logger.warning("executor %s: heartbeat failed: %s", self.id, exc)
            except Exception:
                logger.exception("executor %s: heartbeat failed", self.id)

    async def _take_over(self) -> None:
        """Requeue the runs of dead executors: on this host, those whose process is
        gone; anywhere, those whose lease ran out."""
        forgotten = time.time() - 4 * self.lease_seconds
        dead = [
            e.id
            for e in await self.store.list_executors()
            if e.id != self.id
            and (
                e.heartbeat_at < forgotten
                or (
                    e.host == self.host
                    and (e.pid == os.getpid() or not _alive(e.pid))  # pid reused by a restart
                )
            )
        ]
        changed = await self.store.requeue_runs(dead_owners=dead, max_attempts=self.max_attempts)
        for run in changed:
            if run.status == "queued":
                logger.warning("run %s of session %s will be resumed", run.id, run.session_id)
            else:
                logger.warning("run %s ended %s: %s", run.id, run.status, run.error)
                self._publish_end(run, run.status, run.error or "")
        if any(run.status == "queued" for run in changed):
            self.wake()

    # --- one run ------------------------------------------------------------------

    async def _execute(self, local: _Local) -> None:
        run = local.run
        finished = False
        watchdog = None
        if self.stuck_after > 0:
            watchdog = self._spawn(self._watch(local), f"watch-{run.id}")

        def emit(event: dict[str, Any]) -> None:
            nonlocal finished
            local.last_event = time.monotonic()
            finished = finished or event.get("type") == "run_finished"
            self.publish(run.session_id, run.id, event)

        agent = self.agents.get(run.agent or "main") or self.agents["main"]
        try:
            await agent.run_turn(run.session_id, run.id, emit, control=local.control, owner=self.id)
        except LeaseLostError as exc:
            logger.warning("run %s: %s", run.id, exc)
        except asyncio.CancelledError:
            if local.control.stopped is None or self._closing:
                raise  # shutdown: the run stays in the store, to be resumed
        except Exception as exc:
            # Ending the run failed (the store, most likely): listeners must still hear
            # that it is over, or they would wait forever.
            logger.exception("run %s could not be finished", run.id)
            if not finished:
                self._publish_end(run, "failed", f"internal error: {exc}")
        finally:
            if watchdog is not None:
                watchdog.cancel()
            self._local.pop(run.id, None)
            if self.on_finished is not None:
                self.on_finished(run.id)
            if not self._closing:
                self._hand_over_steering(local)
                self.wake()  # the session's next queued run may start

    def _hand_over_steering(self, local: _Local) -> None:
        """Steering that arrived after the run's last step becomes a queued run."""
        texts: list[str] = []
        while not local.control.inbox.empty():
            texts.append(local.control.inbox.get_nowait())
        if texts:
            self._spawn(self._enqueue(local.run, texts), f"steer-{local.run.id}")

    async def _enqueue(self, run: RunRecord, texts: list[str]) -> None:
        for text in texts:
            queued = await self.store.enqueue_run(run.session_id, text, agent=run.agent)
            event = {"type": "run_queued", "ticket": queued.id, "position": 1, "text": text}
            self.publish(run.session_id, queued.id, event)
        self.wake()

    async def _watch(self, local: _Local) -> None:
        """Fail the run once it has gone `stuck_after` seconds without an event."""
        while True:
            idle = time.monotonic() - local.last_event
            if idle >= self.stuck_after:
                break
            await asyncio.sleep(self.stuck_after - idle)
        reason = f"stopped: no progress for {self.stuck_after:g} s"
        run = local.run
        logger.warning("session %s: run %s %s", run.session_id, run.id, reason)
        self.publish(
            run.session_id,
            run.id,
            {
                "type": "notice",
                "text": f"{reason} (the model or a tool hung); send the message again, "
                "or raise agent.stuck_after",
            },
        )
        self.stop(run.id, "failed", reason)

    # --- helpers -------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _publish_end(self, run: RunRecord, status: RunStatus, error: str) -> None:
        event = {"type": "run_finished", "status": status, "error": error, "text": ""}
        self.publish(run.session_id, run.id, {**event, "usage": None})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
