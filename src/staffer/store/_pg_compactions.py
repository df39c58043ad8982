"""Compactions for `PostgresStore`: a mixin, like ``_sqlite_compactions.py`` for SQLite.

It relies on the store's `_call` (one pooled connection per call, errors translated)
and `_now` (monotonic timestamps). The summary is free text, so it is stored through
`put_text` (PostgreSQL text cannot hold NUL).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from staffer.store._base import CompactionRecord
from staffer.store._pg_codec import get_text, put_text
from staffer.store._pg_errors import missing

T = TypeVar("T")

_COLUMNS = (
    "id, session_id, run_id, upto_seq, summary, model, tokens_before, tokens_after, created_at"
)
_INSERT = (
    "INSERT INTO compactions (session_id, run_id, upto_seq, summary, model, "
    "tokens_before, tokens_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
    "RETURNING id"
)
_LATEST = (
    f"SELECT {_COLUMNS} FROM compactions WHERE session_id = $1 "
    "ORDER BY upto_seq DESC, id DESC LIMIT 1"
)
_LIST = f"SELECT {_COLUMNS} FROM compactions WHERE session_id = $1 ORDER BY upto_seq, id"


def _record(row: Any) -> CompactionRecord:
    id_, session_id, run_id, upto_seq, summary, model, before, after, created_at = row
    summary = get_text(summary) or ""
    return CompactionRecord(
        id_, session_id, run_id, upto_seq, summary, model, before, after, created_at
    )


class PostgresCompactions:
    """The `Store` compaction methods, for `PostgresStore` to inherit."""

    if TYPE_CHECKING:

        async def _call(self, doing: str, fn: Callable[[Any], Awaitable[T]]) -> T: ...

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
        now = self._now()
        params = (session_id, run_id, upto_seq, summary, model, tokens_before, tokens_after)
        what = f"session {session_id!r}" + (f" or run {run_id!r}" if run_id else "")

        async def work(conn: Any) -> CompactionRecord:
            with missing(what):
                row_id = await conn.fetchval(
                    _INSERT, *params[:3], put_text(summary), *params[4:], now
                )
            return CompactionRecord(int(row_id), *params, now)

        return await self._call("recording a compaction", work)

    async def latest_compaction(self, session_id: str) -> CompactionRecord | None:
        async def work(conn: Any) -> CompactionRecord | None:
            row = await conn.fetchrow(_LATEST, session_id)
            return None if row is None else _record(row)

        return await self._call("reading the latest compaction", work)

    async def list_compactions(self, session_id: str) -> list[CompactionRecord]:
        async def work(conn: Any) -> list[CompactionRecord]:
            return [_record(r) for r in await conn.fetch(_LIST, session_id)]

        return await self._call("listing compactions", work)
