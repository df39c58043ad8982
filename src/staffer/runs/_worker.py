"""`staffer worker`: a process that only executes runs, from a shared PostgreSQL store.

It claims queued runs, executes them with the configured agents and model, and sends
their events to the gateways over LISTEN/NOTIFY. SIGTERM or Ctrl-C stop it cleanly: the
runs in flight go back to the queue and resume on another worker from their journal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping

from staffer.config import Config, Home
from staffer.errors import ConfigError

logger = logging.getLogger("staffer.runs")


async def run_worker(
    config: Config, home: Home, env: Mapping[str, str], *, stop: asyncio.Event | None = None
) -> None:
    """Execute runs until `stop` is set (or SIGTERM/SIGINT arrive)."""
    from staffer.gateway._observability import observability_for
    from staffer.gateway._router_admin import build_routing
    from staffer.runs._runtime import PgBridge, control_handler, make_executor, postgres_dsn
    from staffer.store import open_store

    store = open_store(config.store, home, env)
    dsn = postgres_dsn(store)
    if dsn is None:
        raise ConfigError(
            "`staffer worker` shares runs with gateways through a PostgreSQL database",
            key="store.url",
            fix="set store.url = postgresql://USER:PASSWORD@HOST:5432/DB, or run "
            "`staffer start` (gateway and worker in one process)",
        )
    observability = observability_for(config)
    model, _admin = build_routing(config, home, env, observability)
    if model is None:
        raise ConfigError(
            "no model is configured, so a worker has nothing to run runs with",
            key="model.name",
            fix="configure [model] or [deployments]/[aliases] (see `staffer config docs`)",
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await store.open()
    try:
        await observability.start(store, router=model)
        bridge = PgBridge(dsn, "")
        executor = make_executor(config, home, store, model, bridge.publish, kind="worker")
        bridge.origin = executor.id
        bridge.on_control = control_handler(executor)
        await bridge.start()
        await executor.start()
        print(f"Staffer worker {executor.id} is running (pid {os.getpid()})", flush=True)
        try:
            await stop.wait()
        finally:
            await executor.aclose()
            await bridge.aclose()
            await model.aclose()
            await observability.aclose()
    finally:
        await store.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
