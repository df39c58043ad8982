"""API keys for `PostgresStore`: a mixin, like ``_sqlite_apikeys.py`` for SQLite.

It relies on the store's `_call` (one pooled connection per call, errors
translated) and `_now` (monotonic timestamps).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from staffer.store._base import ApiKeyRecord

T = TypeVar("T")

_COLUMNS = 'id, "user", name, prefix, created_at, revoked_at'
_INSERT = (
    'INSERT INTO api_keys (id, key_hash, prefix, "user", name, created_at) '
    "VALUES ($1, $2, $3, $4, $5, $6)"
)
_LIST_ALL = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, n"
_LIST_USER = f'SELECT {_COLUMNS} FROM api_keys WHERE "user" = $1 ORDER BY created_at, n'
_REVOKE = (
    f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING {_COLUMNS}"
)
_LOOKUP = f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"


def _record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(row[0], row[1], row[2], row[3], row[4], row[5])


class PostgresApiKeys:
    """The `Store` API-key methods, for `PostgresStore` to inherit."""

    if TYPE_CHECKING:

        async def _call(self, doing: str, fn: Callable[[Any], Awaitable[T]]) -> T: ...

        def _now(self) -> float: ...

    async def create_api_key(
        self, *, user: str, key_hash: str, prefix: str, name: str = ""
    ) -> ApiKeyRecord:
        record = ApiKeyRecord(secrets.token_hex(8), user, name, prefix, self._now(), None)

        async def work(conn: Any) -> ApiKeyRecord:
            await conn.execute(_INSERT, record.id, key_hash, prefix, user, name, record.created_at)
            return record

        return await self._call("creating an API key", work)

    async def list_api_keys(self, *, user: str | None = None) -> list[ApiKeyRecord]:
        async def work(conn: Any) -> list[ApiKeyRecord]:
            rows = await (conn.fetch(_LIST_ALL) if user is None else conn.fetch(_LIST_USER, user))
            return [_record(r) for r in rows]

        return await self._call("listing API keys", work)

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        # One statement: revoking twice keeps the first time, without a transaction.
        async def work(conn: Any) -> ApiKeyRecord | None:
            row = await conn.fetchrow(_REVOKE, self._now(), key_id)
            return None if row is None else _record(row)

        return await self._call("revoking an API key", work)

    async def lookup_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        async def work(conn: Any) -> ApiKeyRecord | None:
            row = await conn.fetchrow(_LOOKUP, key_hash)
            return None if row is None else _record(row)

        return await self._call("looking up an API key", work)
