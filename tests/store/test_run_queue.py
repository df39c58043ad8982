"""The durable-run half of the Store contract: queue, lanes, leases, journal, cancel.

Runs against SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

import pytest

from staffer.errors import LeaseLostError, StoreError
from staffer.models import Message, Usage
from staffer.store import Store
from staffer.store._base import ExecutorRecord, StepRecord

StoreFactory = Callable[[], Store]
LEASE = 30.0


def executor(name: str) -> ExecutorRecord:
    now = time.time()
    return ExecutorRecord(name, "worker", "host", os.getpid(), now, now)


async def test_enqueue_then_claim_appends_the_user_message(store: Store) -> None:
    session = await store.create_session()
    run = await store.enqueue_run(session.id, "hello", agent="main")
    assert (run.status, run.attempt, run.input) == ("queued", 0, "hello")
    assert await store.list_messages(session.id) == []  # stored when the run starts
    [claimed] = await store.claim_runs("w1", limit=10, lease_seconds=LEASE)
    assert (claimed.id, claimed.status, claimed.owner, claimed.attempt) == (
        run.id,
        "running",
        "w1",
        1,
    )
    assert claimed.lease_until is not None
    assert claimed.lease_until > time.time()
    [message] = await store.list_messages(session.id)
    assert (message.message.role, message.message.content, message.run_id) == (
        "user",
        "hello",
        run.id,
    )
    assert await store.claim_runs("w2", limit=10, lease_seconds=LEASE) == []


async def test_one_active_run_per_session(store: Store) -> None:
    a, b = await store.create_session(), await store.create_session()
    first = await store.enqueue_run(a.id, "one")
    second = await store.enqueue_run(a.id, "two")
    other = await store.enqueue_run(b.id, "other")
    claimed = await store.claim_runs("w1", limit=10, lease_seconds=LEASE)
    assert [r.id for r in claimed] == [first.id, other.id]
    assert [r.id for r in await store.queued_runs(a.id)] == [second.id]
    assert (await store.active_run(a.id)).id == first.id  # type: ignore[union-attr]
    assert await store.claim_runs("w1", limit=10, lease_seconds=LEASE) == []
    with pytest.raises(StoreError, match="already has an active run"):
        await store.create_run(a.id)
    await store.finish_run(first.id, status="done", usage=Usage(), owner="w1")
    [next_run] = await store.claim_runs("w1", limit=10, lease_seconds=LEASE)
    assert next_run.id == second.id
    texts = [m.message.content for m in await store.list_messages(a.id)]
    assert texts == ["one", "two"]


async def test_idempotency_key_returns_the_first_run(store: Store) -> None:
    session = await store.create_session()
    one = await store.enqueue_run(session.id, "x", idempotency_key="k1")
    again = await store.enqueue_run(session.id, "x", idempotency_key="k1")
    assert again.id == one.id
    assert len(await store.queued_runs(session.id)) == 1


async def test_journal_commit_and_fence(store: Store) -> None:
    session = await store.create_session()
    run = await store.enqueue_run(session.id, "go")
    await store.claim_runs("w1", limit=1, lease_seconds=LEASE)
    tool = StepRecord(run.id, 2, "tool", "started", call_id="c1", idempotency_key="k")
    await store.start_step(tool, owner="w1")
    model = StepRecord(run.id, 1, "model", "done", created_at=1.0, finished_at=2.0)
    answer = Message(role="assistant", content="hi")
    await store.commit_step(
        model, session_id=session.id, messages=[answer], usage=Usage(5, 7), owner="w1"
    )
    steps = await store.load_steps(run.id)
    assert [(s.step_no, s.kind, s.status) for s in steps] == [
        (1, "model", "done"),
        (2, "tool", "started"),
    ]
    assert steps[1].idempotency_key == "k"
    assert (await store.get_run(run.id)).usage == Usage(5, 7)  # type: ignore[union-attr]
    # Another worker takes the run over: the first can no longer write to it.
    await store.requeue_runs(dead_owners=["w1"], max_attempts=3)
    [again] = await store.claim_runs("w2", limit=1, lease_seconds=LEASE)
    assert (again.id, again.attempt, again.owner) == (run.id, 2, "w2")
    done = StepRecord(run.id, 2, "tool", "done", call_id="c1")
    result = Message(role="tool", content="ok", tool_call_id="c1", name="t")
    with pytest.raises(LeaseLostError):
        await store.commit_step(
            done, session_id=session.id, messages=[result], usage=Usage(), owner="w1"
        )
    with pytest.raises(LeaseLostError):
        await store.finish_run(run.id, status="done", usage=Usage(), owner="w1")
    assert [m.message.content for m in await store.list_messages(session.id)] == ["go", "hi"]
    await store.commit_step(
        done, session_id=session.id, messages=[result], usage=Usage(5, 7), owner="w2"
    )
    assert [s.status for s in await store.load_steps(run.id)] == ["done", "done"]


async def test_leases_expire_and_attempts_are_capped(store: Store) -> None:
    session = await store.create_session()
    run = await store.enqueue_run(session.id, "go")
    await store.claim_runs("w1", limit=1, lease_seconds=0.05)
    alive = await store.requeue_runs(dead_owners=[], max_attempts=2)
    assert alive == []  # the lease still holds
    await asyncio.sleep(0.1)
    [requeued] = await store.requeue_runs(dead_owners=[], max_attempts=2)
    assert (requeued.status, requeued.owner, requeued.attempt) == ("queued", None, 1)
    await store.claim_runs("w2", limit=1, lease_seconds=0.05)
    await asyncio.sleep(0.1)
    [failed] = await store.requeue_runs(dead_owners=[], max_attempts=2)
    assert failed.status == "failed"
    assert "gave up after 2 attempts" in (failed.error or "")
    # a resumed run does not get its user message twice
    assert [m.message.content for m in await store.list_messages(session.id)] == ["go"]
    assert run.id == failed.id


async def test_heartbeat_renews_leases_and_reports_cancels(store: Store) -> None:
    session = await store.create_session()
    run = await store.enqueue_run(session.id, "go")
    queued = await store.enqueue_run(session.id, "later")
    await store.claim_runs("w1", limit=1, lease_seconds=0.05)
    assert await store.heartbeat(executor("w1"), lease_seconds=LEASE) == []
    await asyncio.sleep(0.1)
    assert await store.requeue_runs(dead_owners=[], max_attempts=3) == []  # renewed
    assert [e.id for e in await store.list_executors()] == ["w1"]
    active, dropped = await store.request_cancel(session.id, "stop")
    assert (active, dropped) == (run.id, [queued.id])
    assert (await store.get_run(queued.id)).status == "cancelled"  # type: ignore[union-attr]
    assert await store.heartbeat(executor("w1"), lease_seconds=LEASE) == [run.id]
    # a dead owner's cancelled run ends cancelled, not requeued
    [ended] = await store.requeue_runs(dead_owners=["w1"], max_attempts=3)
    assert ended.status == "cancelled"
    assert await store.list_executors() == []


async def test_concurrent_claims_never_share_a_session(store_factory: StoreFactory) -> None:
    async with store_factory() as a, store_factory() as b:
        sessions = [await a.create_session() for _ in range(10)]
        for s in sessions:
            for i in range(3):
                await a.enqueue_run(s.id, f"m{i}")
        got = await asyncio.gather(
            a.claim_runs("wa", limit=20, lease_seconds=LEASE),
            b.claim_runs("wb", limit=20, lease_seconds=LEASE),
        )
        claimed = [r for batch in got for r in batch]
        assert sorted(r.session_id for r in claimed) == sorted(s.id for s in sessions)


async def test_a_finished_run_moves_its_session_to_the_top(store: Store) -> None:
    older = await store.create_session(title="older")
    await store.enqueue_run(older.id, "go")
    [run] = await store.claim_runs("w1", limit=1, lease_seconds=LEASE)
    newer = await store.create_session(title="newer")
    step = StepRecord(run.id, 1, "model", "done")
    answer = Message(role="assistant", content="done")
    await store.commit_step(
        step, session_id=older.id, messages=[answer], usage=Usage(1, 1), owner="w1"
    )
    await store.finish_run(run.id, status="done", usage=Usage(1, 1), owner="w1")
    assert [s.id for s in await store.list_sessions()] == [older.id, newer.id]


async def test_a_step_of_a_missing_run_or_session_is_a_clear_error(store: Store) -> None:
    session = await store.create_session()
    await store.enqueue_run(session.id, "go")
    [run] = await store.claim_runs("w1", limit=1, lease_seconds=LEASE)
    answer = Message(role="assistant", content="hi")
    with pytest.raises(StoreError, match="does not exist"):
        await store.commit_step(
            StepRecord(run.id, 1, "model", "done"),
            session_id="no-such-session",
            messages=[answer],
            usage=Usage(),
            owner="w1",
        )
    with pytest.raises(StoreError, match="does not exist"):
        await store.commit_step(
            StepRecord("no-such-run", 1, "model", "done"),
            session_id=session.id,
            messages=[answer],
            usage=Usage(),
            owner=None,
        )
    assert [m.message.content for m in await store.list_messages(session.id)] == ["go"]
