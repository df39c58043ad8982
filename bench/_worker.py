"""One executing process of `bench.runs`'s load test: an agent and an `Executor` on a store.

    python -m bench._worker --store STORE --model-url URL --home DIR [options]

`STORE` is ``sqlite:PATH`` or a ``postgresql://`` URL. The agent is ``main`` with the OpenAI
adapter of a ``[model]`` section, the built-in tools and the default agent settings; the
executor has the default settings but `--max-concurrent` and `--poll-every`. On PostgreSQL
the process talks to the others like `staffer worker`: a `PgBridge` sends its run events
out and wakes the executor on a gateway's ``wake``.

It speaks JSON lines: it prints ``{"ready": ...}`` once claiming, then reads commands on
stdin — ``{"enqueue": [session ids]}`` (queue one message per session here and wake the
executor, as the single-process gateway does; it answers ``{"finished": n}`` once that
many runs have ended), or ``{"stop": true}`` (or end of input): it shuts down (runs in
flight go back to the queue) and prints ``{"stopped": executor id}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from staffer.agent import Agent
from staffer.config import AgentConfig, Home, ModelConfig
from staffer.models import build_model
from staffer.runs import Executor
from staffer.store import PostgresStore, SQLiteStore, Store
from staffer.tools import builtin_tools

TASK = "read the four files"


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def open_store(spec: str) -> Store:
    """``sqlite:PATH`` or a PostgreSQL URL, unopened."""
    if spec.startswith("sqlite:"):
        return SQLiteStore(spec.removeprefix("sqlite:"))
    return PostgresStore(spec)


async def serve(args: argparse.Namespace) -> None:
    store = open_store(args.store)
    await store.open()
    model = build_model(ModelConfig(name="openai:scripted", base_url=args.model_url), env={})
    config = AgentConfig()
    workspace = Home(Path(args.home)).workspace
    agent = Agent(
        model=model,
        tools=builtin_tools(workspace),
        store=store,
        workspace=workspace,
        config=config,
        max_tokens=ModelConfig().max_tokens,
    )
    finished = 0
    target: int | None = None

    def count(session_id: str, run_id: str, event: dict[str, Any]) -> None:
        nonlocal finished
        if event.get("type") == "run_finished":
            finished += 1
            if finished == target:
                send({"finished": finished})

    bridge: Any = None
    publish: Any = count
    if isinstance(store, PostgresStore):
        from staffer.runs._runtime import PgBridge, control_handler

        bridge = PgBridge(store.dsn, "")
        publish = bridge.publish
    executor = Executor(
        store,
        {"main": agent},
        publish,
        kind="worker" if bridge else "gateway",
        max_concurrent=args.max_concurrent,
        poll_every=args.poll_every,
        stuck_after=config.stuck_after,
    )
    if bridge is not None:
        bridge.origin = executor.id
        bridge.on_control = control_handler(executor)
        await bridge.start()
    await executor.start()
    send({"ready": executor.id})
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            if command.get("stop"):
                break
            sessions = command.get("enqueue") or []
            target = len(sessions)

            async def enqueue(session_id: str) -> None:
                await store.enqueue_run(session_id, TASK, agent="main")
                executor.wake()

            await asyncio.gather(*(enqueue(s) for s in sessions))
    finally:
        await executor.aclose()
        if bridge is not None:
            await bridge.aclose()
        await model.aclose()
        await store.close()
    send({"stopped": executor.id})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--model-url", required=True)
    parser.add_argument("--home", required=True, help="a Staffer home (its workspace is used)")
    parser.add_argument("--max-concurrent", type=int, default=64)
    parser.add_argument("--poll-every", type=float, default=1.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args))
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
