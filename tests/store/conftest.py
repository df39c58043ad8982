"""Fixtures for the store suite: every test runs against each `Store` implementation.

`store_factory` returns a function that builds a new, unopened store over the
same backing database, so "close and reopen" tests work for every backend.

The PostgreSQL half needs a server: ``STAFFER_TEST_POSTGRES_URL`` names a database
(``make test`` starts one with scripts/postgres-test-server.sh). Each test gets a
schema of its own in it, through the URL's ``search_path``, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

from staffer.store import SQLiteStore, Store

StoreFactory = Callable[[], Store]

POSTGRES_URL_VAR = "STAFFER_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test server's URL; skips the test without one (fails in CI)."""
    url = os.environ.get(POSTGRES_URL_VAR)
    if url:
        return url
    why = (
        f"set {POSTGRES_URL_VAR} to a PostgreSQL database URL "
        "(`bash scripts/postgres-test-server.sh` starts a throwaway server and prints it)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the PostgreSQL store tests: {why}", pytrace=False)
    pytest.skip(why)


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"search_path": schema})) if q)
    return urlunsplit(parts._replace(query=query))


@pytest.fixture
async def postgres_schema_url() -> AsyncIterator[str]:
    """A URL whose search_path is a fresh, empty schema (dropped after the test)."""
    url = postgres_url()
    asyncpg = pytest.importorskip("asyncpg")
    schema = f"test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(url, schema)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "sqlite":
        path = tmp_path / "state" / "staffer.db"
        return lambda: SQLiteStore(path)
    if request.param == "postgres":
        from staffer.store import PostgresStore

        url = request.getfixturevalue("postgres_schema_url")
        return lambda: PostgresStore(url, max_size=4)
    raise NotImplementedError(request.param)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    async with store_factory() as opened:
        yield opened
