"""Part 2 of `bench.runs`: many sessions at once, each running one 5-step task.

Each session sends one message. Its task is five model calls, each 50 ms to the first
token (the scripted server's ``ttft_ms``): the first four ask for one `read_file` call
each (a different small file), the fifth answers. That is 9 journaled steps per run
(5 model steps, 4 tool steps) and at least 250 ms of model latency.

The runs are queued all at once and executed by `bench._worker` processes: on SQLite one
process that also queues them (as `staffer start` does), on PostgreSQL several workers
woken by the queueing process over NOTIFY (as `staffer gateway` + `staffer worker`).
Everything is read back from the store afterwards: a run's queueing delay is from its
``created_at`` (queued) to the ``created_at`` of its user message, which `claim_runs`
writes in the claiming transaction; end to end is from queued to ``finished_at``.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil

from bench._harness import percentile
from bench._worker import TASK, open_store
from staffer.store import MessageRecord, PostgresStore, RunRecord

MODEL_LATENCY_MS = 50
TOOL_CALLS = 4  # then the answer: 5 model calls, 9 journaled steps
STEPS_PER_RUN = 2 * TOOL_CALLS + 1


def scenario() -> dict[str, Any]:
    calls = [
        {"tool_calls": [{"name": "read_file", "arguments": {"path": f"f{i}.txt"}}]}
        for i in range(1, TOOL_CALLS + 1)
    ]
    answer = {"text": "The four files say one, two, three and four."}
    return {"ttft_ms": MODEL_LATENCY_MS, "scripts": [{"match": "", "steps": [*calls, answer]}]}


def write_task_files(workspace: Path) -> None:
    for i in range(1, TOOL_CALLS + 1):
        (workspace / f"f{i}.txt").write_text(f"file {i}\n", encoding="utf-8")


def taskset(cpu: int | None) -> list[str]:
    if cpu is None or not hasattr(os, "sched_setaffinity") or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", str(cpu % (os.cpu_count() or 1))]


class Child:
    """A subprocess speaking JSON lines on stdin/stdout; stderr goes to a temp file."""

    def __init__(self, command: list[str], *, cpu: int | None = None) -> None:
        # A file, not a pipe: nobody reads stderr until something went wrong.
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            [*taskset(cpu), *command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.ps = psutil.Process(self.proc.pid)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")

    def read(self, timeout: float, what: str) -> dict[str, Any]:
        """The next JSON line (other output, e.g. a profiler's, is skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"{what}: no answer within {timeout:g} s{self._tail()}"
                ) from None
            if not line:
                raise RuntimeError(f"{what}: the process exited ({self.proc.wait()}){self._tail()}")
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                return message

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def _tail(self) -> str:
        self.log.seek(0)
        tail = self.log.read()[-2000:].decode(errors="replace").strip()
        return f"; its output:\n{tail}" if tail else ""


@contextmanager
def model_server(directory: Path, *, cpu: int | None) -> Iterator[tuple[str, Child]]:
    path = directory / "scenario.json"
    path.write_text(json.dumps(scenario()), encoding="utf-8")
    child = Child([sys.executable, "-m", "bench._scripted", str(path)], cpu=cpu)
    try:
        yield child.read(30, "the scripted model server")["url"], child
    finally:
        child.close()


class RssSampler:
    """Samples the resident memory of some processes every 20 ms, on a thread."""

    def __init__(self, procs: Iterable[psutil.Process]) -> None:
        self.procs = list(procs)
        self.peak = [0] * len(self.procs)
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        rss = [p.memory_info().rss for p in self.procs]
        self.peak = [max(a, b) for a, b in zip(self.peak, rss, strict=True)]
        self.peak_total = max(self.peak_total, sum(rss))

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self._sample()
            except psutil.Error:
                return


def cpu_by_pid(procs: Iterable[psutil.Process]) -> dict[int, float]:
    seconds: dict[int, float] = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        seconds[proc.pid] = times.user + times.system
    return seconds


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU-seconds between two readings; a process that appeared meanwhile counts whole."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


#: Processes whose CPU time is reported by name; listed again at each reading, since
#: PostgreSQL forks a backend for every new pooled connection.
Watched = dict[str, Callable[[], list[psutil.Process]]]


@dataclass(slots=True)
class LoadResult:
    backend: str
    processes: int
    max_concurrent: int
    runs: int = 0
    failed: int = 0
    tool_errors: int = 0  # tool results that are errors (there should be none)
    steps: int = 0
    elapsed: float = 0.0  # first queued -> last finished, seconds
    queue_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)
    rss_idle_mb: float = 0.0  # the executing processes together, ready and idle
    rss_peak_mb: float = 0.0  # the executing processes together, at the peak
    rss_peak_each_mb: float = 0.0  # the largest single executing process
    cpu: dict[str, float] = field(default_factory=dict)  # CPU-seconds by component

    def q(self, values: list[float], p: float) -> float:
        return percentile(values, p)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


async def create_sessions(spec: str, n: int) -> list[str]:
    async with open_store(spec) as store:
        return [(await store.create_session(title=f"s{i}")).id for i in range(n)]


async def enqueue_and_wait(dsn: str, sessions: list[str]) -> None:
    """What `staffer gateway` does with a message (queue, then NOTIFY wake), for every
    session at once; returns when each run's ``run_finished`` event has come back."""
    from staffer.runs._runtime import PgBridge

    done = asyncio.Event()
    finished = 0

    def on_event(session_id: str, run_id: str, event: dict[str, Any]) -> None:
        nonlocal finished
        if event.get("type") == "run_finished":
            finished += 1
            if finished == len(sessions):
                done.set()

    async with PostgresStore(dsn) as store:
        bridge = PgBridge(dsn, "bench-gateway", on_event=on_event)
        await bridge.start()
        try:

            async def enqueue(session_id: str) -> None:
                await store.enqueue_run(session_id, TASK, agent="main")
                bridge.control("wake", {})

            await asyncio.gather(*(enqueue(s) for s in sessions))
            await done.wait()
        finally:
            await bridge.aclose()


async def collect(spec: str, sessions: list[str], result: LoadResult) -> None:
    """Queueing delay, end to end, steps and failures of every run, from the store."""
    async with open_store(spec) as store:

        async def one(session_id: str) -> tuple[RunRecord, list[MessageRecord], int]:
            [run] = await store.list_runs(session_id)
            records = await store.list_messages(session_id)
            return run, records, len(await store.load_steps(run.id))

        rows = await asyncio.gather(*(one(s) for s in sessions))
    queued = min(run.created_at for run, _, _ in rows)
    ended = max(run.finished_at or run.created_at for run, _, _ in rows)
    result.runs = len(rows)
    result.elapsed = ended - queued
    for run, records, steps in rows:
        result.steps += steps
        result.tool_errors += sum(r.message.role == "tool" and r.message.is_error for r in records)
        first = records[0]  # the user message, written by the claiming transaction
        if run.status != "done" or run.finished_at is None:
            result.failed += 1
            continue
        result.queue_ms.append((first.created_at - run.created_at) * 1000)
        result.e2e_ms.append((run.finished_at - run.created_at) * 1000)


def run_load(
    backend: str,
    spec: str,
    *,
    home: Path,
    model_url: str,
    sessions: int,
    processes: int,
    max_concurrent: int,
    cpus: list[int | None],
    watched: Watched,
    timeout: float = 180.0,
) -> LoadResult:
    """Queue one run per session at once and execute them; the CPU time of the `watched`
    processes (the model server, the database) is reported alongside theirs."""
    result = LoadResult(backend, processes, max_concurrent)
    ids = asyncio.run(create_sessions(spec, sessions))
    command = [sys.executable, "-m", "bench._worker", "--store", spec, "--model-url", model_url]
    command += ["--home", str(home), "--max-concurrent", str(max_concurrent)]
    with ExitStack() as stack:
        workers = []
        for i in range(processes):
            worker = Child(command, cpu=cpus[i % len(cpus)])
            stack.callback(worker.close)
            workers.append(worker)
        for worker in workers:
            worker.read(60, "a worker starting")
        procs = [w.ps for w in workers]
        time.sleep(0.3)  # let start-up settle before the idle reading
        result.rss_idle_mb = sum(p.memory_info().rss for p in procs) / 2**20
        watched = {"executing": lambda: procs, **watched}
        before = {name: cpu_by_pid(list_procs()) for name, list_procs in watched.items()}
        with RssSampler(procs) as rss:
            if spec.startswith("sqlite:"):
                workers[0].send({"enqueue": ids})
                workers[0].read(timeout, "waiting for the runs to finish")
            else:
                asyncio.run(asyncio.wait_for(enqueue_and_wait(spec, ids), timeout))
        result.cpu = {
            name: cpu_used(before[name], cpu_by_pid(list_procs()))
            for name, list_procs in watched.items()
        }
        result.rss_peak_mb = rss.peak_total / 2**20
        result.rss_peak_each_mb = max(rss.peak) / 2**20
        for worker in workers:
            worker.send({"stop": True})
            worker.read(30, "a worker stopping")
    asyncio.run(collect(spec, ids, result))
    return result
