"""The team blackboard for `SQLiteStore`: a mixin on the store's one worker thread.

A compare-and-set write reads the version and writes in one ``BEGIN IMMEDIATE``
transaction: the worker thread serializes writers in this process, SQLite's write lock
serializes them across processes, so of two writers expecting one version exactly one wins.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from staffer.store._base import BlackboardEntry, blackboard_conflict
from staffer.store._sqlite_tx import write

T = TypeVar("T")

_COLUMNS = "team, key, value, written_by, run_id, version, updated_at"
_GET = f"SELECT {_COLUMNS} FROM blackboard WHERE team = ? AND key = ?"
# Compared as bytes: length() and substr() of text stop at a NUL, and LIKE has wildcards.
_LIST = (
    f"SELECT {_COLUMNS} FROM blackboard "
    "WHERE team = ? AND substr(CAST(key AS BLOB), 1, ?) = CAST(? AS BLOB) ORDER BY key"
)
_UPSERT = (
    f"INSERT INTO blackboard ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (team, key) DO UPDATE SET value = excluded.value, "
    "written_by = excluded.written_by, run_id = excluded.run_id, "
    "version = excluded.version, updated_at = excluded.updated_at"
)


def _entry(row: tuple[Any, ...]) -> BlackboardEntry:
    return BlackboardEntry(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


class SQLiteBlackboard:
    """The `Store` blackboard methods, for `SQLiteStore` to inherit."""

    if TYPE_CHECKING:

        async def _call(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T: ...

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

        def work(conn: sqlite3.Connection) -> BlackboardEntry:
            with write(conn):
                row = conn.execute(_GET, (team, key)).fetchone()
                current = 0 if row is None else int(row[5])
                if expected_version is not None and expected_version != current:
                    raise blackboard_conflict(team, key, expected_version, current)
                entry = BlackboardEntry(
                    team, key, value, written_by, run_id, current + 1, self._now()
                )
                conn.execute(
                    _UPSERT,
                    (team, key, value, written_by, run_id, entry.version, entry.updated_at),
                )
            return entry

        return await self._call("writing to the blackboard", work)

    async def blackboard_read(self, team: str, key: str) -> BlackboardEntry | None:
        def work(conn: sqlite3.Connection) -> BlackboardEntry | None:
            row = conn.execute(_GET, (team, key)).fetchone()
            return None if row is None else _entry(row)

        return await self._call("reading the blackboard", work)

    async def blackboard_list(self, team: str, prefix: str = "") -> list[BlackboardEntry]:
        def work(conn: sqlite3.Connection) -> list[BlackboardEntry]:
            args = (team, len(prefix.encode()), prefix)
            return [_entry(r) for r in conn.execute(_LIST, args)]

        return await self._call("listing the blackboard", work)
