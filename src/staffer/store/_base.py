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

from staffer.errors import VersionConflictError
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
    agent: str | None = None
    attempt: int = 0  # executions so far: 1 while first running, > 1 after a resume
    owner: str | None = None  # the executor running it (see `claim_runs`)
    parent_run_id: str | None = None  # set for a sub-agent's run
    input: str | None = None  # a queued run's user message
    idempotency_key: str | None = None
    cancel_requested: bool = False
    lease_until: float | None = None


StepKind = Literal["model", "tool"]
StepStatus = Literal["started", "done", "interrupted"]


@dataclass(slots=True, frozen=True)
class StepRecord:
    """One journaled step of a run: a model call or a tool call.

    A `done` step's output is in the history (its messages were written in the same
    transaction). A `started` step is a side-effecting tool that began and never
    finished: after a crash it is not run again blindly (see `Agent`).
    """

    run_id: str
    step_no: int
    kind: StepKind
    status: StepStatus
    call_id: str | None = None
    idempotency_key: str | None = None
    attempt: int = 1
    created_at: float = 0.0
    finished_at: float | None = None


@dataclass(slots=True, frozen=True)
class ExecutorRecord:
    """A process that executes runs (a `staffer start` or `staffer worker`)."""

    id: str
    kind: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float


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


@dataclass(slots=True, frozen=True)
class CompactionRecord:
    """Older messages of a session summarized for the model (context compaction).

    The messages with ``seq <= upto_seq`` are represented by `summary` when the context
    is assembled; they stay in the history. Token counts are estimates of the context
    before and after; `model` is the one that wrote the summary.
    """

    id: int
    session_id: str
    run_id: str | None
    upto_seq: int
    summary: str
    model: str | None
    tokens_before: int
    tokens_after: int
    created_at: float  # unix seconds


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


@dataclass(slots=True, frozen=True)
class BlackboardEntry:
    """One note on a team's blackboard: `key` → `value`, who wrote it last and when.

    `version` is 1 when the key is first written and goes up by one with every write, so
    a writer can say which version it read (`Store.blackboard_write`'s `expected_version`).
    """

    team: str
    key: str
    value: str
    written_by: str  # the agent's name
    run_id: str | None  # the run that wrote it, if any
    version: int
    updated_at: float  # unix seconds


def blackboard_conflict(team: str, key: str, expected: int, current: int) -> VersionConflictError:
    """The error of a blackboard write that expected `expected` and found `current`."""
    found = "the key does not exist" if current == 0 else f"it is at version {current}"
    wanted = "not to exist yet" if expected == 0 else f"to be at version {expected}"
    return VersionConflictError(
        f"blackboard {team!r}: {key!r} was expected {wanted}, but {found}; "
        "someone else wrote it first. Read it again, then write with the version you read.",
        current=current,
    )


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
        self,
        run_id: str,
        *,
        status: RunStatus,
        usage: Usage,
        error: str | None = None,
        owner: str | None = None,
    ) -> None:
        """Close the run. With `owner`, raises `LeaseLostError` unless it still holds it."""

    @abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    async def list_runs(self, session_id: str) -> list[RunRecord]:
        """Oldest first."""

    # durable runs: the queue, leases and the step journal
    @abstractmethod
    async def enqueue_run(
        self,
        session_id: str,
        text: str,
        *,
        agent: str | None = None,
        model: str | None = None,
        parent_run_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        """A new ``queued`` run for the user message `text` (stored when it is claimed).

        With `idempotency_key`, a second call with the same key returns the first run.
        """

    @abstractmethod
    async def list_child_runs(self, parent_run_id: str) -> list[RunRecord]:
        """The runs started on behalf of this run (delegations), oldest first."""

    @abstractmethod
    async def find_run(self, idempotency_key: str) -> RunRecord | None:
        """The run enqueued with this idempotency key, if any."""

    @abstractmethod
    async def claim_runs(self, owner: str, *, limit: int, lease_seconds: float) -> list[RunRecord]:
        """Start up to `limit` queued runs, oldest first, at most one per session and
        none in a session whose run is active: each becomes ``running``, owned by
        `owner` until its lease runs out, with `attempt` + 1. A run claimed for the
        first time gets its user message appended to the history in the same
        transaction."""

    @abstractmethod
    async def heartbeat(self, executor: ExecutorRecord, *, lease_seconds: float) -> list[str]:
        """Record that `executor` lives and extend the leases of its running runs;
        return the ids of those runs whose cancellation was requested."""

    @abstractmethod
    async def list_executors(self) -> list[ExecutorRecord]: ...

    @abstractmethod
    async def remove_executor(self, executor_id: str) -> None: ...

    @abstractmethod
    async def requeue_runs(self, *, dead_owners: list[str], max_attempts: int) -> list[RunRecord]:
        """Put back in the queue every running run whose lease ran out or whose owner
        is in `dead_owners`; a run that already had `max_attempts` executions is
        failed instead. Return the runs as they are now."""

    @abstractmethod
    async def load_steps(self, run_id: str) -> list[StepRecord]:
        """The run's journal, by step number."""

    @abstractmethod
    async def start_step(self, step: StepRecord, *, owner: str | None) -> None:
        """Journal that a side-effecting step began (before it runs)."""

    @abstractmethod
    async def commit_step(
        self,
        step: StepRecord,
        *,
        session_id: str,
        messages: list[Message],
        usage: Usage,
        owner: str | None,
        tool_call: ToolCallRecord | None = None,
    ) -> list[MessageRecord]:
        """In one transaction: append the step's messages, record its tool call, mark
        the step done and set the run's usage so far to `usage`.

        With `owner`, raises `LeaseLostError` (and writes nothing) unless `owner`
        still holds the run: a worker whose run was taken over cannot write to it.
        The session's `updated_at` need not move here (SQLite leaves it, to write fewer
        pages per step); it moves when the run starts and when it finishes.
        """

    @abstractmethod
    async def request_cancel(self, session_id: str, reason: str) -> tuple[str | None, list[str]]:
        """Flag the session's active run for cancellation and cancel its queued runs.

        Return (the active run's id or None, the ids of the queued runs cancelled)."""

    @abstractmethod
    async def active_run(self, session_id: str) -> RunRecord | None:
        """The session's running or waiting run."""

    @abstractmethod
    async def queued_runs(self, session_id: str) -> list[RunRecord]:
        """The session's queued runs, next first."""

    # tool calls
    @abstractmethod
    async def record_tool_call(self, record: ToolCallRecord) -> None: ...

    @abstractmethod
    async def list_tool_calls(self, session_id: str) -> list[ToolCallRecord]:
        """Oldest first."""

    # compactions (older messages summarized; the messages themselves are never deleted)
    @abstractmethod
    async def record_compaction(
        self,
        session_id: str,
        *,
        upto_seq: int,
        summary: str,
        run_id: str | None = None,
        model: str | None = None,
        tokens_before: int = 0,
        tokens_after: int = 0,
    ) -> CompactionRecord:
        """Record that messages up to `upto_seq` are represented by `summary`."""

    @abstractmethod
    async def latest_compaction(self, session_id: str) -> CompactionRecord | None:
        """The compaction with the highest `upto_seq` (the newest among equals), or None."""

    @abstractmethod
    async def list_compactions(self, session_id: str) -> list[CompactionRecord]:
        """Every compaction of the session, by `upto_seq` (oldest first among equals)."""

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

    # blackboard (key -> value notes shared by the agents of one team)
    @abstractmethod
    async def blackboard_write(
        self,
        team: str,
        key: str,
        value: str,
        *,
        written_by: str,
        run_id: str | None = None,
        expected_version: int | None = None,
    ) -> BlackboardEntry:
        """Set `key` on `team`'s board and return the new entry (version one higher).

        With `expected_version` the write only happens if the entry is at that version
        (0: the key must not exist yet); otherwise it raises `VersionConflictError`
        carrying the version found. Of two racing writers expecting the same version,
        exactly one wins."""

    @abstractmethod
    async def blackboard_read(self, team: str, key: str) -> BlackboardEntry | None: ...

    @abstractmethod
    async def blackboard_list(self, team: str, prefix: str = "") -> list[BlackboardEntry]:
        """The entries of `team` whose key starts with `prefix`, by key."""
