"""`ScriptedModelServer`: the scripted app served by uvicorn on a background thread.

The server owns a thread with its own event loop, so the same object works in
sync tests, in async tests (whose loop it never blocks), and behind a CLI. The
listening socket is bound before the thread starts, which makes the port known
at once and start-up fast; shutdown closes every connection, stalled or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

from staffer.testing.model_server._app import RecordedRequest, ScriptedApp
from staffer.testing.model_server._scenario import (
    DEFAULT_SCENARIO,
    Scenario,
    load_scenario,
    parse_scenario,
)

ScenarioSource = Scenario | Mapping[str, Any] | str | Path

#: how long in-flight answers may finish once `stop` is called, before they are cut
_GRACE_SECONDS = 0.2


def _scenario(source: ScenarioSource | None) -> Scenario:
    if source is None:
        return parse_scenario(DEFAULT_SCENARIO)
    if isinstance(source, str | Path):
        return load_scenario(source)
    return parse_scenario(source)


class ScriptedModelServer:
    """An OpenAI- and Anthropic-compatible HTTP server that answers from a scenario.

    Use it as a context manager (``with`` or ``async with``), or call `start` and
    `stop`. `scenario` is a dict, a `Scenario`, or a path to a JSON/TOML file; it
    is validated here, so a bad scenario fails before anything listens.
    """

    def __init__(
        self,
        scenario: ScenarioSource | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record_requests: bool = True,
    ) -> None:
        self.app = ScriptedApp(_scenario(scenario), record_requests=record_requests)
        self._host = host
        self._port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # --- addresses ------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port listened on (the picked one when constructed with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for OpenAI clients (``…/v1``)."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL for Anthropic clients, which add ``/v1/messages`` themselves."""
        return self.url

    # --- scenario and recording -------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far (provider endpoints only)."""
        return list(self.app.requests)

    @property
    def scenario(self) -> Scenario:
        """The scenario in force."""
        return self.app.scenario

    def set_scenario(self, scenario: ScenarioSource) -> None:
        """Replace the scenario while running; its fault queue starts from the beginning."""
        self.app.set_scenario(_scenario(scenario))

    def reset(self) -> None:
        """Forget recorded requests and restart the fault queue."""
        self.app.reset()

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Bind the port and serve on a background thread; returns once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("ScriptedModelServer is already running")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"scripted-model-server:{self._port}", daemon=True
        )
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._failure is not None or not self._ready.is_set():
            self._thread.join(timeout=1)
            self._thread = None
            raise RuntimeError("the scripted model server failed to start") from self._failure

    def stop(self) -> None:
        """Close every connection and stop the thread. Safe to call twice."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # start() and stop() block for a few milliseconds; keep them off the caller's loop.
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _run(self, sock: socket.socket) -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._serve(sock))
        except BaseException as exc:  # reported to the thread that called start()
            self._failure = exc
        finally:
            sock.close()
            self._ready.set()

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        # log_config=None: never reconfigure the host process's logging.
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, server_header=False)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)  # what Server._serve would set up
        await server.startup(sockets=[sock])
        ticker = asyncio.create_task(server.main_loop())  # keeps the Date header current
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.should_exit = True
            ticker.cancel()
            await _close(server)


async def _close(server: uvicorn.Server) -> None:
    """Stop listening, let answers in flight finish briefly, then cut whatever is left."""
    for listener in server.servers:
        listener.close()
    state = server.server_state
    for connection in list(state.connections):
        connection.shutdown()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _GRACE_SECONDS
    # uvicorn signals nothing when a connection closes, so poll briefly.
    while state.connections and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    for connection in list(state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.close()
    tasks = list(state.tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is not available on Windows
        return asyncio.new_event_loop
    return uvloop.new_event_loop
