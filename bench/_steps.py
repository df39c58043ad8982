"""Part 1 of `bench.runs`: what journaling one step costs, and the disk's fsync time.

Every variant runs the same sequence of steps, one at a time, as the agent loop commits
them: odd steps are model steps (an assistant message with one tool call), even steps
are tool steps (the tool's result message and its `ToolCallRecord`). Only what happens
to a step differs:

- **in memory** (the baseline): the step's records are appended to a Python list — a
  runtime with no durability at all, with the same objects built and the same `await`;
- **messages only**: `Store.append_messages` — the step's messages in one transaction, no
  journal row (what the loop wrote per step before runs were durable);
- **durable**: `Store.commit_step(..., owner=...)` — messages, tool call record, journal
  row and usage in one transaction, fenced by the owner, exactly as the loop calls it.

Floors are timed the same way, for reading the figures: a hop to a thread and back (the
SQLite store runs every call on its own thread), one PostgreSQL round trip (``SELECT 1``)
and one autocommitted ``INSERT`` (a round trip plus a WAL flush).

Variants and the fsync probe are interleaved in rounds, so drift on a shared machine
hits them alike; each figure is the median over rounds of (round time ÷ steps). Steps
are timed as a mean within a round, so the occasional WAL checkpoint is counted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from staffer.models import Message, ToolCall, Usage
from staffer.store import StepRecord, Store, ToolCallRecord

OWNER = "bench-executor"
RESULT = "a.txt\nb.txt\nnotes/\n" * 8  # a small tool result (~150 characters)

#: One step's write: (step, its messages, its tool call record or None).
Write = Callable[[StepRecord, list[Message], ToolCallRecord | None], Awaitable[object]]


@dataclass(slots=True)
class Variant:
    """One way of writing steps, with the per-round timings it collected."""

    name: str
    write: Write
    rounds: list[float] = field(default_factory=list)  # seconds per step, one per round

    @property
    def us(self) -> float:
        return statistics.median(self.rounds) * 1e6


def fsync_probe(directory: Path, n: int) -> float:
    """Seconds per ``pwrite(512 B) + fsync`` on a file in `directory` (mean of `n`)."""
    path = directory / "fsync-probe.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        block = os.urandom(512)
        os.pwrite(fd, block, 0)
        os.fsync(fd)
        started = time.perf_counter()
        for _ in range(n):
            os.pwrite(fd, block, 0)
            os.fsync(fd)
        return (time.perf_counter() - started) / n
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


class StepWriter:
    """Builds the step sequence for one run and times a `Write` over it."""

    def __init__(self, session_id: str, run_id: str) -> None:
        self.session_id = session_id
        self.run_id = run_id
        self.step_no = 0
        self.usage = Usage()

    def next_step(self) -> tuple[StepRecord, list[Message], ToolCallRecord | None]:
        self.step_no += 1
        n = self.step_no
        call_id = f"call_{(n + 1) // 2}"
        now = time.time()
        self.usage = self.usage + Usage(input_tokens=400, output_tokens=20)
        if n % 2:  # a model step asking for one tool call
            call = ToolCall(call_id, "read_file", '{"path": "a.txt"}')
            message = Message(role="assistant", content="", tool_calls=[call])
            step = StepRecord(self.run_id, n, "model", "done", None, None, 1, now, now)
            return step, [message], None
        key = f"{self.run_id}:{call_id}"
        message = Message(role="tool", content=RESULT, tool_call_id=call_id, name="read_file")
        step = StepRecord(self.run_id, n, "tool", "done", call_id, key, 1, now, now)
        record = ToolCallRecord(
            run_id=self.run_id,
            session_id=self.session_id,
            call_id=call_id,
            name="read_file",
            arguments='{"path": "a.txt"}',
            result=RESULT,
            error=None,
            duration_ms=0.1,
            created_at=now,
        )
        return step, [message], record

    async def time(self, write: Write, n: int) -> float:
        """Seconds per step over `n` steps written one after the other."""
        started = time.perf_counter()
        for _ in range(n):
            step, messages, record = self.next_step()
            await write(step, messages, record)
        return (time.perf_counter() - started) / n


async def prepare(store: Store) -> StepWriter:
    """A session with one claimed run owned by `OWNER`, as an executor would hold it."""
    session = await store.create_session(title="bench")
    await store.enqueue_run(session.id, "read a.txt four times")
    [run] = await store.claim_runs(OWNER, limit=1, lease_seconds=3600)
    return StepWriter(session.id, run.id)


def in_memory() -> Write:
    journal: list[tuple[StepRecord, list[Message], ToolCallRecord | None]] = []

    async def write(step: StepRecord, messages: list[Message], rec: ToolCallRecord | None) -> None:
        journal.append((step, messages, rec))

    return write


def messages_only(store: Store, writer: StepWriter) -> Write:
    async def write(step: StepRecord, messages: list[Message], rec: ToolCallRecord | None) -> None:
        await store.append_messages(writer.session_id, messages, run_id=writer.run_id)

    return write


def durable(store: Store, writer: StepWriter) -> Write:
    async def write(step: StepRecord, messages: list[Message], rec: ToolCallRecord | None) -> None:
        await store.commit_step(
            step,
            session_id=writer.session_id,
            messages=messages,
            usage=writer.usage,
            owner=OWNER,
            tool_call=rec,
        )

    return write


def thread_hop(pool: ThreadPoolExecutor) -> Write:
    def nothing() -> None:
        pass

    async def write(step: StepRecord, messages: list[Message], rec: ToolCallRecord | None) -> None:
        await asyncio.get_running_loop().run_in_executor(pool, nothing)

    return write


def round_trip(conn: Any) -> Write:
    """`conn` is an asyncpg connection."""

    async def write(step: StepRecord, messages: list[Message], rec: ToolCallRecord | None) -> None:
        await conn.fetchval("SELECT 1")

    return write


async def autocommit_insert(conn: Any) -> Write:
    """`conn` is an asyncpg connection; creates the table it inserts into."""
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (step_no int, run_id text)")

    async def write(step: StepRecord, messages: list[Message], rec: ToolCallRecord | None) -> None:
        await conn.execute("INSERT INTO bench_floor VALUES ($1, $2)", step.step_no, step.run_id)

    return write


async def measure(
    variants: list[tuple[Variant, StepWriter]],
    *,
    steps: int,
    rounds: int,
    fsync_dir: Path,
    fsyncs: int,
    between: Callable[[], Awaitable[Any]] | None = None,
) -> list[float]:
    """Time every variant `rounds` times (after a warm-up round); return the fsync probe's
    seconds per fsync, one per round, measured between the variants."""
    for variant, writer in variants:  # warm-up: connections, statement caches, pages
        await writer.time(variant.write, max(20, steps // 10))
    probe: list[float] = []
    for _ in range(rounds):
        probe.append(await asyncio.to_thread(fsync_probe, fsync_dir, fsyncs))
        for variant, writer in variants:
            variant.rounds.append(await writer.time(variant.write, steps))
            if between is not None:
                await between()
    return probe
