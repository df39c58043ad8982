"""The behaviour every `Store` implementation must have (see conftest.py for backends)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from staffer.errors import StoreError
from staffer.models import Message, ToolCall, Usage
from staffer.store import Store, ToolCallRecord

StoreFactory = Callable[[], Store]

# --- sessions ---------------------------------------------------------------


async def test_create_and_get_session(store: Store) -> None:
    before = time.time()
    created = await store.create_session(title="Taxes", agent="accountant")
    assert created.title == "Taxes"
    assert created.agent == "accountant"
    assert before <= created.created_at == created.updated_at <= time.time() + 1
    assert created.id.isalnum()
    assert await store.get_session(created.id) == created


async def test_session_defaults_and_unique_ids(store: Store) -> None:
    sessions = [await store.create_session() for _ in range(20)]
    assert {s.title for s in sessions} == {""}
    assert {s.agent for s in sessions} == {"main"}
    assert len({s.id for s in sessions}) == 20


async def test_missing_session_is_none(store: Store) -> None:
    assert await store.get_session("nope") is None
    assert await store.list_messages("nope") == []
    assert await store.list_runs("nope") == []
    assert await store.list_tool_calls("nope") == []


async def test_rename_session(store: Store) -> None:
    session = await store.create_session(title="old")
    await store.rename_session(session.id, "new — ünïcode ✓")
    renamed = await store.get_session(session.id)
    assert renamed is not None
    assert renamed.title == "new — ünïcode ✓"


async def test_rename_missing_session_fails(store: Store) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await store.rename_session("nope", "x")


async def test_list_sessions_most_recently_updated_first(store: Store) -> None:
    a = await store.create_session(title="a")
    b = await store.create_session(title="b")
    c = await store.create_session(title="c")
    assert [s.title for s in await store.list_sessions()] == ["c", "b", "a"]

    await store.append_messages(a.id, [Message(role="user", content="hi")])
    listed = await store.list_sessions()
    assert [s.title for s in listed] == ["a", "c", "b"]
    assert listed[0].updated_at > a.updated_at
    assert listed[0].created_at == a.created_at

    assert [s.id for s in await store.list_sessions(limit=2)] == [a.id, c.id]
    assert b.id not in [s.id for s in await store.list_sessions(limit=2)]


# --- messages ---------------------------------------------------------------


def conversation() -> list[Message]:
    return [
        Message(role="system", content="You are helpful."),
        Message(role="user", content="Wie spät ist es in 東京? 🕰️"),
        Message(
            role="assistant",
            content="",
            tool_calls=[
                ToolCall(id="call_1", name="clock", arguments='{"tz": "Asia/Tokyo"}'),
                ToolCall(id="call_2", name="weather", arguments='{"city":"東京","n":[1,2]}'),
                ToolCall(id="call_3", name="noop", arguments=""),
            ],
        ),
        Message(role="tool", content="21:04", tool_call_id="call_1", name="clock"),
        Message(
            role="tool",
            content="error: upstream 503\n\ttrace…",
            tool_call_id="call_2",
            name="weather",
            is_error=True,
        ),
        Message(role="tool", content="", tool_call_id="call_3", name="noop"),
        Message(role="assistant", content="Es ist 21:04 — \x00 nul and 'quotes' \"too\"."),
    ]


async def test_messages_round_trip_exactly(store: Store) -> None:
    session = await store.create_session()
    messages = conversation()
    records = await store.append_messages(session.id, messages)
    assert [r.seq for r in records] == list(range(1, len(messages) + 1))
    assert [r.message for r in records] == messages

    listed = await store.list_messages(session.id)
    assert listed == records
    assert [r.message for r in listed] == messages
    assert all(r.session_id == session.id and r.run_id is None for r in listed)


async def test_seq_continues_across_appends(store: Store) -> None:
    session = await store.create_session()
    other = await store.create_session()
    first = await store.append_messages(session.id, [Message(role="user", content="1")])
    await store.append_messages(other.id, [Message(role="user", content="elsewhere")])
    second = await store.append_messages(
        session.id,
        [Message(role="assistant", content="2"), Message(role="user", content="3")],
    )
    assert await store.append_messages(session.id, []) == []
    third = await store.append_messages(session.id, [Message(role="assistant", content="4")])
    assert [r.seq for r in first + second + third] == [1, 2, 3, 4]
    listed = await store.list_messages(session.id)
    assert [(r.seq, r.message.content) for r in listed] == [(1, "1"), (2, "2"), (3, "3"), (4, "4")]
    assert [r.seq for r in await store.list_messages(other.id)] == [1]


async def test_messages_linked_to_run(store: Store) -> None:
    session = await store.create_session()
    run = await store.create_run(session.id)
    records = await store.append_messages(
        session.id, [Message(role="assistant", content="ok")], run_id=run.id
    )
    assert records[0].run_id == run.id
    assert (await store.list_messages(session.id))[0].run_id == run.id


async def test_append_to_missing_session_fails(store: Store) -> None:
    with pytest.raises(StoreError, match="nope"):
        await store.append_messages("nope", [Message(role="user", content="hi")])


async def test_failed_append_writes_nothing(store: Store) -> None:
    session = await store.create_session()
    with pytest.raises(StoreError, match="no-such-run"):
        await store.append_messages(
            session.id, [Message(role="user", content="hi")], run_id="no-such-run"
        )
    assert await store.list_messages(session.id) == []
    ok = await store.append_messages(session.id, [Message(role="user", content="hi")])
    assert ok[0].seq == 1


async def test_concurrent_appends_keep_seq_unique_and_gap_free(store: Store) -> None:
    session = await store.create_session()

    async def append(i: int) -> list[int]:
        batch = [Message(role="user", content=f"{i}-{j}") for j in range(i % 3 + 1)]
        return [r.seq for r in await store.append_messages(session.id, batch)]

    results = await asyncio.gather(*(append(i) for i in range(100)))
    total = sum(i % 3 + 1 for i in range(100))
    for seqs in results:  # each batch got consecutive numbers
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    all_seqs = sorted(s for seqs in results for s in seqs)
    assert all_seqs == list(range(1, total + 1))
    listed = await store.list_messages(session.id)
    assert [r.seq for r in listed] == all_seqs


# --- runs -------------------------------------------------------------------


async def test_run_lifecycle(store: Store) -> None:
    session = await store.create_session()
    run = await store.create_run(session.id, model="openai:gpt-4o-mini")
    assert run.status == "running"
    assert run.usage == Usage()
    assert run.finished_at is None
    assert run.error is None
    assert run.model == "openai:gpt-4o-mini"
    assert await store.get_run(run.id) == run

    usage = Usage(input_tokens=1200, output_tokens=345, cached_input_tokens=1024)
    await store.finish_run(run.id, status="done", usage=usage)
    done = await store.get_run(run.id)
    assert done is not None
    assert done.status == "done"
    assert done.usage == usage
    assert done.finished_at is not None
    assert done.finished_at >= run.created_at
    assert done.error is None
    assert (done.id, done.session_id, done.created_at, done.model) == (
        run.id,
        session.id,
        run.created_at,
        run.model,
    )


async def test_failed_run_keeps_error(store: Store) -> None:
    session = await store.create_session()
    run = await store.create_run(session.id)
    assert run.model is None
    await store.finish_run(run.id, status="failed", usage=Usage(3, 0, 0), error="boom: 💥")
    failed = await store.get_run(run.id)
    assert failed is not None
    assert (failed.status, failed.error, failed.usage) == ("failed", "boom: 💥", Usage(3, 0, 0))


async def test_list_runs_oldest_first(store: Store) -> None:
    session = await store.create_session()
    other = await store.create_session()
    runs = []
    for _ in range(5):
        runs.append(await store.create_run(session.id))
        await store.finish_run(runs[-1].id, status="done", usage=Usage())
    await store.create_run(other.id)
    assert [r.id for r in await store.list_runs(session.id)] == [r.id for r in runs]
    assert len({r.id for r in runs}) == 5


async def test_run_errors(store: Store) -> None:
    assert await store.get_run("nope") is None
    with pytest.raises(StoreError, match="no-such-session"):
        await store.create_run("no-such-session")
    with pytest.raises(StoreError, match="does not exist"):
        await store.finish_run("nope", status="done", usage=Usage())


# --- tool calls -------------------------------------------------------------


async def test_tool_call_records(store: Store) -> None:
    session = await store.create_session()
    run = await store.create_run(session.id)
    now = time.time()
    records = [
        ToolCallRecord(
            run.id, session.id, "call_1", "clock", '{"tz":"UTC"}', "21:04", None, 1.5, now
        ),
        ToolCallRecord(
            run.id, session.id, "call_2", "shell", '{"cmd":"ls"}', None, "exit 2", 12.25, now + 1
        ),
        ToolCallRecord(run.id, session.id, "call_3", "ünï", "", "", None, 0.0, now + 2),
    ]
    for record in records:
        await store.record_tool_call(record)
    assert await store.list_tool_calls(session.id) == records


async def test_tool_call_for_missing_run_fails(store: Store) -> None:
    session = await store.create_session()
    record = ToolCallRecord("nope", session.id, "c", "t", "{}", None, None, 0.0, time.time())
    with pytest.raises(StoreError, match="'nope'"):
        await store.record_tool_call(record)
    assert await store.list_tool_calls(session.id) == []


# --- durability and lifecycle -----------------------------------------------


async def test_data_survives_reopen(store_factory: StoreFactory) -> None:
    async with store_factory() as first:
        session = await first.create_session(title="keep me")
        run = await first.create_run(session.id, model="m")
        messages = await first.append_messages(session.id, conversation(), run_id=run.id)
        await first.finish_run(run.id, status="done", usage=Usage(10, 5, 2))
        call = ToolCallRecord(run.id, session.id, "call_1", "clock", "{}", "ok", None, 2.0, 1.0)
        await first.record_tool_call(call)
        finished = await first.get_run(run.id)
        touched = await first.get_session(session.id)

    async with store_factory() as second:
        assert await second.get_session(session.id) == touched
        assert await second.list_messages(session.id) == messages
        assert await second.get_run(run.id) == finished
        assert await second.list_tool_calls(session.id) == [call]
        more = await second.append_messages(session.id, [Message(role="user", content="again")])
        assert more[0].seq == len(messages) + 1


async def test_closed_store_refuses_work(store_factory: StoreFactory) -> None:
    store = store_factory()
    with pytest.raises(StoreError, match="not open"):
        await store.create_session()
    await store.open()
    await store.open()  # idempotent
    await store.create_session()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreError, match="not open"):
        await store.list_sessions()


async def test_event_loop_not_blocked(store: Store) -> None:
    session = await store.create_session()
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    writes = [
        store.append_messages(session.id, [Message(role="user", content="x" * 2000)] * 3)
        for _ in range(200)
    ]
    await asyncio.gather(*writes)
    stop.set()
    await task
    assert len(await store.list_messages(session.id)) == 600
    # Blocking calls would run all 200 writes back to back in one pass of the loop, with
    # no tick in between; off-loop writes leave the loop free to tick all along. Counting
    # ticks (not timing them) keeps this true on a loaded machine.
    assert len(gaps) >= 20, f"the loop ticked only {len(gaps)} times during 200 writes"
    assert max(gaps) < 1.0, f"event loop stalled for {max(gaps) * 1000:.1f} ms"


async def test_close_lets_queued_calls_finish(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open()
    session = await store.create_session()
    pending = [
        asyncio.ensure_future(store.append_messages(session.id, [Message(role="user")]))
        for _ in range(20)
    ]
    await asyncio.sleep(0)  # let them reach the store before it closes
    await store.close()
    assert [r[0].seq for r in await asyncio.gather(*pending)] == list(range(1, 21))
    async with store_factory() as reopened:
        assert len(await reopened.list_messages(session.id)) == 20
