"""`PostgresStore`: the same `Store` on PostgreSQL, for several Staffer processes at once.

Built on asyncpg (an optional extra, ``pip install 'staffer[postgres]'``) with its
connection pool: each public method borrows one connection for one statement or
one transaction, so the event loop never blocks and many calls run in parallel.
Where SQLite relies on its single writer, this store relies on row locks: appending
messages first updates the session row, which serializes appends to one session
(across processes too) while other sessions proceed; within a process they also
keep call order (see `_call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from staffer.errors import ConfigError, StoreError
from staffer.models import Message, Usage
from staffer.store import _codec as codec
from staffer.store import _pg_codec as pgc
from staffer.store._base import (
    MessageRecord,
    ModelCallRecord,
    RunRecord,
    RunStatus,
    SessionRecord,
    Store,
    ToolCallRecord,
    UsageDimension,
    UsageSummary,
)
from staffer.store._codec import new_id
from staffer.store._pg_apikeys import PostgresApiKeys
from staffer.store._pg_blackboard import PostgresBlackboard
from staffer.store._pg_compactions import PostgresCompactions
from staffer.store._pg_errors import (
    connect_error,
    describe_url,
    import_driver,
    lane,
    missing,
    translate,
)
from staffer.store._pg_runs import PostgresRuns, append, fence
from staffer.store._pg_schema import migrate

logger = logging.getLogger("staffer.store")

T = TypeVar("T")

CONNECT_TIMEOUT = 10.0  # seconds to wait for the server when opening a connection
# Every statement of the store is a short OLTP one on keys, prepared once per connection;
# re-planning it on each execution (PostgreSQL's choice for a prepared statement's first
# runs, and whenever a custom plan looks cheaper) cost ~0.3 ms of a journaled step's
# ~1.4 ms (bench.runs). A `plan_cache_mode` in the URL's query wins over this.
SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan"}


def _server_settings(dsn: str) -> dict[str, str]:
    """`SERVER_SETTINGS` less what the URL's query sets (asyncpg lets the argument win)."""
    given = parse_qs(urlsplit(dsn).query)
    return {k: v for k, v in SERVER_SETTINGS.items() if k not in given}


async def _no_reset(_conn: Any) -> None:
    """The pool's reset between borrowers: nothing to undo. The store never changes session
    state (no SET, LISTEN, cursors or session-level locks; its advisory locks are
    transaction-scoped) and asyncpg rolls back an open transaction itself, so the default
    reset query would only cost a round trip per call."""


class PostgresStore(PostgresRuns, PostgresApiKeys, PostgresCompactions, PostgresBlackboard, Store):
    """A `Store` in a PostgreSQL database, shareable by several Staffer processes.

    `dsn` is a ``postgresql://user:password@host:port/dbname`` URL; extra query
    parameters are passed to the server as settings (``?search_path=staffer``).
    `open` creates a pool of `min_size` to `max_size` connections and creates or
    migrates the schema; `close` waits for calls already in progress, then closes
    the pool. Raises `ConfigError` when asyncpg is not installed.
    """

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        if not dsn.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                "the PostgreSQL URL must start with postgresql://",
                fix="use postgresql://USER:PASSWORD@HOST:5432/DBNAME",
            )
        self._driver = import_driver()
        self.dsn = dsn
        self.where = describe_url(dsn)
        self.min_size = min_size
        self.max_size = max_size
        self._pool: Any = None
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._session_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self._last_now = 0.0

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"  # never the URL: it may hold a password

    # --- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        pg = self._driver
        try:
            pool = await pg.create_pool(
                self.dsn,
                min_size=self.min_size,
                max_size=self.max_size,
                timeout=CONNECT_TIMEOUT,
                reset=_no_reset,
                server_settings=_server_settings(self.dsn),
            )
        except (OSError, TimeoutError, pg.PostgresError, pg.InterfaceError) as exc:
            raise connect_error(exc, self.where) from exc
        try:
            async with pool.acquire() as conn:
                await migrate(conn, self.where)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, OSError | TimeoutError | pg.PostgresError | pg.InterfaceError):
                raise translate(exc, "opening the database", self.where) from exc
            raise
        self._pool = pool
        logger.info("store opened: postgresql %s", self.where)

    async def close(self) -> None:
        pool = self._pool
        if pool is None:
            return
        # New calls are refused from here on; calls already started still finish.
        self._pool = None
        await self._idle.wait()
        await pool.close()
        logger.info("store closed: postgresql %s", self.where)

    # --- plumbing ----------------------------------------------------------

    async def _call(
        self, doing: str, fn: Callable[[Any], Awaitable[T]], *, session: str | None = None
    ) -> T:
        """Run `fn(conn)` on a pooled connection, translating driver errors.

        With `session`, calls for that session run one at a time in call order
        (asyncio locks are fair), as on SQLite's single thread: appends made in
        order get their seq numbers in that order. The row lock in the database
        still guards against other processes.
        """
        pool = self._pool
        if pool is None:
            raise StoreError(
                f"the store at {self.where} is not open; use `async with store:` or "
                "`await store.open()` first."
            )
        pg = self._driver
        self._busy += 1
        self._idle.clear()
        try:
            async with self._ordered(session), pool.acquire() as conn:
                return await fn(conn)
        except (OSError, TimeoutError, pg.PostgresError, pg.InterfaceError) as exc:
            raise translate(exc, doing, self.where) from exc
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def _ordered(self, session: str | None) -> AsyncIterator[None]:
        if session is None:
            yield
            return
        entry = self._session_locks.setdefault(session, (asyncio.Lock(), [0]))
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._session_locks[session]

    def _now(self) -> float:
        # Strictly increasing within the process, like SQLiteStore's.
        now = max(time.time(), self._last_now + 1e-6)
        self._last_now = now
        return now

    # --- sessions ----------------------------------------------------------

    async def create_session(self, *, title: str = "", agent: str = "main") -> SessionRecord:
        now = self._now()
        record = SessionRecord(new_id(), title, agent, now, now)

        async def work(conn: Any) -> SessionRecord:
            await conn.execute(pgc.INSERT_SESSION, record.id, pgc.put_text(title), agent, now, now)
            return record

        return await self._call("creating a session", work)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        async def work(conn: Any) -> SessionRecord | None:
            row = await conn.fetchrow(pgc.GET_SESSION, session_id)
            return None if row is None else pgc.session_from_row(row)

        return await self._call("reading a session", work)

    async def list_sessions(self, *, limit: int = 100) -> list[SessionRecord]:
        async def work(conn: Any) -> list[SessionRecord]:
            return [pgc.session_from_row(r) for r in await conn.fetch(pgc.LIST_SESSIONS, limit)]

        return await self._call("listing sessions", work)

    async def rename_session(self, session_id: str, title: str) -> None:
        async def work(conn: Any) -> None:
            status = await conn.execute(pgc.RENAME_SESSION, pgc.put_text(title), session_id)
            if status == "UPDATE 0":
                raise StoreError(f"cannot rename session {session_id!r}: it does not exist.")

        await self._call("renaming a session", work)

    # --- messages ----------------------------------------------------------

    async def append_messages(
        self, session_id: str, messages: list[Message], *, run_id: str | None = None
    ) -> list[MessageRecord]:
        now = self._now()

        async def work(conn: Any) -> list[MessageRecord]:
            async with conn.transaction():
                return await append(conn, session_id, run_id, messages, now)

        return await self._call("appending messages", work, session=session_id)

    async def list_messages(self, session_id: str) -> list[MessageRecord]:
        async def work(conn: Any) -> list[MessageRecord]:
            rows = await conn.fetch(pgc.LIST_MESSAGES, session_id)
            return [pgc.message_from_row(r) for r in rows]

        return await self._call("reading messages", work)

    # --- runs --------------------------------------------------------------

    async def create_run(self, session_id: str, *, model: str | None = None) -> RunRecord:
        record = RunRecord(
            new_id(), session_id, "running", self._now(), None, None, Usage(), model, attempt=1
        )

        async def work(conn: Any) -> RunRecord:
            with missing(f"session {session_id!r}"), lane(session_id):
                await conn.execute(pgc.INSERT_RUN, *pgc.run_params(record))
            return record

        return await self._call("creating a run", work)

    async def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        usage: Usage,
        error: str | None = None,
        owner: str | None = None,
    ) -> None:
        params = (
            status,
            self._now(),
            pgc.put_text(error),
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            run_id,
        )

        async def work(conn: Any) -> None:
            async with conn.transaction():
                if owner is not None:
                    await fence(conn, run_id, owner)
                if await conn.execute(pgc.FINISH_RUN, *params) == "UPDATE 0":
                    raise StoreError(f"cannot finish run {run_id!r}: it does not exist.")

        await self._call("finishing a run", work)

    async def get_run(self, run_id: str) -> RunRecord | None:
        async def work(conn: Any) -> RunRecord | None:
            row = await conn.fetchrow(pgc.GET_RUN, run_id)
            return None if row is None else pgc.run_from_row(row)

        return await self._call("reading a run", work)

    async def list_runs(self, session_id: str) -> list[RunRecord]:
        async def work(conn: Any) -> list[RunRecord]:
            return [pgc.run_from_row(r) for r in await conn.fetch(pgc.LIST_RUNS, session_id)]

        return await self._call("listing runs", work)

    # --- tool calls --------------------------------------------------------

    async def record_tool_call(self, record: ToolCallRecord) -> None:
        params = pgc.tool_call_params(record)

        async def work(conn: Any) -> None:
            with missing(f"run {record.run_id!r} or session {record.session_id!r}"):
                await conn.execute(pgc.INSERT_TOOL_CALL, *params)

        await self._call("recording a tool call", work)

    async def list_tool_calls(self, session_id: str) -> list[ToolCallRecord]:
        async def work(conn: Any) -> list[ToolCallRecord]:
            rows = await conn.fetch(pgc.LIST_TOOL_CALLS, session_id)
            return [pgc.tool_call_from_row(r) for r in rows]

        return await self._call("listing tool calls", work)

    # --- model calls -------------------------------------------------------

    async def record_model_calls(self, records: list[ModelCallRecord]) -> None:
        if not records:
            return
        params = [codec.model_call_params(r) for r in records]

        async def work(conn: Any) -> None:
            async with conn.transaction():
                await conn.executemany(pgc.INSERT_MODEL_CALL, params)

        await self._call("recording model calls", work)

    async def list_model_calls(
        self,
        *,
        since: float | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[ModelCallRecord]:
        sql = f"SELECT {pgc.MODEL_CALL_COLUMNS} FROM model_calls WHERE created_at >= $1"
        args: list[object] = [since if since is not None else float("-inf")]
        if session_id is not None:
            args.append(session_id)
            sql += f" AND session_id = ${len(args)}"
        args.append(limit)
        sql += f" ORDER BY created_at DESC, id DESC LIMIT ${len(args)}"

        async def work(conn: Any) -> list[ModelCallRecord]:
            return [codec.model_call_from_row(r) for r in await conn.fetch(sql, *args)]

        return await self._call("listing model calls", work)

    async def model_call_summary(
        self, by: UsageDimension, *, since: float | None = None, until: float | None = None
    ) -> list[UsageSummary]:
        column = pgc.USAGE_COLUMNS.get(by)
        if column is None:
            raise ValueError(
                f"cannot group model calls by {by!r}; use one of {list(pgc.USAGE_COLUMNS)}"
            )
        sql = pgc.SUMMARY.format(col=column)
        low = since if since is not None else float("-inf")
        high = until if until is not None else float("inf")

        async def work(conn: Any) -> list[UsageSummary]:
            return [
                UsageSummary(
                    key=key,
                    calls=calls,
                    failed_calls=failed,
                    usage=Usage(inp, out, cached),
                    cost_usd=nano / 1_000_000_000,
                    unknown_price_calls=unknown,
                )
                for key, calls, failed, inp, out, cached, nano, unknown in await conn.fetch(
                    sql, low, high
                )
            ]

        return await self._call("summarising model calls", work)
