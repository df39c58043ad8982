"""Store: one interface for sessions, messages, runs and tool calls; SQLite by default."""

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

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyRecord",
    "MessageRecord",
    "ModelCallRecord",
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
