"""Router test kit: scripted servers as deployments, a recording observer, sleep and clock."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from staffer.models import Message, ModelRequest
from staffer.router import AliasConfig, Attempt, DeploymentConfig, RouterConfig, RouterEvent
from staffer.testing.model_server import ScriptedModelServer


def scenario(text: str = "Hello!", **extra: Any) -> dict[str, Any]:
    return {"scripts": [{"match": "", "steps": [{"text": text}]}], **extra}


def deployment(name: str, server: ScriptedModelServer | str, **kw: Any) -> DeploymentConfig:
    """An OpenAI-compatible deployment on loopback (no key) with near-zero backoff."""
    base_url = server if isinstance(server, str) else server.openai_base_url
    kw.setdefault("retry_backoff", 0.001)
    return DeploymentConfig(
        name=name, provider="openai", model=f"m-{name}", base_url=base_url, **kw
    )


def router_config(*deployments: DeploymentConfig, strategy: str = "priority") -> RouterConfig:
    names = tuple(d.name for d in deployments)
    return RouterConfig(
        deployments={d.name: d for d in deployments},
        aliases={"main": AliasConfig("main", names, strategy)},  # type: ignore[arg-type]
        default_alias="main",
    )


def ask(text: str = "hi", **kw: Any) -> ModelRequest:
    return ModelRequest(messages=[Message(role="user", content=text)], **kw)


def model_requests(server: ScriptedModelServer) -> int:
    return sum(1 for r in server.requests if r.path == "/v1/chat/completions")


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class Recorder:
    """A RouterObserver that keeps everything it is told."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.events: list[RouterEvent] = []

    def on_attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    def on_event(self, event: RouterEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.kind, e.deployment) for e in self.events]


class Sleeps:
    """An injectable `sleep` that records the waits and does not wait."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
