"""Fixtures for the store suite: every test runs against each `Store` implementation.

`store_factory` returns a function that builds a new, unopened store over the
same backing database, so "close and reopen" tests work for every backend. A
PostgreSQL implementation joins by adding a param and a branch below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from staffer.store import SQLiteStore, Store

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "sqlite":
        path = tmp_path / "state" / "staffer.db"
        return lambda: SQLiteStore(path)
    raise NotImplementedError(request.param)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    async with store_factory() as opened:
        yield opened
