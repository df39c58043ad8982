"""`staffer keys`: API keys for the OpenAI-compatible endpoint (``/v1``).

The commands open the store directly, so they work whether or not the gateway is
running; a running gateway notices a revocation within a few seconds (its key cache).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from staffer.store import ApiKeyRecord, Store

T = TypeVar("T")

keys_app = typer.Typer(
    help="Create, list and revoke API keys for the OpenAI-compatible API (/v1).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    import asyncio

    from staffer.cli._output import fail, fail_config
    from staffer.config import Home, load_config
    from staffer.errors import ConfigError, StoreError
    from staffer.store import open_store

    home = Home.from_env(os.environ)

    async def main() -> T:
        async with open_store(load_config(home.config_file).store, home, os.environ) as store:
            return await work(store)

    try:
        return asyncio.run(main())
    except ConfigError as exc:
        fail_config(exc)
    except StoreError as exc:
        fail(str(exc), fix=f"check {home.db_file}, or set STAFFER_HOME to the right home")


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


@keys_app.command("create")
def create(
    user: Annotated[str, typer.Option("--user", help="Who the key belongs to.")],
    name: Annotated[str, typer.Option(help="A label to tell the user's keys apart.")] = "",
) -> None:
    """Create a key for USER and print it (once: only its hash is kept).

    The key goes to stdout alone, so `KEY=$(staffer keys create --user alice)` works.
    """
    from staffer.cli._output import fail
    from staffer.store import hash_api_key, new_api_key, shown_prefix

    user = user.strip()
    if not user:
        fail("--user must not be empty", fix="name who the key is for: --user alice")
    key = new_api_key()

    async def work(store: Store) -> ApiKeyRecord:
        return await store.create_api_key(
            user=user, key_hash=hash_api_key(key), prefix=shown_prefix(key), name=name
        )

    record = _with_store(work)
    typer.echo(key)
    typer.echo(
        f"Created API key {record.id} for {user}. Keep it now: it is not shown again.\n"
        "Use it with any OpenAI client: base URL http://HOST:PORT/v1 and this key.",
        err=True,
    )


@keys_app.command("list")
def list_keys(
    user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None,
) -> None:
    """List keys (never the keys themselves: their first characters)."""

    async def work(store: Store) -> list[ApiKeyRecord]:
        return await store.list_api_keys(user=user)

    records = _with_store(work)
    if not records:
        typer.echo("No API keys yet. Create one with: staffer keys create --user NAME")
        return
    rows = [("ID", "USER", "NAME", "KEY", "CREATED", "STATUS")]
    for r in records:
        status = "active" if r.revoked_at is None else f"revoked {_when(r.revoked_at)}"
        rows.append((r.id, r.user, r.name or "-", f"{r.prefix}…", _when(r.created_at), status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]))


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id.")]) -> None:
    """Revoke a key; a running gateway refuses it within 5 seconds."""
    from staffer.cli._output import fail

    async def work(store: Store) -> ApiKeyRecord | None:
        return await store.revoke_api_key(key_id)

    record = _with_store(work)
    if record is None:
        fail(f"no API key with id {key_id!r}", fix="see the ids with `staffer keys list`")
    typer.echo(f"Revoked key {record.id} ({record.user}, {record.prefix}…).")
