"""Fixtures for the store suite: every test runs against each `Store` implementation.

`store_factory` returns a function that builds a new, unopened store over the
same backing database, so "close and reopen" tests work for every backend.

The PostgreSQL half needs a server: ``STAFFER_TEST_POSTGRES_URL`` names a database
(``make test`` starts one with scripts/postgres-test-server.sh). Each test gets a
schema of its own in it, through the URL's ``search_path``, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from tests.conftest import postgres_schema_url, postgres_url  # noqa: F401  (fixture)

from staffer.store import SQLiteStore, Store

StoreFactory = Callable[[], Store]


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
