"""Fixtures for the router tests: scripted model servers started on demand."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.router._kit import scenario

from staffer.testing.model_server import ScriptedModelServer


@pytest.fixture
def servers() -> Iterator[Callable[..., ScriptedModelServer]]:
    """Factory: ``servers(scenario_dict)`` → a running scripted server, stopped afterwards."""
    started: list[ScriptedModelServer] = []

    def start(data: dict[str, Any] | None = None) -> ScriptedModelServer:
        server = ScriptedModelServer(data or scenario()).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)
