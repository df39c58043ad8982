"""Rows to records and back for the SQL stores.

Tool calls are stored as a JSON array of ``{"id", "name", "arguments"}``
objects (never pickle), so a database written by one version stays readable by
any other and by plain SQL tools.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, cast

from staffer.errors import StoreError
from staffer.models import Message, Role, ToolCall, Usage
from staffer.store._base import (
    MessageRecord,
    ModelCallRecord,
    RunRecord,
    RunStatus,
    SessionRecord,
    StepKind,
    StepRecord,
    StepStatus,
    ToolCallRecord,
)

SESSION_COLUMNS = "id, title, agent, created_at, updated_at"
MESSAGE_COLUMNS = (
    "session_id, seq, run_id, role, content, tool_calls, tool_call_id, name, is_error, created_at"
)
RUN_COLUMNS = (
    "id, session_id, status, created_at, finished_at, error, "
    "input_tokens, output_tokens, cached_input_tokens, model, "
    "agent, attempt, owner, parent_run_id, input, idempotency_key, cancel_requested, lease_until"
)
STEP_COLUMNS = (
    "run_id, step_no, kind, status, call_id, idempotency_key, attempt, created_at, finished_at"
)
EXECUTOR_COLUMNS = "id, kind, host, pid, started_at, heartbeat_at"
TOOL_CALL_COLUMNS = (
    "run_id, session_id, call_id, name, arguments, result, error, duration_ms, created_at"
)


def new_id() -> str:
    """A random, URL-safe identifier for a session or a run."""
    return secrets.token_hex(8)


def placeholders(columns: str) -> str:
    """``?, ?, …``: one SQLite parameter per column of `columns`."""
    return ", ".join("?" * (columns.count(",") + 1))


def encode_tool_calls(calls: list[ToolCall]) -> str | None:
    """The JSON text stored for `calls`, or None when there are none."""
    if not calls:
        return None
    return json.dumps(
        [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decode_tool_calls(text: str | None) -> list[ToolCall]:
    """The tool calls stored as `text`; a malformed value is a `StoreError`."""
    if not text:
        return []
    try:
        items = json.loads(text)
        return [ToolCall(id=i["id"], name=i["name"], arguments=i["arguments"]) for i in items]
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(
            f"a stored message has malformed tool_calls ({exc!r}); the database was "
            "edited by hand or is damaged. Restore it from a backup."
        ) from exc


def session_from_row(row: tuple[Any, ...]) -> SessionRecord:
    id_, title, agent, created_at, updated_at = row
    return SessionRecord(id_, title, agent, created_at, updated_at)


def message_params(
    session_id: str, seq: int, run_id: str | None, message: Message, now: float
) -> tuple[Any, ...]:
    """The values of one ``messages`` row, in `MESSAGE_COLUMNS` order."""
    return (
        session_id,
        seq,
        run_id,
        message.role,
        message.content,
        encode_tool_calls(message.tool_calls),
        message.tool_call_id,
        message.name,
        int(message.is_error),
        now,
    )


def message_from_row(row: tuple[Any, ...]) -> MessageRecord:
    session_id, seq, run_id, role, content, calls, call_id, name, is_error, created_at = row
    message = Message(
        role=cast(Role, role),
        content=content,
        tool_calls=decode_tool_calls(calls),
        tool_call_id=call_id,
        name=name,
        is_error=bool(is_error),
    )
    return MessageRecord(session_id, seq, run_id, message, created_at)


def run_from_row(row: tuple[Any, ...]) -> RunRecord:
    id_, session_id, status, created_at, finished_at, error, inp, out, cached, model = row[:10]
    agent, attempt, owner, parent, text, key, cancel, lease = row[10:]
    return RunRecord(
        id=id_,
        session_id=session_id,
        status=cast(RunStatus, status),
        created_at=created_at,
        finished_at=finished_at,
        error=error,
        usage=Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=cached),
        model=model,
        agent=agent,
        attempt=attempt,
        owner=owner,
        parent_run_id=parent,
        input=text,
        idempotency_key=key,
        cancel_requested=bool(cancel),
        lease_until=lease,
    )


def queued_run(
    session_id: str,
    text: str,
    now: float,
    *,
    agent: str | None,
    model: str | None,
    parent_run_id: str | None,
    idempotency_key: str | None,
) -> RunRecord:
    """A new run in status ``queued`` that will start with the user message `text`."""
    return RunRecord(
        new_id(),
        session_id,
        "queued",
        now,
        None,
        None,
        Usage(),
        model,
        agent=agent,
        parent_run_id=parent_run_id,
        input=text,
        idempotency_key=idempotency_key,
    )


def run_params(run: RunRecord) -> tuple[Any, ...]:
    """The values of `RUN_COLUMNS` for inserting `run`."""
    u = run.usage
    return (
        *(run.id, run.session_id, run.status, run.created_at, run.finished_at, run.error),
        *(u.input_tokens, u.output_tokens, u.cached_input_tokens, run.model),
        *(run.agent, run.attempt, run.owner, run.parent_run_id, run.input),
        *(run.idempotency_key, int(run.cancel_requested), run.lease_until),
    )


def step_from_row(row: tuple[Any, ...]) -> StepRecord:
    run_id, step_no, kind, status, call_id, key, attempt, created_at, finished_at = row
    return StepRecord(
        run_id,
        step_no,
        cast(StepKind, kind),
        cast(StepStatus, status),
        call_id,
        key,
        attempt,
        created_at,
        finished_at,
    )


def step_params(step: StepRecord) -> tuple[Any, ...]:
    s = step
    return (
        *(s.run_id, s.step_no, s.kind, s.status, s.call_id),
        *(s.idempotency_key, s.attempt, s.created_at, s.finished_at),
    )


def tool_call_params(record: ToolCallRecord) -> tuple[Any, ...]:
    """The values of one ``tool_calls`` row, in `TOOL_CALL_COLUMNS` order."""
    r = record
    return (
        r.run_id,
        r.session_id,
        r.call_id,
        r.name,
        r.arguments,
        r.result,
        r.error,
        r.duration_ms,
        r.created_at,
    )


def tool_call_from_row(row: tuple[Any, ...]) -> ToolCallRecord:
    return ToolCallRecord(*row)


# --- model calls --------------------------------------------------------------

MODEL_CALL_COLUMNS = (
    "request_id, alias, deployment, attempt, ok, error, status, input_tokens, output_tokens, "
    "cached_input_tokens, cost_nano_usd, price_unknown, ttft, duration, agent, session_id, "
    "user, channel, created_at"
)
_NANO = 1_000_000_000


def model_call_params(record: ModelCallRecord) -> tuple[Any, ...]:
    """The values of one ``model_calls`` row, in `MODEL_CALL_COLUMNS` order.

    Cost is kept as integer nano-dollars so SQL sums are exact.
    """
    r = record
    cost = None if r.cost_usd is None else round(r.cost_usd * _NANO)
    return (
        r.request_id,
        r.alias,
        r.deployment,
        r.attempt,
        int(r.ok),
        r.error,
        r.status,
        r.usage.input_tokens,
        r.usage.output_tokens,
        r.usage.cached_input_tokens,
        cost,
        int(r.price_unknown),
        r.ttft,
        r.duration,
        r.agent,
        r.session_id,
        r.user,
        r.channel,
        r.created_at,
    )


def model_call_from_row(row: tuple[Any, ...]) -> ModelCallRecord:
    (
        request_id,
        alias,
        deployment,
        attempt,
        ok,
        error,
        status,
        inp,
        out,
        cached,
        cost,
        price_unknown,
        ttft,
        duration,
        agent,
        session_id,
        user,
        channel,
        created_at,
    ) = row
    return ModelCallRecord(
        request_id=request_id,
        alias=alias,
        deployment=deployment,
        attempt=attempt,
        ok=bool(ok),
        usage=Usage(input_tokens=inp, output_tokens=out, cached_input_tokens=cached),
        cost_usd=None if cost is None else cost / _NANO,
        price_unknown=bool(price_unknown),
        duration=duration,
        created_at=created_at,
        ttft=ttft,
        error=error,
        status=status,
        agent=agent,
        session_id=session_id,
        user=user,
        channel=channel,
    )
