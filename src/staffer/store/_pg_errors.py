"""Driver errors to `StoreError`s that say what to do, and the driver's lazy import.

asyncpg is an optional extra: it is imported when a `PostgresStore` is built, never
when ``staffer.store`` is. A URL's password never reaches a message: places are
named by `describe_url` (``host:port/dbname``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from urllib.parse import urlsplit

from staffer.errors import ConfigError, StoreError


def import_driver() -> ModuleType:
    """The asyncpg module, or a `ConfigError` saying how to install it."""
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ConfigError(
            "PostgreSQL support is not installed", fix="pip install 'staffer[postgres]'"
        ) from exc
    driver: ModuleType = asyncpg
    return driver


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a ``postgresql://`` URL, without user or password."""
    parts = urlsplit(url)
    try:
        port = str(parts.port or 5432)
    except ValueError:
        port = "?"
    host = parts.hostname or "localhost"
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return f"{host}:{port}/{database}"


def connect_error(exc: BaseException, where: str) -> StoreError:
    """The error for a failed connection attempt to `where` (``host:port/db``)."""
    sqlstate = getattr(exc, "sqlstate", None)
    host_port = where.rsplit("/", 1)[0]
    if sqlstate == "3D000":
        database = where.rsplit("/", 1)[1]
        return StoreError(
            f"cannot connect to PostgreSQL at {host_port}: {exc}; create the database "
            f"(createdb {database}) or fix the database name in the URL."
        )
    if sqlstate in ("28P01", "28000"):
        return StoreError(
            f"cannot connect to PostgreSQL at {host_port}: {exc}; check the user name and "
            "password in the URL and the server's pg_hba.conf."
        )
    reason = str(exc) or type(exc).__name__
    return StoreError(
        f"cannot connect to PostgreSQL at {host_port}: {reason}; check the URL and that "
        "the server is running and reachable."
    )


# SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_ADVICE: dict[str, str] = {
    "08": "the connection to {where} was lost. Check that the server is running; "
    "Staffer reconnects on the next call.",
    "57P01": "the server at {where} is shutting down. Start it again and retry.",
    "53": "the server at {where} is out of resources (disk, memory or connections). "
    "Free some, or lower the pool size.",
    "42501": "the database user lacks a privilege on {where}. Grant it, or connect "
    "as the owner of the database.",
    "40P01": "a deadlock with another connection was detected. Retry.",
    "40001": "a concurrent update conflicted. Retry.",
    "23": "a constraint failed (does the session or run referred to exist?).",
    "22": "a value was rejected by PostgreSQL (is it valid text?).",
}


def translate(exc: BaseException, doing: str, where: str) -> StoreError:
    """A `StoreError` for a driver or socket error raised while `doing` something."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(exc, OSError | TimeoutError) and sqlstate is None:
        return connect_error(exc, where)
    advice = None
    if isinstance(sqlstate, str):
        advice = _ADVICE.get(sqlstate) or _ADVICE.get(sqlstate[:2])
    advice = advice or "if it persists, check the server log of {where} and report a bug."
    advice = advice.format(where=where)
    return StoreError(f"{doing} failed: {exc}. {advice[:1].upper()}{advice[1:]}")


@contextlib.contextmanager
def missing(what: str) -> Iterator[None]:
    """Turn a foreign-key violation (SQLSTATE 23503) into a message naming the row."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != "23503":
            raise
        raise StoreError(f"{what} does not exist; create it first.") from exc


@contextlib.contextmanager
def lane(session_id: str) -> Iterator[None]:
    """Turn a clash with the one-active-run-per-session index (SQLSTATE 23505) into a
    clear error."""
    try:
        yield
    except Exception as exc:
        if getattr(exc, "sqlstate", None) != "23505" or "runs_one_active" not in str(exc):
            raise
        raise StoreError(
            f"session {session_id!r} already has an active run; wait for it to finish "
            "or cancel it first."
        ) from exc
