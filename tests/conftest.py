"""Shared fixtures: a real gateway on loopback wired to the scripted model server."""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import pytest

from staffer.config import Home, init_home, load_config
from staffer.gateway import BackgroundGateway
from staffer.testing.model_server import ScriptedModelServer


class LiveGateway:
    """A gateway serving a temporary Staffer home; `restart()` keeps the home."""

    def __init__(self, home: Home, server: ScriptedModelServer | None) -> None:
        self.home = home
        self.server = server
        self.token = home.read_token()
        self._gateway: BackgroundGateway | None = None
        self.start()

    @property
    def url(self) -> str:
        assert self._gateway is not None
        return self._gateway.url

    def start(self) -> None:
        config = load_config(self.home.config_file)
        self._gateway = BackgroundGateway(config, self.home, env={}).start()

    def stop(self) -> None:
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {self.token}"},
            timeout=kw.pop("timeout", 30),
            **kw,
        )


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, timeout: float = 30.0) -> bool:
    """Poll ``url/healthz`` until it answers 200; False if it never did within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return False


def write_model_config(home: Home, server: ScriptedModelServer, extra: str = "") -> None:
    home.config_file.write_text(
        f'[model]\nname = "openai:scripted"\nbase_url = "{server.openai_base_url}"\n{extra}',
        encoding="utf-8",
    )


@pytest.fixture
def live_gateway(tmp_path: Path) -> Iterator[Callable[..., LiveGateway]]:
    """Factory: ``live_gateway(scenario)`` → a running gateway; ``None`` means no model.

    `config` adds TOML text after the [model] section (e.g. "[agent]\\nmax_iterations = 3").
    """
    gateways: list[LiveGateway] = []
    servers: list[ScriptedModelServer] = []

    def start(scenario: dict[str, Any] | None, *, config: str = "") -> LiveGateway:
        home = Home(tmp_path / f"home{len(gateways)}")
        init_home(home)
        server = None
        if scenario is not None:
            server = ScriptedModelServer(scenario).__enter__()
            servers.append(server)
            write_model_config(home, server, config)
        elif config:
            home.config_file.write_text(config, encoding="utf-8")
        gateway = LiveGateway(home, server)
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        gateway.stop()
    for server in servers:
        server.__exit__(None, None, None)


POSTGRES_URL_VAR = "STAFFER_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test server's URL; skips the test without one (fails in CI)."""
    url = os.environ.get(POSTGRES_URL_VAR)
    if url:
        return url
    why = (
        f"set {POSTGRES_URL_VAR} to a PostgreSQL database URL "
        "(`bash scripts/postgres-test-server.sh` starts a throwaway server and prints it)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the PostgreSQL store tests: {why}", pytrace=False)
    pytest.skip(why)


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"search_path": schema})) if q)
    return urlunsplit(parts._replace(query=query))


@pytest.fixture
async def postgres_schema_url() -> AsyncIterator[str]:
    """A URL whose search_path is a fresh, empty schema (dropped after the test)."""
    url = postgres_url()
    asyncpg = pytest.importorskip("asyncpg")
    schema = f"test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(url, schema)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()
