"""Transaction helpers shared by `SQLiteStore` and its mixins (worker thread only)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from staffer.errors import StoreError
from staffer.models import Message
from staffer.store import _codec as codec
from staffer.store._base import MessageRecord

INSERT_RUN = (
    f"INSERT INTO runs ({codec.RUN_COLUMNS}) VALUES ({codec.placeholders(codec.RUN_COLUMNS)})"
)
INSERT_TOOL_CALL = (
    f"INSERT INTO tool_calls ({codec.TOOL_CALL_COLUMNS}) "
    f"VALUES ({codec.placeholders(codec.TOOL_CALL_COLUMNS)})"
)
_TOUCH_SESSION = "UPDATE sessions SET updated_at = ? WHERE id = ?"
_TOUCH_RUN_SESSION = (
    "UPDATE sessions SET updated_at = MAX(updated_at, ?) "
    "WHERE id = (SELECT session_id FROM runs WHERE id = ?)"
)
_SESSION_EXISTS = "SELECT 1 FROM sessions WHERE id = ?"
# The next seq and the row in one statement (one message at a time: seq stays gap-free).
_APPEND_MESSAGE = (
    f"INSERT INTO messages ({codec.MESSAGE_COLUMNS}) "
    "SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, ? FROM messages "
    "WHERE session_id = ? RETURNING seq"
)


@contextlib.contextmanager
def write(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; IMMEDIATE takes the write lock up front so a
    concurrent writer in another process waits instead of failing mid-way."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:  # SQLite may already have rolled back (FULL, IOERR, BUSY)
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def missing(what: str) -> Iterator[None]:
    """Turn a foreign-key failure into a message naming the row that is missing."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "FOREIGN KEY" not in str(exc):
            raise
        raise StoreError(f"{what} does not exist; create it first.") from exc


def append(
    conn: sqlite3.Connection,
    session_id: str,
    run_id: str | None,
    messages: list[Message],
    now: float,
) -> list[MessageRecord]:
    """Append `messages` to the session inside the caller's transaction; touch the session."""
    if conn.execute(_TOUCH_SESSION, (now, session_id)).rowcount == 0:
        raise _no_session(session_id)
    return insert_messages(conn, session_id, run_id, messages, now)


def insert_messages(
    conn: sqlite3.Connection,
    session_id: str,
    run_id: str | None,
    messages: list[Message],
    now: float,
) -> list[MessageRecord]:
    """Insert `messages` at the end of the session's history without touching the session
    (a journaled step: the session moves when its run starts and when it finishes)."""
    records = []
    with missing(f"run {run_id!r}"):
        try:
            for message in messages:
                params = codec.message_params(session_id, 0, run_id, message, now)
                row = conn.execute(_APPEND_MESSAGE, (params[0], *params[2:], session_id))
                records.append(MessageRecord(session_id, row.fetchone()[0], run_id, message, now))
        except sqlite3.IntegrityError as exc:  # the session, or else the run, is missing
            if conn.execute(_SESSION_EXISTS, (session_id,)).fetchone() is None:
                raise _no_session(session_id) from exc
            raise
    return records


def touch_run_session(conn: sqlite3.Connection, run_id: str, now: float) -> None:
    """Move the session of `run_id` to `now` (its list order) inside the caller's transaction."""
    conn.execute(_TOUCH_RUN_SESSION, (now, run_id))


def _no_session(session_id: str) -> StoreError:
    return StoreError(
        f"cannot append messages to session {session_id!r}: it does not exist. "
        "Create the session first."
    )


@contextlib.contextmanager
def lane(session_id: str) -> Iterator[None]:
    """Turn a clash with the one-active-run-per-session index into a clear error."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" not in str(exc) or "runs.session_id" not in str(exc):
            raise
        raise StoreError(
            f"session {session_id!r} already has an active run; wait for it to finish "
            "or cancel it first."
        ) from exc
