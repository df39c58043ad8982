"""API keys for `SQLiteStore`: a mixin on the store's one worker thread.

Kept apart from ``sqlite.py`` so each module stays about one concept; it relies on
the store's `_call` (run on the worker thread) and `_now` (monotonic timestamps).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from staffer.store._base import ApiKeyRecord
from staffer.store._sqlite_tx import write as _write

T = TypeVar("T")

_COLUMNS = "id, user, name, prefix, created_at, revoked_at"
_INSERT = (
    "INSERT INTO api_keys (id, key_hash, prefix, user, name, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_LIST_ALL = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, rowid"
_LIST_USER = f"SELECT {_COLUMNS} FROM api_keys WHERE user = ? ORDER BY created_at, rowid"
_REVOKE = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
_GET = f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?"
_LOOKUP = f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL"


def _record(row: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(row[0], row[1], row[2], row[3], row[4], row[5])


class SQLiteApiKeys:
    """The `Store` API-key methods, for `SQLiteStore` to inherit."""

    if TYPE_CHECKING:

        async def _call(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        def _now(self) -> float: ...

    async def create_api_key(
        self, *, user: str, key_hash: str, prefix: str, name: str = ""
    ) -> ApiKeyRecord:
        def work(conn: sqlite3.Connection) -> ApiKeyRecord:
            record = ApiKeyRecord(secrets.token_hex(8), user, name, prefix, self._now(), None)
            with _write(conn):
                conn.execute(_INSERT, (record.id, key_hash, prefix, user, name, record.created_at))
            return record

        return await self._call("creating an API key", work)

    async def list_api_keys(self, *, user: str | None = None) -> list[ApiKeyRecord]:
        def work(conn: sqlite3.Connection) -> list[ApiKeyRecord]:
            rows = conn.execute(_LIST_ALL) if user is None else conn.execute(_LIST_USER, (user,))
            return [_record(r) for r in rows]

        return await self._call("listing API keys", work)

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        def work(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            with _write(conn):
                conn.execute(_REVOKE, (self._now(), key_id))
                row = conn.execute(_GET, (key_id,)).fetchone()
            return None if row is None else _record(row)

        return await self._call("revoking an API key", work)

    async def lookup_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        def work(conn: sqlite3.Connection) -> ApiKeyRecord | None:
            row = conn.execute(_LOOKUP, (key_hash,)).fetchone()
            return None if row is None else _record(row)

        return await self._call("looking up an API key", work)
