"""Compactions for `SQLiteStore`: a mixin on the store's one worker thread.

Kept apart from ``sqlite.py`` like ``_sqlite_apikeys.py``; it relies on the store's
`_call` (run on the worker thread) and `_now` (monotonic timestamps). A compaction only
adds a row: the messages it summarizes stay in ``messages``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from staffer.errors import StoreError
from staffer.store._base import CompactionRecord
from staffer.store._sqlite_tx import write as _write

T = TypeVar("T")

_COLUMNS = (
    "id, session_id, run_id, upto_seq, summary, model, tokens_before, tokens_after, created_at"
)
_INSERT = (
    "INSERT INTO compactions (session_id, run_id, upto_seq, summary, model, "
    "tokens_before, tokens_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_LATEST = (
    f"SELECT {_COLUMNS} FROM compactions WHERE session_id = ? "
    "ORDER BY upto_seq DESC, id DESC LIMIT 1"
)
_LIST = f"SELECT {_COLUMNS} FROM compactions WHERE session_id = ? ORDER BY upto_seq, id"


def _record(row: tuple[Any, ...]) -> CompactionRecord:
    return CompactionRecord(*row)


@contextlib.contextmanager
def _missing(session_id: str, run_id: str | None) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "FOREIGN KEY" not in str(exc):
            raise
        what = f"session {session_id!r}" + (f" or run {run_id!r}" if run_id else "")
        raise StoreError(f"{what} does not exist; create it first.") from exc


class SQLiteCompactions:
    """The `Store` compaction methods, for `SQLiteStore` to inherit."""

    if TYPE_CHECKING:

        async def _call(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        def _now(self) -> float: ...

    async def record_compaction(
        self,
        session_id: str,
        *,
        upto_seq: int,
        summary: str,
        run_id: str | None = None,
        model: str | None = None,
        tokens_before: int = 0,
        tokens_after: int = 0,
    ) -> CompactionRecord:
        if upto_seq < 1:
            raise ValueError(f"upto_seq must be a message seq (1 or more), got {upto_seq}")

        def work(conn: sqlite3.Connection) -> CompactionRecord:
            now = self._now()
            params = (session_id, run_id, upto_seq, summary, model, tokens_before, tokens_after)
            with _write(conn), _missing(session_id, run_id):
                row_id = conn.execute(_INSERT, (*params, now)).lastrowid
            assert row_id is not None
            return CompactionRecord(row_id, *params, now)

        return await self._call("recording a compaction", work)

    async def latest_compaction(self, session_id: str) -> CompactionRecord | None:
        def work(conn: sqlite3.Connection) -> CompactionRecord | None:
            row = conn.execute(_LATEST, (session_id,)).fetchone()
            return None if row is None else _record(row)

        return await self._call("reading the latest compaction", work)

    async def list_compactions(self, session_id: str) -> list[CompactionRecord]:
        def work(conn: sqlite3.Connection) -> list[CompactionRecord]:
            return [_record(r) for r in conn.execute(_LIST, (session_id,))]

        return await self._call("listing compactions", work)
