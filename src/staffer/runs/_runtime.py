"""Putting an executor together, the same way in `staffer start` and `staffer worker`."""

from __future__ import annotations

from typing import Any

from staffer.agent._compact import model_context_window
from staffer.agents import build_agents, routed_models
from staffer.config import Config, Home
from staffer.models import Model
from staffer.runs._bridge import PgBridge
from staffer.runs._broker import RunBroker
from staffer.runs._executor import Executor, Publish
from staffer.store import Store


def make_executor(
    config: Config, home: Home, store: Store, model: Model, publish: Publish, *, kind: str
) -> Executor:
    """An executor running the configured agents (on `model`, the shared router)."""
    r = config.runs
    broker = RunBroker(store)
    agents = build_agents(
        config,
        home,
        model_for=routed_models(model),
        store=store,
        context_window_for=lambda route: model_context_window(config, route),
        broker=broker,
        delegate_max_depth=r.delegate_max_depth,
        delegate_timeout=r.delegate_timeout,
        delegate_max_parallel=r.delegate_max_parallel,
    )
    executor = Executor(
        store,
        agents,
        publish,
        kind=kind,
        lease_seconds=r.lease_seconds,
        heartbeat_every=r.heartbeat_every,
        max_concurrent=r.max_concurrent,
        max_attempts=r.max_attempts,
        stuck_after=config.agent.stuck_after,
        on_finished=broker.finished,
    )
    broker.wake = executor.wake
    return executor


def postgres_dsn(store: Store) -> str | None:
    """The store's PostgreSQL URL, or None for SQLite (no other processes to tell)."""
    dsn = getattr(store, "dsn", None)
    return dsn if isinstance(dsn, str) else None


def fan_out(*targets: Publish) -> Publish:
    def publish(session_id: str, run_id: str, event: dict[str, Any]) -> None:
        for target in targets:
            target(session_id, run_id, event)

    return publish


def control_handler(executor: Executor) -> Any:
    """What a worker does with a gateway's ``wake`` and ``cancel`` notifications."""

    def on_control(kind: str, message: dict[str, Any]) -> None:
        if kind == "wake":
            executor.wake()
        elif kind == "cancel" and isinstance(message.get("run_id"), str):
            executor.stop(message["run_id"])

    return on_control


__all__ = ["PgBridge", "control_handler", "fan_out", "make_executor", "postgres_dsn"]
