"""Store: one interface for sessions, messages, runs and tool calls; SQLite by default."""

from typing import TYPE_CHECKING

from staffer.store._base import (
    API_KEY_PREFIX,
    ApiKeyRecord,
    BlackboardEntry,
    CompactionRecord,
    ExecutorRecord,
    MessageRecord,
    ModelCallRecord,
    RunRecord,
    RunStatus,
    SessionRecord,
    StepRecord,
    Store,
    ToolCallRecord,
    UsageDimension,
    UsageSummary,
    hash_api_key,
    new_api_key,
    shown_prefix,
)
from staffer.store._open import open_store, store_url
from staffer.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from staffer.store.postgres import PostgresStore

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyRecord",
    "BlackboardEntry",
    "CompactionRecord",
    "ExecutorRecord",
    "MessageRecord",
    "ModelCallRecord",
    "PostgresStore",
    "RunRecord",
    "RunStatus",
    "SQLiteStore",
    "SessionRecord",
    "StepRecord",
    "Store",
    "ToolCallRecord",
    "UsageDimension",
    "UsageSummary",
    "hash_api_key",
    "new_api_key",
    "open_store",
    "shown_prefix",
    "store_url",
]


def __getattr__(name: str) -> object:
    # PostgresStore is imported on first use: its driver is an optional extra.
    if name == "PostgresStore":
        from staffer.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
