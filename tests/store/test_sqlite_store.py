"""What only the SQLite store promises: the file, its pragmas, its schema and its errors."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import sys
import threading
from pathlib import Path

import pytest

from staffer.errors import StoreError
from staffer.models import Message, ToolCall
from staffer.store import SQLiteStore
from staffer.store._schema import SCHEMA_VERSION

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


@posix_only
async def test_file_created_private_with_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "staffer.db"
    old_umask = os.umask(0o022)
    try:
        async with SQLiteStore(path) as store:
            session = await store.create_session()
            await store.append_messages(session.id, [Message(role="user", content="secret")])
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            wal = path.with_name(path.name + "-wal")
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)


async def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "staffer.db"
    async with SQLiteStore(path):
        assert pragma(path, "journal_mode") == "wal"
        assert pragma(path, "user_version") == SCHEMA_VERSION
    assert SCHEMA_VERSION >= 1


async def test_connection_pragmas(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "staffer.db", busy_timeout=1.5)
    async with store:

        def read(conn: sqlite3.Connection) -> tuple[int, int, int]:
            fk = conn.execute("PRAGMA foreign_keys").fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            busy = conn.execute("PRAGMA busy_timeout").fetchone()[0]
            return fk, sync, busy

        assert await store._call("reading pragmas", read) == (1, 1, 1500)  # 1 = NORMAL


async def test_reopen_existing_file_keeps_schema(tmp_path: Path) -> None:
    path = tmp_path / "staffer.db"
    async with SQLiteStore(path) as store:
        session = await store.create_session()
    async with SQLiteStore(path) as store:
        assert await store.get_session(session.id) is not None
    assert pragma(path, "user_version") == SCHEMA_VERSION


async def test_tool_calls_stored_as_json(tmp_path: Path) -> None:
    path = tmp_path / "staffer.db"
    calls = [ToolCall(id="c1", name="web", arguments='{"q":"ß"}')]
    async with SQLiteStore(path) as store:
        session = await store.create_session()
        await store.append_messages(session.id, [Message(role="assistant", tool_calls=calls)])
        await store.append_messages(session.id, [Message(role="user", content="no calls")])
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT tool_calls FROM messages ORDER BY seq").fetchall()
    assert rows == [('[{"id":"c1","name":"web","arguments":"{\\"q\\":\\"ß\\"}"}]',), (None,)]


async def test_non_database_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "staffer.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as caught:
        await store.open()
    message = str(caught.value)
    assert str(path) in message
    assert "not a SQLite database" in message
    assert "Move it away" in message
    assert path.read_bytes().startswith(b"these are my notes")  # left untouched
    with pytest.raises(StoreError, match="not open"):
        await store.list_sessions()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "staffer.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer Staffer"):
        await SQLiteStore(path).open()


async def test_uncreatable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the data directory should be")
    with pytest.raises(StoreError, match="cannot create the database file") as caught:
        await SQLiteStore(blocker / "staffer.db").open()
    assert str(blocker / "staffer.db") in str(caught.value)


async def test_lock_held_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "staffer.db"
    async with SQLiteStore(path, busy_timeout=0.05) as store:
        session = await store.create_session()
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="Another process") as caught:
                await store.append_messages(session.id, [Message(role="user", content="x")])
            assert str(path) in str(caught.value)
            other.execute("ROLLBACK")
        finally:
            other.close()
        records = await store.append_messages(session.id, [Message(role="user", content="x")])
        assert records[0].seq == 1


async def test_calls_run_on_one_worker_thread(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "staffer.db") as store:

        def ident(conn: sqlite3.Connection) -> int:
            return threading.get_ident()

        idents = await asyncio.gather(*(store._call("probe", ident) for _ in range(20)))
    assert len(set(idents)) == 1
    assert idents[0] != threading.get_ident()
