"""What only the PostgreSQL store promises: its driver, schema, URL handling and errors.

Needs ``STAFFER_TEST_POSTGRES_URL`` (see conftest.py); the driver tests do not.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest

from staffer.errors import ConfigError, StoreError
from staffer.models import Message, ToolCall, Usage
from staffer.store import ToolCallRecord
from staffer.store._pg_schema import SCHEMA_VERSION
from staffer.store._schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION

asyncpg = pytest.importorskip("asyncpg")
from staffer.store.postgres import PostgresStore  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_importing_the_store_does_not_import_the_driver() -> None:
    code = "import sys, staffer.store; assert 'asyncpg' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_driver_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # makes `import asyncpg` fail
    with pytest.raises(ConfigError, match="PostgreSQL support is not installed") as caught:
        PostgresStore("postgresql://localhost/x")
    assert caught.value.fix == "pip install 'staffer[postgres]'"


def test_non_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="postgresql://"):
        PostgresStore("host=localhost dbname=x")


async def test_unreachable_server_is_a_clear_error() -> None:
    port = free_port()
    store = PostgresStore(f"postgresql://ann:s3cret@127.0.0.1:{port}/staffer")
    with pytest.raises(StoreError) as caught:
        await store.open()
    message = str(caught.value)
    assert message.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port}: ")
    assert "check the URL and that the server is running" in message
    assert "s3cret" not in message
    assert "s3cret" not in repr(store)
    with pytest.raises(StoreError, match="not open"):
        await store.list_sessions()


async def test_missing_database_says_to_create_it(postgres_schema_url: str) -> None:
    parts = urlsplit(postgres_schema_url)
    url = urlunsplit(parts._replace(path="/no_such_db_for_staffer"))
    with pytest.raises(StoreError, match="createdb no_such_db_for_staffer"):
        await PostgresStore(url).open()


async def test_schema_version_matches_sqlite(postgres_schema_url: str) -> None:
    assert SCHEMA_VERSION == SQLITE_SCHEMA_VERSION
    async with PostgresStore(postgres_schema_url):
        pass
    async with PostgresStore(postgres_schema_url):  # reopening migrates nothing
        pass
    conn = await asyncpg.connect(postgres_schema_url)
    try:
        assert await conn.fetch("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    finally:
        await conn.close()


async def test_newer_schema_is_refused(postgres_schema_url: str) -> None:
    async with PostgresStore(postgres_schema_url):
        pass
    conn = await asyncpg.connect(postgres_schema_url)
    try:
        await conn.execute("UPDATE schema_version SET version = version + 1")
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="newer Staffer"):
        await PostgresStore(postgres_schema_url).open()


async def test_tool_calls_stored_as_json_and_nul_survives(postgres_schema_url: str) -> None:
    calls = [ToolCall(id="c1", name="web", arguments='{"q":"ß\\u0000"}')]
    tricky = "nul \x00 and U+FFFF \uffff0 \uffff1 \uffff"
    async with PostgresStore(postgres_schema_url) as store:
        session = await store.create_session(title=tricky)
        run = await store.create_run(session.id)
        await store.append_messages(session.id, [Message(role="assistant", tool_calls=calls)])
        await store.append_messages(session.id, [Message(role="tool", content=tricky)])
        await store.finish_run(run.id, status="failed", usage=Usage(), error=tricky)
        record = ToolCallRecord(run.id, session.id, "c1", "t", tricky, tricky, tricky, 1.0, 2.0)
        await store.record_tool_call(record)

        assert [m.message.content for m in await store.list_messages(session.id)] == ["", tricky]
        assert (await store.get_session(session.id)).title == tricky  # type: ignore[union-attr]
        assert (await store.get_run(run.id)).error == tricky  # type: ignore[union-attr]
        assert await store.list_tool_calls(session.id) == [record]
    conn = await asyncpg.connect(postgres_schema_url)
    try:
        kind = await conn.fetchval(
            "SELECT pg_typeof(tool_calls)::text FROM messages WHERE tool_calls IS NOT NULL"
        )
        text = await conn.fetchval("SELECT tool_calls::text FROM messages WHERE seq = 1")
    finally:
        await conn.close()
    assert kind == "json"
    assert text == '[{"id":"c1","name":"web","arguments":"{\\"q\\":\\"ß\\\\u0000\\"}"}]'


async def test_two_stores_share_a_session(postgres_schema_url: str) -> None:
    # Two pools stand in for two Staffer processes appending to one conversation.
    async with (
        PostgresStore(postgres_schema_url, max_size=3) as one,
        PostgresStore(postgres_schema_url, max_size=3) as two,
    ):
        session = await one.create_session()
        results = await asyncio.gather(
            *(
                (one if i % 2 else two).append_messages(
                    session.id, [Message(role="user", content=str(i))] * 2
                )
                for i in range(40)
            )
        )
        for records in results:
            assert records[1].seq == records[0].seq + 1
        seqs = [r.seq for r in await two.list_messages(session.id)]
        assert seqs == list(range(1, 81))
        assert (await one.list_sessions())[0].id == session.id


async def test_statements_use_generic_plans_unless_the_url_says(postgres_schema_url: str) -> None:
    async def mode(url: str) -> str:
        async with PostgresStore(url, max_size=1) as store:
            return str(await store._call("reading a setting", _show_plan_cache_mode))

    assert await mode(postgres_schema_url) == "force_generic_plan"
    assert await mode(postgres_schema_url + "&plan_cache_mode=auto") == "auto"


async def _show_plan_cache_mode(conn: object) -> object:
    return await conn.fetchval("SHOW plan_cache_mode")  # type: ignore[attr-defined]
