"""Compactions in every `Store`: recorded, listed, the latest found; messages never deleted."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from staffer.errors import StoreError
from staffer.models import Message
from staffer.store import Store


async def _session_with_messages(store: Store, count: int) -> tuple[str, str]:
    session = await store.create_session(title="long")
    run = await store.create_run(session.id, model="m")
    await store.append_messages(
        session.id, [Message(role="user", content=f"m{i}") for i in range(count)], run_id=run.id
    )
    return session.id, run.id


async def test_record_and_read_back(store: Store) -> None:
    session_id, run_id = await _session_with_messages(store, 6)
    assert await store.latest_compaction(session_id) is None
    assert await store.list_compactions(session_id) == []

    before = time.time()
    record = await store.record_compaction(
        session_id,
        upto_seq=4,
        summary="The user said m0 to m3.",
        run_id=run_id,
        model="openai:summarizer",
        tokens_before=900,
        tokens_after=300,
    )
    assert (record.session_id, record.run_id, record.upto_seq) == (session_id, run_id, 4)
    assert (record.summary, record.model) == ("The user said m0 to m3.", "openai:summarizer")
    assert (record.tokens_before, record.tokens_after) == (900, 300)
    assert before <= record.created_at <= time.time() + 1
    assert await store.latest_compaction(session_id) == record
    assert await store.list_compactions(session_id) == [record]


async def test_the_latest_is_the_one_reaching_furthest(store: Store) -> None:
    session_id, _ = await _session_with_messages(store, 10)
    first = await store.record_compaction(session_id, upto_seq=3, summary="one")
    second = await store.record_compaction(session_id, upto_seq=8, summary="two, with one")
    assert first.id != second.id
    assert (second.run_id, second.model, second.tokens_before) == (None, None, 0)
    assert await store.latest_compaction(session_id) == second
    assert [c.summary for c in await store.list_compactions(session_id)] == ["one", "two, with one"]

    other, _ = await _session_with_messages(store, 2)
    assert await store.latest_compaction(other) is None
    assert await store.list_compactions(other) == []


async def test_messages_stay_after_compaction(store: Store) -> None:
    session_id, _ = await _session_with_messages(store, 5)
    await store.record_compaction(session_id, upto_seq=5, summary="all of it")
    records = await store.list_messages(session_id)
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert [r.message.content for r in records] == ["m0", "m1", "m2", "m3", "m4"]


async def test_summary_text_round_trips(store: Store) -> None:
    session_id, _ = await _session_with_messages(store, 1)
    text = "nul \x00 and \uffff and ünïcode\nlines"
    await store.record_compaction(session_id, upto_seq=1, summary=text)
    latest = await store.latest_compaction(session_id)
    assert latest is not None
    assert latest.summary == text


async def test_unknown_session_or_run_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await store.record_compaction("nope", upto_seq=1, summary="x")
    session_id, _ = await _session_with_messages(store, 1)
    with pytest.raises(StoreError, match="does not exist"):
        await store.record_compaction(session_id, upto_seq=1, summary="x", run_id="nope")
    assert await store.list_compactions(session_id) == []


async def test_upto_seq_must_name_a_message(store: Store) -> None:
    session_id, _ = await _session_with_messages(store, 1)
    with pytest.raises(ValueError, match="upto_seq"):
        await store.record_compaction(session_id, upto_seq=0, summary="x")


async def test_compactions_survive_reopening(store_factory: Callable[[], Store]) -> None:
    async with store_factory() as store:
        session_id, _ = await _session_with_messages(store, 3)
        record = await store.record_compaction(session_id, upto_seq=2, summary="kept")
    async with store_factory() as store:
        assert await store.latest_compaction(session_id) == record
