"""Store: one interface for sessions, messages, runs and tool calls; SQLite by default."""

from staffer.store._base import (
    MessageRecord,
    RunRecord,
    RunStatus,
    SessionRecord,
    Store,
    ToolCallRecord,
)
from staffer.store.sqlite import SQLiteStore

__all__ = [
    "MessageRecord",
    "RunRecord",
    "RunStatus",
    "SQLiteStore",
    "SessionRecord",
    "Store",
    "ToolCallRecord",
]
