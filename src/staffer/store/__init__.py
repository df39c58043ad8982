"""Store: one interface for sessions, messages, runs and tool calls; SQLite by default."""

from typing import TYPE_CHECKING

from staffer.store._base import (
    API_KEY_PREFIX,
    ApiKeyRecord,
    MessageRecord,
    ModelCallRecord,
    RunRecord,
    RunStatus,
    SessionRecord,
    Store,
    ToolCallRecord,
    UsageDimension,
    UsageSummary,
    hash_api_key,
    new_api_key,
    shown_prefix,
)
from staffer.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from staffer.store.postgres import PostgresStore

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyRecord",
    "MessageRecord",
    "ModelCallRecord",
    "PostgresStore",
    "RunRecord",
    "RunStatus",
    "SQLiteStore",
    "SessionRecord",
    "Store",
    "ToolCallRecord",
    "UsageDimension",
    "UsageSummary",
    "hash_api_key",
    "new_api_key",
    "shown_prefix",
]


def __getattr__(name: str) -> object:
    # PostgresStore is imported on first use: its driver is an optional extra.
    if name == "PostgresStore":
        from staffer.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
