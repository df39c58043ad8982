"""Reloading swaps the router at once; a stream already running finishes on the old one."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from tests.router._kit import ask, deployment, router_config, scenario

from staffer.config import Config, Home, init_home, load_config
from staffer.gateway import create_app
from staffer.gateway._router_admin import install_reload_signal
from staffer.models import TextDelta
from staffer.router import Built, ReloadableModel, Splits, build_stack

SLOW_TEXT = "abcdefghij" * 4  # 20 chunks of 2 characters, 25 ms apart: about half a second


def generation(*deployments: Any, splits: Splits) -> Built:
    built = build_stack(Config(router=router_config(*deployments)), {}, splits=splits)
    assert built is not None
    return built


async def test_reload_keeps_a_slow_stream_intact_and_closes_the_old_router(servers: Any) -> None:
    slow = servers(scenario(SLOW_TEXT, chunk_chars=2, inter_chunk_ms=25))
    fast = servers(scenario("new router"))
    splits = Splits()
    model = ReloadableModel(generation(deployment("old", slow), splits=splits))
    first_chunk = asyncio.Event()
    pieces: list[str] = []

    async def read_slowly() -> None:
        async for event in model.stream(ask()):
            if isinstance(event, TextDelta):
                pieces.append(event.text)
                first_chunk.set()

    reader = asyncio.create_task(read_slowly())
    await asyncio.wait_for(first_chunk.wait(), 5)
    old_router = model.current.router
    assert model.swap(generation(deployment("new", fast), splits=splits)) == 2
    assert model.in_flight() == {1: 1, 2: 0}
    assert model.config is not None
    assert model.config.aliases["main"].deployments == ("new",)
    # New requests go to the new router at once, while the old stream is still running.
    assert (await model.complete(ask())).text == "new router"
    assert not reader.done()
    await asyncio.wait_for(reader, 5)
    assert "".join(pieces) == SLOW_TEXT
    await asyncio.wait_for(model.drained(), 5)
    assert model.in_flight() == {2: 0}
    assert [s["name"] for s in model.deployment_states()] == ["new"]
    assert old_router is not model.current.router
    await model.aclose()


async def test_an_idle_generation_closes_at_once(servers: Any) -> None:
    a, b = servers(scenario("a")), servers(scenario("b"))
    splits = Splits()
    model = ReloadableModel(generation(deployment("a", a), splits=splits))
    assert (await model.complete(ask())).text == "a"
    model.swap(generation(deployment("b", b), splits=splits))
    await asyncio.wait_for(model.drained(), 1)
    assert (await model.complete(ask())).text == "b"
    assert model.generation == 2
    await model.aclose()


async def test_a_retired_generation_is_closed_after_the_drain_timeout(servers: Any) -> None:
    slow = servers(scenario("x" * 40, chunk_chars=1, inter_chunk_ms=50))
    fast = servers(scenario("b"))
    splits = Splits()
    model = ReloadableModel(generation(deployment("a", slow), splits=splits), drain_timeout=0.05)
    stream = model.stream(ask())
    await anext(stream)  # one stream stays open and unread
    model.swap(generation(deployment("b", fast), splits=splits))
    await asyncio.wait_for(model.drained(), 2)  # closed anyway once the timeout passed
    assert (await model.complete(ask())).text == "b"
    await stream.aclose()  # type: ignore[attr-defined]
    await model.aclose()


async def test_sighup_reloads_the_routing_tables(tmp_path: Path, servers: Any) -> None:
    one, two = servers(scenario("one")), servers(scenario("two"))
    home = Home(tmp_path / "home")
    init_home(home)

    def write(name: str, server: Any) -> None:
        home.config_file.write_text(
            f'[deployments.{name}]\nprovider = "openai"\nmodel = "m"\n'
            f'base_url = "{server.openai_base_url}"\n[aliases.main]\ndeployments = ["{name}"]\n'
        )

    write("one", one)
    app = create_app(load_config(home.config_file), home, env={})
    model = app.state.router_admin.model
    assert isinstance(model, ReloadableModel)
    loop = asyncio.get_running_loop()
    assert install_reload_signal(app)
    try:
        write("two", two)
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if model.generation == 2:
                break
            await asyncio.sleep(0.01)
        assert (await model.complete(ask())).text == "two"
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await model.aclose()


async def test_a_stream_counts_in_flight_while_it_runs(servers: Any) -> None:
    """A stream is in flight from its first event until it ends or is closed early."""
    slow = servers(scenario("x" * 20, chunk_chars=1, inter_chunk_ms=20))
    splits = Splits()
    model = ReloadableModel(generation(deployment("a", slow), splits=splits))
    stream = model.stream(ask())
    await anext(stream)
    assert model.in_flight() == {1: 1}
    await stream.aclose()  # type: ignore[attr-defined]
    assert model.in_flight() == {1: 0}
    assert (await model.complete(ask())).text == "x" * 20
    assert model.in_flight() == {1: 0}
    await model.aclose()
