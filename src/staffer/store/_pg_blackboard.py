"""The team blackboard for `PostgresStore`: a mixin, like ``_sqlite_blackboard.py``.

Every write is one statement, so no transaction is held open across a round trip: a
plain write is an upsert that bumps the version; a compare-and-set is an ``UPDATE …
WHERE version = $n`` (or an insert that does nothing if the key exists). Under the row
lock a second writer expecting the same version re-reads the row, finds the new version
and changes nothing, so exactly one of them wins, across processes too. Keys and values
are free text, stored through `put_text` (PostgreSQL text cannot hold NUL).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from staffer.store._base import BlackboardEntry, blackboard_conflict
from staffer.store._pg_codec import get_text, put_text

T = TypeVar("T")

_COLUMNS = "team, key, value, written_by, run_id, version, updated_at"
_GET = f"SELECT {_COLUMNS} FROM blackboard WHERE team = $1 AND key = $2"
# COLLATE "C": ordered by code point, as SQLite orders them, whatever the database's locale.
_LIST = (
    f"SELECT {_COLUMNS} FROM blackboard WHERE team = $1 AND left(key, char_length($2)) = $2 "
    'ORDER BY key COLLATE "C"'
)
_INSERT = (
    f"INSERT INTO blackboard ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, 1, $6) "
    "ON CONFLICT (team, key) DO "
)
_UPSERT = (
    _INSERT + "UPDATE SET value = EXCLUDED.value, written_by = EXCLUDED.written_by, "
    "run_id = EXCLUDED.run_id, version = blackboard.version + 1, "
    f"updated_at = EXCLUDED.updated_at RETURNING {_COLUMNS}"
)
_CREATE = _INSERT + f"NOTHING RETURNING {_COLUMNS}"
_SWAP = (
    "UPDATE blackboard SET value = $3, written_by = $4, run_id = $5, version = version + 1, "
    f"updated_at = $6 WHERE team = $1 AND key = $2 AND version = $7 RETURNING {_COLUMNS}"
)


def _entry(row: Any) -> BlackboardEntry:
    return BlackboardEntry(
        row[0], get_text(row[1]) or "", get_text(row[2]) or "", row[3], row[4], row[5], row[6]
    )


class PostgresBlackboard:
    """The `Store` blackboard methods, for `PostgresStore` to inherit."""

    if TYPE_CHECKING:

        async def _call(self, doing: str, fn: Callable[[Any], Awaitable[T]]) -> T: ...

        def _now(self) -> float: ...

    async def blackboard_write(
        self,
        team: str,
        key: str,
        value: str,
        *,
        written_by: str,
        run_id: str | None = None,
        expected_version: int | None = None,
    ) -> BlackboardEntry:
        if expected_version is not None and expected_version < 0:
            raise ValueError(f"expected_version must be 0 or more, got {expected_version}")
        args = (team, put_text(key), put_text(value), written_by, run_id, self._now())

        async def work(conn: Any) -> BlackboardEntry:
            if expected_version is None:
                row = await conn.fetchrow(_UPSERT, *args)
            elif expected_version == 0:
                row = await conn.fetchrow(_CREATE, *args)
            else:
                row = await conn.fetchrow(_SWAP, *args, expected_version)
            if row is None:
                found = await conn.fetchrow(_GET, team, put_text(key))
                current = 0 if found is None else int(found[5])
                raise blackboard_conflict(team, key, expected_version or 0, current)
            return _entry(row)

        return await self._call("writing to the blackboard", work)

    async def blackboard_read(self, team: str, key: str) -> BlackboardEntry | None:
        async def work(conn: Any) -> BlackboardEntry | None:
            row = await conn.fetchrow(_GET, team, put_text(key))
            return None if row is None else _entry(row)

        return await self._call("reading the blackboard", work)

    async def blackboard_list(self, team: str, prefix: str = "") -> list[BlackboardEntry]:
        async def work(conn: Any) -> list[BlackboardEntry]:
            return [_entry(r) for r in await conn.fetch(_LIST, team, put_text(prefix))]

        return await self._call("listing the blackboard", work)
