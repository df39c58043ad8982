"""Running the gateway: in the foreground for `staffer start`, or on a thread for tests
and benchmarks. The socket is bound here, so a port in use is a clear ConfigError."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import sys
import threading
from collections.abc import Mapping

import uvicorn
from fastapi import FastAPI

from staffer.config import Config, Home
from staffer.config._load import is_loopback
from staffer.errors import ConfigError
from staffer.gateway._app import create_app
from staffer.gateway._protocol import gateway_protocol
from staffer.gateway._router_admin import install_reload_signal

logger = logging.getLogger("staffer.gateway")


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket, translating failures into what the user can do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP (not 0) so asyncio turns Nagle off on accepted connections.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            key="gateway.port",
            fix="stop the program using that port, or choose another with --port "
            "or gateway.port in config.toml",
        ) from exc
    sock.listen(2048)
    return sock


def _prepare(
    config: Config, home: Home, env: Mapping[str, str], port: int | None, *, execute: bool = True
) -> tuple[uvicorn.Server, socket.socket, FastAPI]:
    host = config.gateway.host
    if not is_loopback(host) and not config.gateway.auth:
        raise ConfigError(
            f"refusing to listen on {host} without authentication",
            key="gateway.auth",
            fix="set gateway.auth = true (the default), or bind 127.0.0.1",
        )
    app = create_app(config, home, env=env, execute=execute)
    sock = bind_socket(host, config.gateway.port if port is None else port)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            http=gateway_protocol(app, max_body_bytes=config.gateway.max_body_bytes),
            ws="none",
            timeout_graceful_shutdown=5,
        )
    )
    return server, sock, app


def make_undumpable() -> bool:
    """Stop other processes of this user reading ours through /proc (environ, memory).

    The exec tool's commands run as the same user; without this they could read
    provider keys from /proc/<gateway pid>/environ. Linux only; root still can.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    pr_set_dumpable = 4
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(pr_set_dumpable, 0, 0, 0, 0) == 0)


def gateway_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def serve(
    config: Config, home: Home, *, env: Mapping[str, str] | None = None, execute: bool = True
) -> None:
    """Run the gateway in the foreground until Ctrl-C, printing the URL to open.

    Without `execute` it only queues runs, for `staffer worker` processes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    make_undumpable()
    # httpx logs every provider request at INFO: one line per model call is noise, not signal.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    server, sock, app = _prepare(
        config, home, os.environ if env is None else env, None, execute=execute
    )
    url = gateway_url(sock)
    token = home.read_token() if config.gateway.auth else ""

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.01)
        install_reload_signal(app)  # SIGHUP re-reads the routing tables
        # What start-up built lives as long as the process: keep it out of the collector's
        # full passes, which otherwise scan it all and stall every request for 20-40 ms.
        gc.freeze()
        print(f"Staffer is running at {url}", flush=True)
        print(f"Open the web chat: {url}/#token={token}" if token else url, flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        await task

    try:
        run_loop(main())
    finally:
        sock.close()
    if not server.started:
        sys.exit(1)


def run_loop(coro: object) -> None:
    """Run `coro` to the end on uvloop (asyncio where uvloop is missing)."""
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(coro)  # type: ignore[arg-type]


class BackgroundGateway:
    """A real gateway on a loopback port, served from a thread (for tests and benchmarks)."""

    def __init__(self, config: Config, home: Home, *, env: Mapping[str, str] | None = None) -> None:
        self._server, self._sock, self.app = _prepare(config, home, env or {}, 0)
        self.url = gateway_url(self._sock)
        self._thread = threading.Thread(target=self._main, name="staffer-gateway", daemon=True)
        self._error: BaseException | None = None

    def _main(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # surfaced by start()/stop()
            self._error = exc

    def start(self) -> BackgroundGateway:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the gateway did not start: {self._error!r}")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)
        self._sock.close()

    def __enter__(self) -> BackgroundGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
