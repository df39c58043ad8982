"""A throwaway PostgreSQL server with the default durability settings, for benchmarks.

The test server (scripts/postgres-test-server.sh) runs with ``fsync=off`` and
``synchronous_commit=off``: right for tests, wrong for measuring what a durable commit
costs. This one keeps PostgreSQL's defaults (``fsync=on``, ``synchronous_commit=on``,
``full_page_writes=on``), puts its data directory where the caller says (the same disk
as the other files of the benchmark), and is stopped and deleted on exit.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from bench._harness import free_port

ROLE = "bench"
OWNER = "postgres"  # the server refuses to run as root


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory with initdb and pg_ctl, or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    return None


def _version(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in path.parent.name.split("."))
    except ValueError:
        return (0,)


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", OWNER, "--", *command]
    return command


@dataclass(slots=True)
class Server:
    """A PostgreSQL server to benchmark on; `database` gives each part a fresh database."""

    url: str  # of the database "postgres" (or the one given)
    data: Path | None  # None: a server we did not start
    created: list[str] = field(default_factory=list)

    def processes(self) -> list[psutil.Process]:
        """The postmaster and every process it forked (one backend per connection)."""
        if self.data is None:
            return []
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            postmaster = psutil.Process(pid)
            return [postmaster, *postmaster.children()]
        except (OSError, ValueError, IndexError, psutil.Error):
            return []

    def database(self, name: str) -> str:
        """The URL of a new, empty database on this server (dropped by `drop_created`)."""
        name = f"bench_{name}_{secrets.token_hex(3)}"
        sql(self.url, f'CREATE DATABASE "{name}"')
        self.created.append(name)
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def drop_created(self) -> None:
        for name in self.created:
            sql(self.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()

    def settings(self, *names: str) -> dict[str, str]:
        """``SHOW name`` for each of `names`."""
        return {name: str(sql(self.url, f"SHOW {name}")) for name in names}


def sql(url: str, statement: str) -> object:
    """The first value of `statement`'s result, on a connection of its own."""
    import asyncio

    import asyncpg

    async def run() -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    return asyncio.run(run())


@contextmanager
def existing_postgres(url: str) -> Iterator[Server]:
    """A server someone else runs (its settings may not be durable: check `settings`)."""
    server = Server(url, None)
    try:
        yield server
    finally:
        server.drop_created()


@contextmanager
def durable_postgres(parent: Path) -> Iterator[Server]:
    """Start a fresh cluster under `parent`; yield it; stop and delete it.

    `parent` must be readable by the ``postgres`` user when we run as root. Raises
    RuntimeError when PostgreSQL is not installed or does not start.
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="pg-", dir=parent))
    data = root / "data"
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, OWNER)
    port = free_port()
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c max_connections=200"
    )
    log = root / "server.log"
    try:
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", ROLE, "-A", "trust"]
        _run("initdb", _as_owner([*initdb, "-E", "UTF8", "--locale=C.UTF-8"]))
        start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts]
        _run("pg_ctl start", _as_owner([*start, "-w", "-t", "60", "start"]))
        try:
            yield Server(f"postgresql://{ROLE}@127.0.0.1:{port}/postgres", data)
        finally:
            stop = [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            subprocess.run(_as_owner(stop), capture_output=True, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(what: str, command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-600:]
        raise RuntimeError(f"{what} failed ({done.returncode}): {tail}")
