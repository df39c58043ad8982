"""`SQLiteStore`: the default store, one SQLite file owned by one worker thread.

Like datasette's write connection, every statement runs on a single dedicated
thread that owns the only connection: the event loop never blocks on disk, and
writes are serialized without any lock of our own. Each public method is one
hop to that thread and, for writes, one ``BEGIN IMMEDIATE … COMMIT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from staffer.errors import StoreError
from staffer.models import Message, Usage
from staffer.store import _codec as codec
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
from staffer.store._schema import migrate
from staffer.store._sqlite_apikeys import SQLiteApiKeys
from staffer.store._sqlite_blackboard import SQLiteBlackboard
from staffer.store._sqlite_compactions import SQLiteCompactions
from staffer.store._sqlite_runs import SQLiteRuns, fence
from staffer.store._sqlite_thread import WorkerThread
from staffer.store._sqlite_tx import INSERT_RUN, INSERT_TOOL_CALL, append, touch_run_session
from staffer.store._sqlite_tx import lane as _lane
from staffer.store._sqlite_tx import missing as _missing
from staffer.store._sqlite_tx import write as _write

logger = logging.getLogger("staffer.store")

T = TypeVar("T")

CHECKPOINT_EVERY = 1.0  # seconds between background WAL checkpoints
DEFAULT_BUSY_TIMEOUT = 5.0  # seconds to wait for another process's write lock

# One constant per statement: sqlite3 caches prepared statements by SQL text.
_INSERT_SESSION = f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
_GET_SESSION = f"SELECT {codec.SESSION_COLUMNS} FROM sessions WHERE id = ?"
_LIST_SESSIONS = (
    f"SELECT {codec.SESSION_COLUMNS} FROM sessions ORDER BY updated_at DESC, rowid DESC LIMIT ?"
)
_RENAME_SESSION = "UPDATE sessions SET title = ? WHERE id = ?"
_LIST_MESSAGES = f"SELECT {codec.MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY seq"
_FINISH_RUN = (
    "UPDATE runs SET status = ?, finished_at = ?, error = ?, "
    "input_tokens = ?, output_tokens = ?, cached_input_tokens = ? WHERE id = ?"
)
_GET_RUN = f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE id = ?"
_LIST_RUNS = f"SELECT {codec.RUN_COLUMNS} FROM runs WHERE session_id = ? ORDER BY created_at, rowid"
_LIST_TOOL_CALLS = (
    f"SELECT {codec.TOOL_CALL_COLUMNS} FROM tool_calls WHERE session_id = ? ORDER BY created_at, id"
)

_INSERT_MODEL_CALL = (
    f"INSERT INTO model_calls ({codec.MODEL_CALL_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The grouping column comes from this fixed map, never from the caller's text.
_USAGE_COLUMNS: dict[str, str] = {
    "deployment": "deployment",
    "alias": "alias",
    "agent": "agent",
    "session": "session_id",
    "user": "user",
    "channel": "channel",
}
_SUMMARY = (
    "SELECT {col}, COUNT(*), SUM(1 - ok), SUM(input_tokens), SUM(output_tokens), "
    "SUM(cached_input_tokens), COALESCE(SUM(cost_nano_usd), 0), SUM(price_unknown) "
    "FROM model_calls WHERE created_at >= ? AND created_at < ? "
    "GROUP BY {col} ORDER BY 7 DESC, 2 DESC, {col}"
)


class SQLiteStore(SQLiteRuns, SQLiteApiKeys, SQLiteCompactions, SQLiteBlackboard, Store):
    """The default `Store`: a single SQLite file in WAL mode.

    All database work happens on one worker thread that owns the connection, so
    calls never block the event loop and writes are applied one at a time. The
    file is created with mode 0600 (it holds conversations) and its schema is
    created or migrated by `open`. Several processes may share the file; SQLite's
    own locking serializes them: a writer waits up to `busy_timeout` seconds for
    another process's lock before giving up with a `StoreError`.
    """

    def __init__(self, path: Path | str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._worker: WorkerThread | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._last_now = 0.0  # only touched on the worker thread

    # --- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        if self._worker is not None:
            return
        worker = WorkerThread("staffer-store")
        try:
            conn = await worker.run(self._connect)
        except BaseException:
            worker.stop()
            raise
        self._worker, self._conn = worker, conn
        self._checkpoints = asyncio.create_task(self._checkpoint_loop(), name="sqlite-checkpoint")
        logger.info("store opened: %s", self.path)

    async def close(self) -> None:
        worker, conn = self._worker, self._conn
        if worker is None or conn is None:
            return
        # New calls are refused from here on; calls already queued still run first.
        self._worker = self._conn = None
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None
        try:
            await worker.run(_close, conn)
        finally:
            worker.stop()
        logger.info("store closed: %s", self.path)

    def _connect(self) -> sqlite3.Connection:
        try:
            self._create_file()
        except OSError as exc:
            raise StoreError(
                f"cannot create the database file {self.path}: {exc.strerror}. "
                "Check that the directory is writable, or choose another path."
            ) from exc
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, cached_statements=64)
        except sqlite3.Error as exc:
            raise _translate(exc, "opening the database", self.path) from exc
        try:
            _configure(conn, self.path, self.busy_timeout)
            migrate(conn, self.path)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, "opening the database", self.path) from exc
            raise
        return conn

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database every `CHECKPOINT_EVERY` seconds, on a thread and
        connection of its own, so the fsyncs of a checkpoint never land inside the commit
        of a step (SQLite's automatic checkpoint is only a safety net, at 10,000 pages)."""
        worker = WorkerThread("staffer-checkpoint")
        conn: sqlite3.Connection | None = None
        try:
            conn = await worker.run(_checkpoint_connection, self.path, self.busy_timeout)
            while True:
                await asyncio.sleep(CHECKPOINT_EVERY)
                try:
                    await worker.run(conn.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    logger.warning("%s: checkpoint failed: %s", self.path, exc)
        finally:
            if conn is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(worker.run(conn.close))
            worker.stop()

    def _create_file(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        os.close(fd)
        os.chmod(self.path, 0o600)  # whatever the umask; SQLite copies it to -wal and -shm

    # --- plumbing ----------------------------------------------------------

    async def _call(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the worker thread, translating sqlite errors."""
        worker, conn = self._worker, self._conn
        if worker is None or conn is None:
            raise StoreError(
                f"the store at {self.path} is not open; use `async with store:` or "
                "`await store.open()` first."
            )
        return await worker.run(self._guarded, conn, doing, fn)

    def _guarded(
        self, conn: sqlite3.Connection, doing: str, fn: Callable[[sqlite3.Connection], T]
    ) -> T:
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            raise _translate(exc, doing, self.path) from exc

    def _now(self) -> float:
        # Strictly increasing within the process, so "most recently updated" is
        # well defined even when the clock is coarse (Windows ticks ~15 ms).
        now = max(time.time(), self._last_now + 1e-6)
        self._last_now = now
        return now

    # --- sessions ----------------------------------------------------------

    async def create_session(self, *, title: str = "", agent: str = "main") -> SessionRecord:
        def work(conn: sqlite3.Connection) -> SessionRecord:
            now = self._now()
            record = SessionRecord(new_id(), title, agent, now, now)
            with _write(conn):
                conn.execute(_INSERT_SESSION, (record.id, title, agent, now, now))
            return record

        return await self._call("creating a session", work)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        def work(conn: sqlite3.Connection) -> SessionRecord | None:
            row = conn.execute(_GET_SESSION, (session_id,)).fetchone()
            return None if row is None else codec.session_from_row(row)

        return await self._call("reading a session", work)

    async def list_sessions(self, *, limit: int = 100) -> list[SessionRecord]:
        def work(conn: sqlite3.Connection) -> list[SessionRecord]:
            return [codec.session_from_row(r) for r in conn.execute(_LIST_SESSIONS, (limit,))]

        return await self._call("listing sessions", work)

    async def rename_session(self, session_id: str, title: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                if conn.execute(_RENAME_SESSION, (title, session_id)).rowcount == 0:
                    raise StoreError(f"cannot rename session {session_id!r}: it does not exist.")

        await self._call("renaming a session", work)

    # --- messages ----------------------------------------------------------

    async def append_messages(
        self, session_id: str, messages: list[Message], *, run_id: str | None = None
    ) -> list[MessageRecord]:
        def work(conn: sqlite3.Connection) -> list[MessageRecord]:
            with _write(conn):
                return append(conn, session_id, run_id, messages, self._now())

        return await self._call("appending messages", work)

    async def list_messages(self, session_id: str) -> list[MessageRecord]:
        def work(conn: sqlite3.Connection) -> list[MessageRecord]:
            return [codec.message_from_row(r) for r in conn.execute(_LIST_MESSAGES, (session_id,))]

        return await self._call("reading messages", work)

    # --- runs --------------------------------------------------------------

    async def create_run(self, session_id: str, *, model: str | None = None) -> RunRecord:
        def work(conn: sqlite3.Connection) -> RunRecord:
            record = RunRecord(
                new_id(), session_id, "running", self._now(), None, None, Usage(), model, attempt=1
            )
            with _write(conn), _missing(f"session {session_id!r}"), _lane(session_id):
                conn.execute(INSERT_RUN, codec.run_params(record))
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
        def work(conn: sqlite3.Connection) -> None:
            params = (
                status,
                self._now(),
                error,
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                run_id,
            )
            with _write(conn):
                if owner is not None:
                    fence(conn, run_id, owner)
                if conn.execute(_FINISH_RUN, params).rowcount == 0:
                    raise StoreError(f"cannot finish run {run_id!r}: it does not exist.")
                touch_run_session(conn, run_id, params[1])  # steps do not touch it

        await self._call("finishing a run", work)

    async def get_run(self, run_id: str) -> RunRecord | None:
        def work(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(_GET_RUN, (run_id,)).fetchone()
            return None if row is None else codec.run_from_row(row)

        return await self._call("reading a run", work)

    async def list_runs(self, session_id: str) -> list[RunRecord]:
        def work(conn: sqlite3.Connection) -> list[RunRecord]:
            return [codec.run_from_row(r) for r in conn.execute(_LIST_RUNS, (session_id,))]

        return await self._call("listing runs", work)

    # --- tool calls --------------------------------------------------------

    async def record_tool_call(self, record: ToolCallRecord) -> None:
        def work(conn: sqlite3.Connection) -> None:
            what = f"run {record.run_id!r} or session {record.session_id!r}"
            with _write(conn), _missing(what):
                conn.execute(INSERT_TOOL_CALL, codec.tool_call_params(record))

        await self._call("recording a tool call", work)

    async def list_tool_calls(self, session_id: str) -> list[ToolCallRecord]:
        def work(conn: sqlite3.Connection) -> list[ToolCallRecord]:
            rows = conn.execute(_LIST_TOOL_CALLS, (session_id,))
            return [codec.tool_call_from_row(r) for r in rows]

        return await self._call("listing tool calls", work)

    # --- model calls -------------------------------------------------------

    async def record_model_calls(self, records: list[ModelCallRecord]) -> None:
        if not records:
            return
        params = [codec.model_call_params(r) for r in records]

        def work(conn: sqlite3.Connection) -> None:
            with _write(conn):
                conn.executemany(_INSERT_MODEL_CALL, params)

        await self._call("recording model calls", work)

    async def list_model_calls(
        self,
        *,
        since: float | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[ModelCallRecord]:
        sql = f"SELECT {codec.MODEL_CALL_COLUMNS} FROM model_calls WHERE created_at >= ?"
        args: list[object] = [since if since is not None else float("-inf")]
        if session_id is not None:
            sql += " AND session_id = ?"
            args.append(session_id)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)

        def work(conn: sqlite3.Connection) -> list[ModelCallRecord]:
            return [codec.model_call_from_row(r) for r in conn.execute(sql, args)]

        return await self._call("listing model calls", work)

    async def model_call_summary(
        self, by: UsageDimension, *, since: float | None = None, until: float | None = None
    ) -> list[UsageSummary]:
        column = _USAGE_COLUMNS.get(by)
        if column is None:
            raise ValueError(
                f"cannot group model calls by {by!r}; use one of {list(_USAGE_COLUMNS)}"
            )
        sql = _SUMMARY.format(col=column)
        low = since if since is not None else float("-inf")
        high = until if until is not None else float("inf")

        def work(conn: sqlite3.Connection) -> list[UsageSummary]:
            return [
                UsageSummary(
                    key=key,
                    calls=calls,
                    failed_calls=failed,
                    usage=Usage(inp, out, cached),
                    cost_usd=nano / 1_000_000_000,
                    unknown_price_calls=unknown,
                )
                for key, calls, failed, inp, out, cached, nano, unknown in conn.execute(
                    sql, (low, high)
                )
            ]

        return await self._call("summarising model calls", work)


# --- connection helpers (worker thread only) --------------------------------


def _configure(conn: sqlite3.Connection, path: Path, busy_timeout: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    # The first real read of the file: a non-database file fails here (SQLITE_NOTADB).
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        logger.warning(
            "%s: WAL mode unavailable (journal_mode=%s); writes will be slower", path, mode
        )
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 10000")  # the store checkpoints in the background
    conn.execute("PRAGMA foreign_keys = ON")


def _checkpoint_connection(path: Path, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    return conn


def _close(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA optimize")
    conn.close()


# Primary result codes (https://sqlite.org/rescode.html), to explain what to do.
_ADVICE: dict[int, str] = {
    5: "another process (a second Staffer?) holds the write lock on {path}. "
    "Stop it, or give each instance its own database file.",
    6: "a table in {path} is locked by another connection. Retry, or stop other processes "
    "using the file.",
    8: "{path} is read-only. Check the file's and its directory's permissions and owner.",
    10: "a disk I/O error occurred on {path}. Check the disk and the filesystem "
    "(network filesystems do not support SQLite's locking).",
    11: "{path} is corrupt. Move it away (and restore a backup) so Staffer can start fresh.",
    13: "the disk holding {path} is full. Free some space and retry.",
    14: "{path} cannot be opened. Check that the directory exists and is writable.",
    19: "a constraint failed (does the session or run referred to exist?).",
    26: "{path} is not a SQLite database (or is encrypted or damaged). Move it away "
    "so Staffer can create a new one there, or point Staffer at another path.",
}


def _translate(exc: sqlite3.Error, doing: str, path: Path) -> StoreError:
    # sqlite_errorcode (Python 3.11+) is absent on errors raised by the module itself.
    code = getattr(exc, "sqlite_errorcode", None)
    advice = _ADVICE.get(code & 0xFF) if isinstance(code, int) else None
    advice = (advice or "if it persists, check {path} and report a bug.").format(path=path)
    return StoreError(f"{doing} failed: {exc}. {advice[:1].upper()}{advice[1:]}")
