"""The `Store` interface: sessions, messages, runs, tool calls and usage.

One interface, implemented for SQLite (the default) and later PostgreSQL; the
same test suite runs against every implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from staffer.models import Message, Usage

RunStatus = Literal["queued", "running", "waiting", "done", "failed", "cancelled"]


@dataclass(slots=True, frozen=True)
class SessionRecord:
    id: str
    title: str
    agent: str
    created_at: float  # unix seconds
    updated_at: float


@dataclass(slots=True, frozen=True)
class MessageRecord:
    session_id: str
    seq: int  # 1, 2, 3 … within the session
    run_id: str | None
    message: Message
    created_at: float


@dataclass(slots=True, frozen=True)
class RunRecord:
    id: str
    session_id: str
    status: RunStatus
    created_at: float
    finished_at: float | None
    error: str | None
    usage: Usage
    model: str | None


@dataclass(slots=True, frozen=True)
class ToolCallRecord:
    run_id: str
    session_id: str
    call_id: str
    name: str
    arguments: str
    result: str | None
    error: str | None
    duration_ms: float
    created_at: float


class Store(ABC):
    """Persistence for everything a conversation leaves behind.

    Open it with ``async with store:`` (or `open`/`close`). Methods raise
    `StoreError` on failure; a missing session is `None`, not an error.
    """

    @abstractmethod
    async def open(self) -> None:
        """Create or migrate the schema and get ready for use."""

    @abstractmethod
    async def close(self) -> None:
        """Flush and release the database."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # sessions
    @abstractmethod
    async def create_session(self, *, title: str = "", agent: str = "main") -> SessionRecord: ...

    @abstractmethod
    async def get_session(self, session_id: str) -> SessionRecord | None: ...

    @abstractmethod
    async def list_sessions(self, *, limit: int = 100) -> list[SessionRecord]:
        """Most recently updated first."""

    @abstractmethod
    async def rename_session(self, session_id: str, title: str) -> None: ...

    # messages
    @abstractmethod
    async def append_messages(
        self, session_id: str, messages: list[Message], *, run_id: str | None = None
    ) -> list[MessageRecord]:
        """Append in one transaction, assigning consecutive `seq` numbers; touches updated_at."""

    @abstractmethod
    async def list_messages(self, session_id: str) -> list[MessageRecord]:
        """The whole history, oldest first."""

    # runs
    @abstractmethod
    async def create_run(self, session_id: str, *, model: str | None = None) -> RunRecord:
        """A new run in status ``running``."""

    @abstractmethod
    async def finish_run(
        self, run_id: str, *, status: RunStatus, usage: Usage, error: str | None = None
    ) -> None: ...

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def list_runs(self, session_id: str) -> list[RunRecord]:
        """Oldest first."""

    # tool calls
    @abstractmethod
    async def record_tool_call(self, record: ToolCallRecord) -> None: ...

    @abstractmethod
    async def list_tool_calls(self, session_id: str) -> list[ToolCallRecord]:
        """Oldest first."""
