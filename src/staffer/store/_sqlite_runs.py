"""Durable runs for `SQLiteStore`: the run queue, leases and the step journal.

A mixin like ``_sqlite_apikeys.py``; it relies on the store's `_call` (the worker
thread) and `_now`. See docs/design/durable-runs.md for the design.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from staffer.errors import LeaseLostError, StoreError
from staffer.models import Message, Usage
from staffer.store import _codec as codec
from staffer.store._base import (
    ExecutorRecord,
    MessageRecord,
    RunRecord,
    StepRecord,
    ToolCallRecord,
)
from staffer.store._sqlite_tx import (
    INSERT_RUN,
    INSERT_TOOL_CALL,
    append,
    insert_messages,
    lane,
    missing,
    write,
)

T = TypeVar("T")

_RUN_BY_KEY = f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE idempotency_key = ?"
_CHILDREN = (
    f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE parent_run_id = ? ORDER BY created_at, rowid"
)
_GET_RUN = f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE id = ?"
# The oldest queued run of each session that has no active run.
_CLAIMABLE = f"""
    SELECT {codec.RUN_COLUMNS} FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY created_at, rowid) AS rn,
               rowid AS rid
        FROM runs WHERE status = 'queued'
    ) AS q
    WHERE rn = 1 AND NOT EXISTS (
        SELECT 1 FROM runs AS a WHERE a.session_id = q.session_id
        AND a.status IN ('running', 'waiting'))
    ORDER BY created_at, rid LIMIT ?"""
_CLAIM = (
    "UPDATE runs SET status = 'running', owner = ?, lease_until = ?, attempt = attempt + 1 "
    "WHERE id = ? AND status = 'queued'"
)
_UPSERT_EXECUTOR = (
    f"INSERT INTO executors ({codec.EXECUTOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
)
_RENEW = "UPDATE runs SET lease_until = ? WHERE owner = ? AND status IN ('running', 'waiting')"
_CANCEL_WANTED = (
    "SELECT id FROM runs WHERE owner = ? AND status IN ('running', 'waiting') "
    "AND cancel_requested = 1"
)
_LIST_EXECUTORS = f"SELECT {codec.EXECUTOR_COLUMNS} FROM executors ORDER BY started_at"
_DELETE_EXECUTOR = "DELETE FROM executors WHERE id = ?"
_STALE = (
    f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE status = 'running' "
    "AND (lease_until IS NULL OR lease_until < ? OR owner IN (SELECT value FROM json_each(?)))"
)
_REQUEUE = "UPDATE runs SET status = 'queued', owner = NULL, lease_until = NULL WHERE id = ?"
_GIVE_UP = (
    "UPDATE runs SET status = ?, finished_at = ?, error = ?, owner = NULL, lease_until = NULL "
    "WHERE id = ?"
)
_OWNER = "SELECT owner, status FROM runs WHERE id = ?"
_LOAD_STEPS = f"SELECT {codec.STEP_COLUMNS} FROM run_steps WHERE run_id = ? ORDER BY step_no"
_PUT_STEP = (
    f"INSERT OR REPLACE INTO run_steps ({codec.STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The journal row, written only while `owner` (unless NULL) still holds the run.
_PUT_STEP_FENCED = (
    f"INSERT OR REPLACE INTO run_steps ({codec.STEP_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM runs WHERE id = ? "
    "AND (? IS NULL OR (owner = ? AND status IN ('running', 'waiting')))"
)
_SET_USAGE = (
    "UPDATE runs SET input_tokens = ?, output_tokens = ?, cached_input_tokens = ? WHERE id = ?"
)
_FLAG_CANCEL = (
    "UPDATE runs SET cancel_requested = 1 "
    "WHERE session_id = ? AND status IN ('running', 'waiting') RETURNING id"
)
_DROP_QUEUED = (
    "UPDATE runs SET status = 'cancelled', finished_at = ?, error = ? "
    "WHERE session_id = ? AND status = 'queued' RETURNING id"
)
_ACTIVE = (
    f"SELECT {codec.RUN_COLUMNS} FROM runs "
    "WHERE session_id = ? AND status IN ('running', 'waiting')"
)
_QUEUED = (
    f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE session_id = ? AND status = 'queued' "
    "ORDER BY created_at, rowid"
)


def fence(conn: sqlite3.Connection, run_id: str, owner: str) -> None:
    """Raise `LeaseLostError` unless `owner` still holds the run (inside a transaction)."""
    row = conn.execute(_OWNER, (run_id,)).fetchone()
    if row is None or row[0] != owner or row[1] not in ("running", "waiting"):
        raise LeaseLostError(
            f"run {run_id!r} is no longer held by {owner!r} (now {row and row[0]!r}, "
            f"{row and row[1]}); another process took it over"
        )


class SQLiteRuns:
    """The `Store` queue, lease and journal methods, for `SQLiteStore` to inherit."""

    if TYPE_CHECKING:

        async def _call(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        def _now(self) -> float: ...

    async def enqueue_run(
        self,
        session_id: str,
        text: str,
        *,
        agent: str | None = None,
        model: str | None = None,
        parent_run_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        def work(conn: sqlite3.Connection) -> RunRecord:
            if idempotency_key is not None:
                row = conn.execute(_RUN_BY_KEY, (idempotency_key,)).fetchone()
                if row is not None:
                    return codec.run_from_row(row)
            run = codec.queued_run(
                session_id,
                text,
                self._now(),
                agent=agent,
                model=model,
                parent_run_id=parent_run_id,
                idempotency_key=idempotency_key,
            )
            with write(conn), missing(f"session {session_id!r}"):
                conn.execute(INSERT_RUN, codec.run_params(run))
            return run

        return await self._call("queueing a run", work)

    async def list_child_runs(self, parent_run_id: str) -> list[RunRecord]:
        def work(conn: sqlite3.Connection) -> list[RunRecord]:
            return [codec.run_from_row(r) for r in conn.execute(_CHILDREN, (parent_run_id,))]

        return await self._call("listing sub-runs", work)

    async def find_run(self, idempotency_key: str) -> RunRecord | None:
        def work(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(_RUN_BY_KEY, (idempotency_key,)).fetchone()
            return None if row is None else codec.run_from_row(row)

        return await self._call("finding a run", work)

    async def claim_runs(self, owner: str, *, limit: int, lease_seconds: float) -> list[RunRecord]:
        def work(conn: sqlite3.Connection) -> list[RunRecord]:
            claimed: list[RunRecord] = []
            with write(conn):
                now = self._now()
                for row in conn.execute(_CLAIMABLE, (limit,)).fetchall():
                    run = codec.run_from_row(row)
                    with lane(run.session_id):
                        conn.execute(_CLAIM, (owner, now + lease_seconds, run.id))
                    if run.attempt == 0 and run.input is not None:
                        user = Message(role="user", content=run.input)
                        append(conn, run.session_id, run.id, [user], now)
                    claimed.append(codec.run_from_row(conn.execute(_GET_RUN, (run.id,)).fetchone()))
            return claimed

        return await self._call("claiming queued runs", work)

    async def heartbeat(self, executor: ExecutorRecord, *, lease_seconds: float) -> list[str]:
        def work(conn: sqlite3.Connection) -> list[str]:
            now = time.time()
            e = executor
            with write(conn):
                conn.execute(_UPSERT_EXECUTOR, (e.id, e.kind, e.host, e.pid, e.started_at, now))
                conn.execute(_RENEW, (now + lease_seconds, e.id))
                return [r[0] for r in conn.execute(_CANCEL_WANTED, (e.id,))]

        return await self._call("renewing leases", work)

    async def list_executors(self) -> list[ExecutorRecord]:
        def work(conn: sqlite3.Connection) -> list[ExecutorRecord]:
            return [ExecutorRecord(*row) for row in conn.execute(_LIST_EXECUTORS)]

        return await self._call("listing executors", work)

    async def remove_executor(self, executor_id: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with write(conn):
                conn.execute(_DELETE_EXECUTOR, (executor_id,))

        await self._call("removing an executor", work)

    async def requeue_runs(self, *, dead_owners: list[str], max_attempts: int) -> list[RunRecord]:
        import json

        def work(conn: sqlite3.Connection) -> list[RunRecord]:
            changed: list[RunRecord] = []
            with write(conn):
                now = self._now()
                stale = conn.execute(_STALE, (time.time(), json.dumps(dead_owners))).fetchall()
                for row in stale:
                    run = codec.run_from_row(row)
                    if run.cancel_requested:
                        conn.execute(_GIVE_UP, ("cancelled", now, "cancelled by the user", run.id))
                    elif run.attempt >= max_attempts:
                        error = give_up_message(run.attempt)
                        conn.execute(_GIVE_UP, ("failed", now, error, run.id))
                    else:
                        conn.execute(_REQUEUE, (run.id,))
                    changed.append(codec.run_from_row(conn.execute(_GET_RUN, (run.id,)).fetchone()))
                for dead in dead_owners:
                    conn.execute(_DELETE_EXECUTOR, (dead,))
            return changed

        return await self._call("requeueing runs", work)

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        def work(conn: sqlite3.Connection) -> list[StepRecord]:
            return [codec.step_from_row(r) for r in conn.execute(_LOAD_STEPS, (run_id,))]

        return await self._call("reading a run's journal", work)

    async def start_step(self, step: StepRecord, *, owner: str | None) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with write(conn), missing(f"run {step.run_id!r}"):
                if owner is not None:
                    fence(conn, step.run_id, owner)
                conn.execute(_PUT_STEP, codec.step_params(step))

        await self._call("journaling a step", work)

    async def commit_step(
        self,
        step: StepRecord,
        *,
        session_id: str,
        messages: list[Message],
        usage: Usage,
        owner: str | None,
        tool_call: ToolCallRecord | None = None,
    ) -> list[MessageRecord]:
        def work(conn: sqlite3.Connection) -> list[MessageRecord]:
            # As few statements and pages as the journal allows (bench.runs): no session
            # touch, and the fence rides on the journal row's insert.
            with write(conn):
                now = self._now()
                records = insert_messages(conn, session_id, step.run_id, messages, now)
                if tool_call is not None:
                    conn.execute(INSERT_TOOL_CALL, codec.tool_call_params(tool_call))
                fenced = (*codec.step_params(step), step.run_id, owner, owner)
                if conn.execute(_PUT_STEP_FENCED, fenced).rowcount == 0:
                    if owner is not None:
                        fence(conn, step.run_id, owner)  # raises, naming the holder
                    raise StoreError(
                        f"cannot journal a step of run {step.run_id!r}: it does not exist."
                    )
                if step.kind == "model":  # only model calls change the usage
                    u = usage
                    conn.execute(
                        _SET_USAGE,
                        (u.input_tokens, u.output_tokens, u.cached_input_tokens, step.run_id),
                    )
            return records

        return await self._call("journaling a step", work)

    async def request_cancel(self, session_id: str, reason: str) -> tuple[str | None, list[str]]:
        def work(conn: sqlite3.Connection) -> tuple[str | None, list[str]]:
            with write(conn):
                active = [r[0] for r in conn.execute(_FLAG_CANCEL, (session_id,)).fetchall()]
                dropped = conn.execute(_DROP_QUEUED, (self._now(), reason, session_id))
                return (active[0] if active else None), [r[0] for r in dropped.fetchall()]

        return await self._call("cancelling runs", work)

    async def active_run(self, session_id: str) -> RunRecord | None:
        def work(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(_ACTIVE, (session_id,)).fetchone()
            return None if row is None else codec.run_from_row(row)

        return await self._call("reading the active run", work)

    async def queued_runs(self, session_id: str) -> list[RunRecord]:
        def work(conn: sqlite3.Connection) -> list[RunRecord]:
            return [codec.run_from_row(r) for r in conn.execute(_QUEUED, (session_id,))]

        return await self._call("listing queued runs", work)


def give_up_message(attempts: int) -> str:
    return (
        f"gave up after {attempts} attempts: the process running it stopped each time "
        "(see the logs for a crash)"
    )
