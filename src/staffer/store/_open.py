"""`open_store`: the Store a config asks for — SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from staffer.errors import ConfigError

if TYPE_CHECKING:
    from staffer.config import Home, StoreConfig
    from staffer.store._base import Store


def store_url(config: StoreConfig, env: Mapping[str, str]) -> str:
    """The configured database URL ('' for the home's SQLite file)."""
    if config.url_env:
        url = env.get(config.url_env, "")
        if not url:
            raise ConfigError(
                f"the environment variable {config.url_env} is not set",
                key="store.url_env",
                fix=f"export {config.url_env}=postgresql://USER:PASSWORD@HOST:5432/DB, "
                "or remove store.url_env",
            )
        return url
    return config.url


def open_store(config: StoreConfig, home: Home, env: Mapping[str, str]) -> Store:
    """A new, unopened store for `config` (`async with` it)."""
    url = store_url(config, env)
    if not url:
        from staffer.store.sqlite import SQLiteStore

        return SQLiteStore(home.db_file)
    if url.startswith("sqlite:///"):
        from staffer.store.sqlite import SQLiteStore

        return SQLiteStore(Path(url.removeprefix("sqlite://")))
    if url.startswith(("postgresql://", "postgres://")):
        from staffer.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(
        f"{url.split('://')[0]!r} is not a database this Staffer can use",
        key="store.url",
        fix="use postgresql://USER:PASSWORD@HOST:5432/DB or sqlite:////absolute/path.db",
    )
