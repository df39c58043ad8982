"""The `Store` interface: sessions, messages, runs, tool calls and usage.

One interface, implemented for SQLite (the default) and later PostgreSQL; the
same test suite runs against every implementation.
"""

from __future__ import annotations

import hashlib
import secrets
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


#: What model-call costs can be grouped by (`Store.model_call_summary`).
UsageDimension = Literal["deployment", "alias", "agent", "session", "user", "channel"]


@dataclass(slots=True, frozen=True)
class ModelCallRecord:
    """One attempt of one model request through the router, with what it cost.

    `cost_usd` is None when a needed price was unknown (`price_unknown` is then
    True): such calls are flagged, never counted as free. Failed attempts are
    recorded too, with the cost of whatever usage they reported (usually zero).
    """

    request_id: str
    alias: str
    deployment: str
    attempt: int
    ok: bool
    usage: Usage
    cost_usd: float | None
    price_unknown: bool
    duration: float  # seconds
    created_at: float  # unix seconds, when the attempt started
    ttft: float | None = None
    error: str | None = None
    status: int | None = None
    agent: str | None = None
    session_id: str | None = None
    user: str | None = None
    channel: str | None = None


@dataclass(slots=True, frozen=True)
class UsageSummary:
    """Model calls grouped by one `UsageDimension`; `key` is None for calls without one."""

    key: str | None
    calls: int
    failed_calls: int
    usage: Usage
    cost_usd: float  # the sum over calls whose price is known
    unknown_price_calls: int  # calls left out of cost_usd because a price was unknown


@dataclass(slots=True, frozen=True)
class ApiKeyRecord:
    """An API key of the OpenAI-compatible endpoint; only its SHA-256 hash is stored.

    `prefix` is the key's first characters (``sk-staffer-AbCd``), enough to recognise
    it in a list without being usable.
    """

    id: str
    user: str
    name: str
    prefix: str
    created_at: float  # unix seconds
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


#: Every API key starts with this, then 43 random URL-safe characters (256 bits).
API_KEY_PREFIX = "sk-staffer-"


def new_api_key() -> str:
    """A fresh random API key, ``sk-staffer-…``; store only `hash_api_key` of it."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest stores keep (and look keys up by) instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def shown_prefix(key: str) -> str:
    """The part of a key that may be displayed: the prefix and 4 more (``sk-staffer-AbCd``)."""
    return key[: len(API_KEY_PREFIX) + 4]


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

    @abstractmethod
    async def interrupt_unfinished_runs(self, error: str) -> list[RunRecord]:
        """Mark every queued/running/waiting run failed with `error`; return them as they were.

        Called at start-up: a run still open then was cut off by a crash or a kill.
        """

    # tool calls
    @abstractmethod
    async def record_tool_call(self, record: ToolCallRecord) -> None: ...

    @abstractmethod
    async def list_tool_calls(self, session_id: str) -> list[ToolCallRecord]:
        """Oldest first."""

    # model calls (the router's cost and latency accounting)
    @abstractmethod
    async def record_model_calls(self, records: list[ModelCallRecord]) -> None:
        """Insert `records` in one transaction (an empty list does nothing)."""

    @abstractmethod
    async def list_model_calls(
        self,
        *,
        since: float | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[ModelCallRecord]:
        """The most recent calls first, optionally from `since` (unix seconds) or one session."""

    @abstractmethod
    async def model_call_summary(
        self, by: UsageDimension, *, since: float | None = None, until: float | None = None
    ) -> list[UsageSummary]:
        """Calls, tokens and cost grouped by `by`, the most expensive group first."""

    # API keys (users of the OpenAI-compatible endpoint)
    @abstractmethod
    async def create_api_key(
        self, *, user: str, key_hash: str, prefix: str, name: str = ""
    ) -> ApiKeyRecord:
        """Store a new key by its SHA-256 hex `key_hash` (never the key itself)."""

    @abstractmethod
    async def list_api_keys(self, *, user: str | None = None) -> list[ApiKeyRecord]:
        """Every key (revoked ones too), oldest first; only `user`'s when given."""

    @abstractmethod
    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Revoke the key; returns it (revoking twice keeps the first time), None if unknown."""

    @abstractmethod
    async def lookup_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The active key with this hash, or None (unknown or revoked)."""
