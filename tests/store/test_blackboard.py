"""The team blackboard in every `Store`: versions, compare-and-set, prefixes, teams apart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from staffer.errors import StoreError, VersionConflictError
from staffer.store import BlackboardEntry, Store

StoreFactory = Callable[[], Store]


async def test_write_then_read(store: Store) -> None:
    before = time.time()
    entry = await store.blackboard_write(
        "research", "plan", "1. read the paper", written_by="scout", run_id="r1"
    )
    assert entry == BlackboardEntry(
        "research", "plan", "1. read the paper", "scout", "r1", 1, entry.updated_at
    )
    assert before <= entry.updated_at <= time.time() + 1
    assert await store.blackboard_read("research", "plan") == entry
    assert await store.blackboard_read("research", "other") is None
    assert await store.blackboard_read("ops", "plan") is None, "teams have separate boards"


async def test_every_write_bumps_the_version_and_records_the_writer(store: Store) -> None:
    first = await store.blackboard_write("t", "k", "a", written_by="scout")
    second = await store.blackboard_write("t", "k", "b", written_by="writer", run_id="r9")
    assert (second.version, second.value, second.written_by, second.run_id) == (
        2,
        "b",
        "writer",
        "r9",
    )
    assert second.updated_at > first.updated_at
    third = await store.blackboard_write("t", "k", "c", written_by="scout")
    assert third.run_id is None
    assert await store.blackboard_read("t", "k") == third


async def test_compare_and_set(store: Store) -> None:
    created = await store.blackboard_write(
        "t", "claim", "scout", written_by="scout", expected_version=0
    )
    assert created.version == 1
    with pytest.raises(VersionConflictError) as info:
        await store.blackboard_write(
            "t", "claim", "writer", written_by="writer", expected_version=0
        )
    assert info.value.current == 1
    assert "version 1" in str(info.value)
    assert "Read it again" in str(info.value)
    assert isinstance(info.value, StoreError)

    swapped = await store.blackboard_write(
        "t", "claim", "done", written_by="scout", expected_version=1
    )
    assert swapped.version == 2
    with pytest.raises(VersionConflictError, match="expected to be at version 1"):
        await store.blackboard_write("t", "claim", "late", written_by="writer", expected_version=1)
    with pytest.raises(VersionConflictError, match="does not exist") as missing:
        await store.blackboard_write("t", "nothing", "x", written_by="writer", expected_version=3)
    assert missing.value.current == 0
    # A refused write changes nothing.
    assert await store.blackboard_read("t", "claim") == swapped
    assert await store.blackboard_read("t", "nothing") is None
    with pytest.raises(ValueError, match="expected_version"):
        await store.blackboard_write("t", "claim", "x", written_by="w", expected_version=-1)


async def test_list_by_prefix_in_key_order(store: Store) -> None:
    for key in ("task/2", "note", "task/10", "task/1", "tasks"):
        await store.blackboard_write("t", key, f"value of {key}", written_by="scout")
    await store.blackboard_write("other", "task/3", "x", written_by="scout")
    assert [e.key for e in await store.blackboard_list("t")] == [
        "note",
        "task/1",
        "task/10",
        "task/2",
        "tasks",
    ]
    listed = await store.blackboard_list("t", "task/")
    assert [e.key for e in listed] == ["task/1", "task/10", "task/2"]
    assert listed[0].value == "value of task/1"
    assert await store.blackboard_list("t", "zzz") == []
    assert await store.blackboard_list("nobody") == []
    # Prefixes are literal: no LIKE wildcards.
    await store.blackboard_write("t", "50%_off", "x", written_by="scout")
    assert [e.key for e in await store.blackboard_list("t", "50%")] == ["50%_off"]
    assert await store.blackboard_list("t", "_") == []


async def test_any_text_round_trips(store: Store) -> None:
    value = "line one\nnul \x00 here \uffff and ünïcødé 🚀"
    await store.blackboard_write("t", "odd\x00key", value, written_by="scout")
    entry = await store.blackboard_read("t", "odd\x00key")
    assert entry is not None
    assert entry.value == value
    assert [e.key for e in await store.blackboard_list("t", "odd\x00")] == ["odd\x00key"]


async def test_survives_reopening(store_factory: StoreFactory) -> None:
    async with store_factory() as store:
        await store.blackboard_write("t", "k", "kept", written_by="scout")
    async with store_factory() as store:
        entry = await store.blackboard_read("t", "k")
    assert entry is not None
    assert (entry.value, entry.version) == ("kept", 1)


async def test_racing_compare_and_set_has_exactly_one_winner(store_factory: StoreFactory) -> None:
    # Two stores over one database: two processes' worth of connections.
    async with store_factory() as one, store_factory() as two:
        await one.blackboard_write("t", "lock", "free", written_by="setup")
        for round_ in range(10):
            current = await one.blackboard_read("t", "lock")
            assert current is not None
            results = await asyncio.gather(
                *(
                    s.blackboard_write(
                        "t",
                        "lock",
                        f"{who} {round_}",
                        written_by=who,
                        expected_version=current.version,
                    )
                    for s, who in ((one, "a"), (two, "b"), (one, "c"), (two, "d"))
                ),
                return_exceptions=True,
            )
            winners = [r for r in results if isinstance(r, BlackboardEntry)]
            losers = [r for r in results if isinstance(r, VersionConflictError)]
            assert len(winners) == 1, results
            assert len(losers) == 3, results
            assert winners[0].version == current.version + 1
            assert await two.blackboard_read("t", "lock") == winners[0]
        # Racing creations: only one writer creates the key.
        created = await asyncio.gather(
            *(
                s.blackboard_write("t", "new", who, written_by=who, expected_version=0)
                for s, who in ((one, "a"), (two, "b"))
            ),
            return_exceptions=True,
        )
        assert sum(isinstance(r, BlackboardEntry) for r in created) == 1, created


async def test_plain_writes_never_lose_a_version(store_factory: StoreFactory) -> None:
    async with store_factory() as one, store_factory() as two:
        await asyncio.gather(
            *(
                s.blackboard_write("t", "count", str(i), written_by="w")
                for i in range(20)
                for s in (one, two)
            )
        )
        entry = await one.blackboard_read("t", "count")
    assert entry is not None
    assert entry.version == 40
