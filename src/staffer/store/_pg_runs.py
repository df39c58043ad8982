"""Durable runs for `PostgresStore`: the run queue, leases and the step journal.

The PostgreSQL twin of ``_sqlite_runs.py``. Claims from several worker processes are
serialized by a transaction-scoped advisory lock (a claim takes a few milliseconds),
so two workers never start two runs of one session; the partial unique index on
active runs stays the last guard.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from staffer.errors import LeaseLostError, StoreError
from staffer.models import Message, Usage
from staffer.store import _codec as codec
from staffer.store import _pg_codec as pgc
from staffer.store._base import (
    ExecutorRecord,
    MessageRecord,
    RunRecord,
    StepRecord,
    ToolCallRecord,
)
from staffer.store._pg_errors import lane, missing

T = TypeVar("T")

_CLAIM_LOCK = 0x57AFFE3  # pg_advisory_xact_lock key serializing claims
_COLS = codec.RUN_COLUMNS
_CHILDREN = f"SELECT {_COLS} FROM runs WHERE parent_run_id = $1 ORDER BY created_at, n"
_RUN_BY_KEY = f"SELECT {_COLS} FROM runs WHERE idempotency_key = $1"
# One statement claims the whole batch: the oldest queued run of each session without an
# active run, however many there are (a claim holds the advisory lock for milliseconds).
_CLAIM = f"""
    WITH pick AS (
        SELECT q.id FROM (
            SELECT DISTINCT ON (session_id) id, session_id, created_at, n FROM runs
            WHERE status = 'queued' ORDER BY session_id, created_at, n
        ) AS q
        WHERE NOT EXISTS (
            SELECT 1 FROM runs AS a WHERE a.session_id = q.session_id
            AND a.status IN ('running', 'waiting'))
        ORDER BY q.created_at, q.n LIMIT $1
    )
    UPDATE runs AS r SET status = 'running', owner = $2, lease_until = $3, attempt = r.attempt + 1
    FROM pick WHERE r.id = pick.id AND r.status = 'queued'
    RETURNING {", ".join("r." + c.strip() for c in _COLS.split(","))}"""
# The first claim of a run stores its user message: one session row lock, then one INSERT.
_TOUCH_SESSIONS = (
    "UPDATE sessions SET updated_at = GREATEST(updated_at, $2) WHERE id = ANY($1::text[])"
)
_FIRST_MESSAGES = f"""
    INSERT INTO messages ({codec.MESSAGE_COLUMNS})
    SELECT u.session_id, (SELECT COALESCE(MAX(seq), 0) FROM messages AS m
                          WHERE m.session_id = u.session_id) + 1,
           u.run_id, 'user', u.content, NULL, NULL, NULL, 0, $4
    FROM unnest($1::text[], $2::text[], $3::text[]) AS u(session_id, run_id, content)"""
_UPSERT_EXECUTOR = (
    f"INSERT INTO executors ({codec.EXECUTOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) "
    "ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
)
_RENEW = "UPDATE runs SET lease_until = $1 WHERE owner = $2 AND status IN ('running', 'waiting')"
_CANCEL_WANTED = (
    "SELECT id FROM runs WHERE owner = $1 AND status IN ('running', 'waiting') "
    "AND cancel_requested = 1"
)
_LIST_EXECUTORS = f"SELECT {codec.EXECUTOR_COLUMNS} FROM executors ORDER BY started_at"
_DELETE_EXECUTOR = "DELETE FROM executors WHERE id = ANY($1::text[])"
_STALE = (
    f"SELECT {_COLS} FROM runs WHERE status = 'running' "
    "AND (lease_until IS NULL OR lease_until < $1 OR owner = ANY($2::text[])) FOR UPDATE"
)
_REQUEUE = (
    "UPDATE runs SET status = 'queued', owner = NULL, lease_until = NULL "
    f"WHERE id = $1 RETURNING {_COLS}"
)
_GIVE_UP = (
    "UPDATE runs SET status = $1, finished_at = $2, error = $3, owner = NULL, "
    f"lease_until = NULL WHERE id = $4 RETURNING {_COLS}"
)
_OWNER = "SELECT owner, status FROM runs WHERE id = $1 FOR UPDATE"
_LOAD_STEPS = f"SELECT {codec.STEP_COLUMNS} FROM run_steps WHERE run_id = $1 ORDER BY step_no"
_PUT_STEP = (
    f"INSERT INTO run_steps ({codec.STEP_COLUMNS}) VALUES ({pgc.numbered(codec.STEP_COLUMNS)}) "
    "ON CONFLICT (run_id, step_no) DO UPDATE SET kind = excluded.kind, "
    "status = excluded.status, call_id = excluded.call_id, "
    "idempotency_key = excluded.idempotency_key, attempt = excluded.attempt, "
    "created_at = excluded.created_at, finished_at = excluded.finished_at"
)
# A journaled step in one statement (one round trip, one commit). The UPDATE of the run is
# the fence: it locks the row and matches only while `owner` still holds the run; the
# other parts hang off its result, so a fenced-out step writes nothing.
_COMMIT_STEP = f"""
    WITH fence AS (
        UPDATE runs SET input_tokens = $26, output_tokens = $27, cached_input_tokens = $28
        WHERE id = $1 AND ($2::text IS NULL OR (owner = $2 AND status IN ('running', 'waiting')))
        RETURNING id
    ), touched AS (
        UPDATE sessions SET updated_at = GREATEST(updated_at, $4)
        WHERE id = $3 AND EXISTS (SELECT 1 FROM fence) RETURNING id
    ), msg AS (
        INSERT INTO messages ({codec.MESSAGE_COLUMNS})
        SELECT $3, (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = $3) + 1,
               $1, $5, $6, $7::json, $8, $9, $10, $4
        FROM touched RETURNING seq
    ), call AS (
        INSERT INTO tool_calls ({codec.TOOL_CALL_COLUMNS})
        SELECT $1, $3, $11, $12, $13, $14, $15, $16, $17 FROM touched WHERE $11::text IS NOT NULL
    ), step AS (
        INSERT INTO run_steps ({codec.STEP_COLUMNS})
        SELECT $1, $18, $19, $20, $21, $22, $23, $24, $25 FROM touched
        ON CONFLICT (run_id, step_no) DO UPDATE SET kind = excluded.kind,
            status = excluded.status, call_id = excluded.call_id,
            idempotency_key = excluded.idempotency_key, attempt = excluded.attempt,
            created_at = excluded.created_at, finished_at = excluded.finished_at
    )
    SELECT (SELECT count(*) FROM fence), (SELECT count(*) FROM touched), (SELECT seq FROM msg)"""
_SET_USAGE = (
    "UPDATE runs SET input_tokens = $1, output_tokens = $2, cached_input_tokens = $3 WHERE id = $4"
)
_FLAG_CANCEL = (
    "UPDATE runs SET cancel_requested = 1 "
    "WHERE session_id = $1 AND status IN ('running', 'waiting') RETURNING id"
)
_DROP_QUEUED = (
    "UPDATE runs SET status = 'cancelled', finished_at = $1, error = $2 "
    "WHERE session_id = $3 AND status = 'queued' RETURNING id"
)
_ACTIVE = f"SELECT {_COLS} FROM runs WHERE session_id = $1 AND status IN ('running', 'waiting')"
_QUEUED = (
    f"SELECT {_COLS} FROM runs WHERE session_id = $1 AND status = 'queued' ORDER BY created_at, n"
)


async def fence(conn: Any, run_id: str, owner: str) -> None:
    """Raise `LeaseLostError` unless `owner` still holds the run (locks the run's row)."""
    row = await conn.fetchrow(_OWNER, run_id)
    if row is None or row[0] != owner or row[1] not in ("running", "waiting"):
        raise LeaseLostError(
            f"run {run_id!r} is no longer held by {owner!r} (now {row and row[0]!r}, "
            f"{row and row[1]}); another process took it over"
        )


async def append(
    conn: Any, session_id: str, run_id: str | None, messages: list[Message], now: float
) -> list[MessageRecord]:
    """Append `messages` to the session inside the caller's transaction."""
    if await conn.fetchrow(pgc.TOUCH_SESSION, now, session_id) is None:
        raise StoreError(
            f"cannot append messages to session {session_id!r}: it does not exist. "
            "Create the session first."
        )
    last = await conn.fetchval(pgc.LAST_SEQ, session_id)
    records = [
        MessageRecord(session_id, last + i, run_id, m, now) for i, m in enumerate(messages, start=1)
    ]
    if records:
        with missing(f"run {run_id!r}"):
            await conn.executemany(pgc.INSERT_MESSAGE, [pgc.message_params(r) for r in records])
    return records


class PostgresRuns:
    """The `Store` queue, lease and journal methods, for `PostgresStore` to inherit."""

    if TYPE_CHECKING:

        async def _call(
            self, doing: str, fn: Callable[[Any], Awaitable[T]], *, session: str | None = None
        ) -> T: ...

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
        run = codec.queued_run(
            session_id,
            text,
            self._now(),
            agent=agent,
            model=model,
            parent_run_id=parent_run_id,
            idempotency_key=idempotency_key,
        )

        async def work(conn: Any) -> RunRecord:
            async with conn.transaction():
                if idempotency_key is not None:
                    row = await conn.fetchrow(_RUN_BY_KEY, idempotency_key)
                    if row is not None:
                        return pgc.run_from_row(row)
                with missing(f"session {session_id!r}"):
                    await conn.execute(pgc.INSERT_RUN, *pgc.run_params(run))
            return run

        return await self._call("queueing a run", work)

    async def list_child_runs(self, parent_run_id: str) -> list[RunRecord]:
        async def work(conn: Any) -> list[RunRecord]:
            return [pgc.run_from_row(r) for r in await conn.fetch(_CHILDREN, parent_run_id)]

        return await self._call("listing sub-runs", work)

    async def find_run(self, idempotency_key: str) -> RunRecord | None:
        async def work(conn: Any) -> RunRecord | None:
            row = await conn.fetchrow(_RUN_BY_KEY, idempotency_key)
            return None if row is None else pgc.run_from_row(row)

        return await self._call("finding a run", work)

    async def claim_runs(self, owner: str, *, limit: int, lease_seconds: float) -> list[RunRecord]:
        async def work(conn: Any) -> list[RunRecord]:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _CLAIM_LOCK)
                now = self._now()
                with lane("(claimed)"):
                    rows = await conn.fetch(_CLAIM, limit, owner, now + lease_seconds)
                claimed = [pgc.run_from_row(row) for row in rows]
                first = [r for r in claimed if r.attempt == 1 and r.input is not None]
                if first:
                    sessions = [r.session_id for r in first]
                    await conn.execute(_TOUCH_SESSIONS, sessions, now)
                    texts = [pgc.put_text(r.input) for r in first]
                    await conn.execute(_FIRST_MESSAGES, sessions, [r.id for r in first], texts, now)
            return claimed

        return await self._call("claiming queued runs", work)

    async def heartbeat(self, executor: ExecutorRecord, *, lease_seconds: float) -> list[str]:
        e = executor

        async def work(conn: Any) -> list[str]:
            now = time.time()
            async with conn.transaction():
                await conn.execute(_UPSERT_EXECUTOR, e.id, e.kind, e.host, e.pid, e.started_at, now)
                await conn.execute(_RENEW, now + lease_seconds, e.id)
                return [r[0] for r in await conn.fetch(_CANCEL_WANTED, e.id)]

        return await self._call("renewing leases", work)

    async def list_executors(self) -> list[ExecutorRecord]:
        async def work(conn: Any) -> list[ExecutorRecord]:
            return [ExecutorRecord(*row) for row in await conn.fetch(_LIST_EXECUTORS)]

        return await self._call("listing executors", work)

    async def remove_executor(self, executor_id: str) -> None:
        async def work(conn: Any) -> None:
            await conn.execute(_DELETE_EXECUTOR, [executor_id])

        await self._call("removing an executor", work)

    async def requeue_runs(self, *, dead_owners: list[str], max_attempts: int) -> list[RunRecord]:
        from staffer.store._sqlite_runs import give_up_message

        async def work(conn: Any) -> list[RunRecord]:
            changed: list[RunRecord] = []
            async with conn.transaction():
                now = self._now()
                for row in await conn.fetch(_STALE, time.time(), dead_owners):
                    run = pgc.run_from_row(row)
                    if run.cancel_requested:
                        args: tuple[Any, ...] = ("cancelled", now, "cancelled by the user")
                        row = await conn.fetchrow(_GIVE_UP, *args, run.id)
                    elif run.attempt >= max_attempts:
                        args = ("failed", now, give_up_message(run.attempt))
                        row = await conn.fetchrow(_GIVE_UP, *args, run.id)
                    else:
                        row = await conn.fetchrow(_REQUEUE, run.id)
                    changed.append(pgc.run_from_row(row))
                if dead_owners:
                    await conn.execute(_DELETE_EXECUTOR, dead_owners)
            return changed

        return await self._call("requeueing runs", work)

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        async def work(conn: Any) -> list[StepRecord]:
            rows = await conn.fetch(_LOAD_STEPS, run_id)
            return [codec.step_from_row(tuple(r)) for r in rows]

        return await self._call("reading a run's journal", work)

    async def start_step(self, step: StepRecord, *, owner: str | None) -> None:
        async def work(conn: Any) -> None:
            async with conn.transaction():
                if owner is not None:
                    await fence(conn, step.run_id, owner)
                with missing(f"run {step.run_id!r}"):
                    await conn.execute(_PUT_STEP, *codec.step_params(step))

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
        u = usage
        if len(messages) != 1:
            return await self._commit_step_in_parts(
                step,
                session_id=session_id,
                messages=messages,
                usage=usage,
                owner=owner,
                tool_call=tool_call,
            )
        now = self._now()
        message = pgc.message_params(MessageRecord(session_id, 0, step.run_id, messages[0], now))
        call = pgc.tool_call_params(tool_call)[2:] if tool_call is not None else (None,) * 7
        params = (
            *(step.run_id, owner, session_id, now),
            *message[3:9],
            *call,
            *codec.step_params(step)[1:],
            *(u.input_tokens, u.output_tokens, u.cached_input_tokens),
        )

        async def work(conn: Any) -> list[MessageRecord]:
            with missing(f"run {step.run_id!r}"):
                fenced, touched, seq = await conn.fetchrow(_COMMIT_STEP, *params)
            if not fenced:
                if owner is not None:
                    raise LeaseLostError(
                        f"run {step.run_id!r} is no longer held by {owner!r}; "
                        "another process took it over"
                    )
                raise StoreError(
                    f"cannot journal a step of run {step.run_id!r}: it does not exist."
                )
            if not touched:
                raise StoreError(
                    f"cannot append messages to session {session_id!r}: it does not exist. "
                    "Create the session first."
                )
            return [MessageRecord(session_id, seq, step.run_id, messages[0], now)]

        return await self._call("journaling a step", work, session=session_id)

    async def _commit_step_in_parts(
        self,
        step: StepRecord,
        *,
        session_id: str,
        messages: list[Message],
        usage: Usage,
        owner: str | None,
        tool_call: ToolCallRecord | None,
    ) -> list[MessageRecord]:
        u = usage

        async def work(conn: Any) -> list[MessageRecord]:
            async with conn.transaction():
                if owner is not None:
                    await fence(conn, step.run_id, owner)
                records = await append(conn, session_id, step.run_id, messages, self._now())
                if tool_call is not None:
                    await conn.execute(pgc.INSERT_TOOL_CALL, *pgc.tool_call_params(tool_call))
                await conn.execute(_PUT_STEP, *codec.step_params(step))
                await conn.execute(
                    _SET_USAGE, u.input_tokens, u.output_tokens, u.cached_input_tokens, step.run_id
                )
            return records

        return await self._call("journaling a step", work, session=session_id)

    async def request_cancel(self, session_id: str, reason: str) -> tuple[str | None, list[str]]:
        async def work(conn: Any) -> tuple[str | None, list[str]]:
            async with conn.transaction():
                active = [r[0] for r in await conn.fetch(_FLAG_CANCEL, session_id)]
                dropped = await conn.fetch(_DROP_QUEUED, self._now(), reason, session_id)
            return (active[0] if active else None), [r[0] for r in dropped]

        return await self._call("cancelling runs", work)

    async def active_run(self, session_id: str) -> RunRecord | None:
        async def work(conn: Any) -> RunRecord | None:
            row = await conn.fetchrow(_ACTIVE, session_id)
            return None if row is None else pgc.run_from_row(row)

        return await self._call("reading the active run", work)

    async def queued_runs(self, session_id: str) -> list[RunRecord]:
        async def work(conn: Any) -> list[RunRecord]:
            return [pgc.run_from_row(r) for r in await conn.fetch(_QUEUED, session_id)]

        return await self._call("listing queued runs", work)
