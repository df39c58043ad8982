"""Durable runs: what journaling a step costs, and 200 sessions at once (issue 4).

Part 1, step overhead: the agent loop's per-step write (`Store.commit_step`) on SQLite and
PostgreSQL against an in-memory baseline in the same run, next to the disk's measured
fsync time (``pwrite`` 512 B + ``fsync`` on the same disk), the physical floor of a
durable commit. See `bench._steps` for what each variant does. It runs on uvloop, as
`staffer start` does, pinned to core 0.

Part 2, load: 200 sessions each send one message whose task is 5 model calls with 50 ms
to the first token (4 ask for a `read_file`, the last answers: 9 journaled steps), all
queued at once; SQLite with one process, PostgreSQL with two worker processes. See
`bench._load`.

PostgreSQL is a throwaway server this benchmark starts with the default, durable settings
(``fsync=on``, ``synchronous_commit=on``) on the same disk; ``--postgres-url`` uses another.

    python -m bench.runs [--quick] [--steps 1000] [--rounds 5] [--sessions 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench import _steps as steps
from bench._harness import ROOT, pin_to
from bench._load import LoadResult, model_server, run_load, write_task_files
from bench._postgres import Server, durable_postgres, existing_postgres, sql
from bench._runs_report import TARGET_FSYNCS, report
from staffer.config import Home, init_home
from staffer.store import PostgresStore, SQLiteStore, Store

SQLITE_MODES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


@contextmanager
def postgres(args: argparse.Namespace, parent: Path) -> Iterator[Server | None]:
    if args.no_postgres:
        yield None
        return
    if args.postgres_url:
        with existing_postgres(args.postgres_url) as given:
            yield given
        return
    with ExitStack() as stack:
        try:
            server: Server | None = stack.enter_context(durable_postgres(parent))
        except RuntimeError as exc:
            print(f"PostgreSQL skipped: {exc}", flush=True)
            server = None
        yield server


# --- part 1 --------------------------------------------------------------------------


async def sqlite_store(path: Path, synchronous: str | None) -> tuple[Store, str]:
    """An open SQLiteStore (`synchronous` overrides what it configured) and its pragmas."""
    store = SQLiteStore(path)
    await store.open()

    def pragma(conn: Any) -> str:
        if synchronous is not None:
            conn.execute(f"PRAGMA synchronous = {synchronous}")
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        (sync,) = conn.execute("PRAGMA synchronous").fetchone()
        return f"journal_mode={mode}, synchronous={SQLITE_MODES.get(sync, sync)}"

    # The store has no setting for this; its connection may only be used on its thread.
    return store, await store._call("reading pragmas", pragma)


async def wal_syncs(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT wal_sync FROM pg_stat_wal"))
    finally:
        await conn.close()


async def open_backends(
    stack: AsyncExitStack, root: Path, pg: Server | None
) -> tuple[list[dict[str, Any]], list[steps.Variant], str | None]:
    """The stores to measure (closed by `stack`), the floors, and the PostgreSQL URL."""
    backends: list[dict[str, Any]] = []
    pool = stack.enter_context(ThreadPoolExecutor(1))
    floors = [steps.Variant("thread hop", steps.thread_hop(pool))]
    for label, sync in (("NORMAL (as shipped)", None), ("FULL", "FULL")):
        store, settings = await sqlite_store(root / f"steps-{sync or 'default'}.db", sync)
        stack.push_async_callback(store.close)
        backends.append(
            {"name": f"SQLite, synchronous={label}", "settings": settings, "store": store}
        )
    if pg is None:
        return backends, floors, None
    import asyncpg

    url = await asyncio.to_thread(pg.database, "steps")
    shown = await asyncio.to_thread(
        pg.settings, "server_version", "fsync", "synchronous_commit", "wal_sync_method"
    )
    version = shown.pop("server_version").split()[0]
    # Query parameters of the URL become the connection's settings.
    for label, query in (("", ""), (", synchronous_commit=off", "?synchronous_commit=off")):
        store = PostgresStore(url + query)
        await store.open()
        stack.push_async_callback(store.close)
        settings = ", ".join(f"{k}={v}" for k, v in shown.items())
        if query:
            mode = await asyncio.to_thread(sql, url + query, "SHOW synchronous_commit")
            settings = f"the same server; this store's connections: synchronous_commit={mode}"
        backends.append(
            {
                "name": f"PostgreSQL {version}{label}",
                "settings": settings,
                "store": store,
                "syncs_wal": not query,
            }
        )
    conn = await asyncpg.connect(url)
    stack.push_async_callback(conn.close)
    floors.append(steps.Variant("PostgreSQL round trip", steps.round_trip(conn)))
    insert = await steps.autocommit_insert(conn)
    floors.append(steps.Variant("PostgreSQL autocommit INSERT", insert))
    return backends, floors, url


async def step_overhead(args: argparse.Namespace, root: Path, pg: Server | None) -> dict[str, Any]:
    baseline = steps.Variant("in memory", steps.in_memory())
    variants = [(baseline, steps.StepWriter("session", "run"))]
    async with AsyncExitStack() as stack:
        backends, floors, pg_url = await open_backends(stack, root, pg)
        variants += [(floor, steps.StepWriter("session", "run")) for floor in floors]
        for b in backends:
            plain, journaled = await steps.prepare(b["store"]), await steps.prepare(b["store"])
            b["plain"] = steps.Variant("messages only", steps.messages_only(b["store"], plain))
            b["durable"] = steps.Variant("commit_step", steps.durable(b["store"], journaled))
            b["writers"] = (plain, journaled)
            variants += [(b["plain"], plain), (b["durable"], journaled)]
        # What commits with synchronous_commit=on, for the WAL syncs per commit.
        synced = [w for v, w in variants if v.name == "PostgreSQL autocommit INSERT"]
        synced += [w for b in backends if b.get("syncs_wal") for w in b["writers"]]
        syncs_before = await wal_syncs(pg_url) if pg_url else 0
        probe = await steps.measure(
            variants, steps=args.steps, rounds=args.rounds, fsync_dir=root, fsyncs=args.fsyncs
        )
    if pg_url:  # a backend reports its WAL statistics at most once a second, and on exit
        await asyncio.sleep(1.5)
        syncs = (await wal_syncs(pg_url) - syncs_before) / sum(w.step_no for w in synced)
        for b in backends:
            if b.get("syncs_wal"):
                b["settings"] += f"; WAL syncs per commit (pg_stat_wal): {syncs:.2f}"
    fsync_us = sorted(probe)[len(probe) // 2] * 1e6
    rows = []
    for b in backends:
        durable_us, plain_us = b["durable"].us, b["plain"].us
        overhead = durable_us - baseline.us
        rows.append(
            {
                "backend": b["name"],
                "settings": b["settings"],
                "messages_only_us": plain_us,
                "durable_us": durable_us,
                "overhead_us": overhead,
                "fsyncs_worth": overhead / fsync_us,
                "journal_us": durable_us - plain_us,
                "met": overhead <= TARGET_FSYNCS * fsync_us,
            }
        )
    return {
        "fsync_us": fsync_us,
        "fsync_rounds_us": [p * 1e6 for p in probe],
        "baseline_us": baseline.us,
        "floors_us": {floor.name: floor.us for floor in floors},
        "rows": rows,
    }


def run_part1(args: argparse.Namespace, root: Path, pg: Server | None) -> dict[str, Any]:
    pin_to(0)
    try:
        import uvloop

        return uvloop.run(step_overhead(args, root, pg))
    except ImportError:  # pragma: no cover
        return asyncio.run(step_overhead(args, root, pg))
    finally:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, range(os.cpu_count() or 1))


# --- part 2 --------------------------------------------------------------------------


def load(args: argparse.Namespace, root: Path, pg: Server | None) -> list[LoadResult]:
    home = Home(root / "home")
    init_home(home)
    write_task_files(home.workspace)
    n = args.sessions
    results = []
    print(f"load: SQLite, 1 process, {n} sessions …", flush=True)
    with model_server(root, cpu=1) as (url, model):  # the executing process has core 0
        results.append(
            run_load(
                "SQLite",
                f"sqlite:{root / 'load.db'}",
                home=home.root,
                model_url=url,
                sessions=n,
                processes=1,
                max_concurrent=args.max_concurrent or n,
                cpus=[0],
                watched={"model server": lambda: [model.ps]},
            )
        )
    if pg is not None:
        workers = args.workers
        print(f"load: PostgreSQL, {workers} workers, {n} sessions …", flush=True)
        url_db = pg.database("load")
        pg_watch = {"PostgreSQL": pg.processes} if pg.data is not None else {}
        with model_server(root, cpu=None) as (url, model):  # workers: one per core
            results.append(
                run_load(
                    "PostgreSQL",
                    url_db,
                    home=home.root,
                    model_url=url,
                    sessions=n,
                    processes=workers,
                    max_concurrent=args.max_concurrent or -(-n // workers),
                    cpus=list(range(workers)),
                    watched={"model server": lambda: [model.ps], **pg_watch},
                )
            )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run with tiny sizes")
    parser.add_argument("--steps", type=int, default=1000, help="steps per round and variant")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fsyncs", type=int, default=500, help="fsyncs per round")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="worker processes on PostgreSQL")
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=0,
        help="runs per process (default: all sessions fit at once)",
    )
    parser.add_argument("--postgres-url", default="", help="use this server instead")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "runs.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.fsyncs, args.sessions = 100, 2, 100, 20
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:  # on the same disk
        root = Path(tmp)
        root.chmod(0o755)  # PostgreSQL's data directory goes in here
        with postgres(args, root) as pg:
            print("step overhead …", flush=True)
            part1 = run_part1(args, root, pg)
            loads = load(args, root, pg)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    dump = {"config": vars(args), "steps": part1, "loads": [r.as_dict() for r in loads]}
    args.json.write_text(json.dumps(dump, indent=2, default=str), encoding="utf-8")
    print(report(args, part1, loads))


if __name__ == "__main__":
    main()
