"""The HTTP API (see docs/http-api.md): status, sessions, messages and the event stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator

from staffer import __version__
from staffer.gateway._agents_api import AgentsOf, choose_agent
from staffer.gateway._errors import ApiError
from staffer.gateway._hub import Subscription
from staffer.gateway._runs import Accepted, QueueFullError, RunActiveError
from staffer.gateway._state import GatewayState
from staffer.store import MessageRecord, RunRecord, SessionRecord, ToolCallRecord

router = APIRouter()
PING_SECONDS = 15.0


def _state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.staffer
    return state


State = Annotated[GatewayState, Depends(_state)]


class NewSession(BaseModel):
    title: str = Field(default="", max_length=200)
    agent: str | None = Field(
        default=None,
        max_length=64,
        description="the agent serving the session (GET /api/agents); default: by bindings",
    )


class NewMessage(BaseModel):
    text: str = Field(min_length=1, max_length=200_000)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the message is empty; write something")
        return text


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """Liveness: answers without a token."""
    return {"status": "ok", "version": __version__}


@router.get("/api/status", tags=["status"])
async def status(state: State) -> dict[str, Any]:
    """Version, the configured model (or how to configure one) and the workspace path."""
    model = state.model
    return {
        "version": __version__,
        "model": {
            "configured": model is not None,
            "name": model.name if model else None,
            "help": None if model else state.model_help,
        },
        "workspace": str(state.workspace),
    }


@router.get("/api/sessions", tags=["sessions"])
async def list_sessions(state: State) -> dict[str, Any]:
    return {"sessions": [_session(s) for s in await state.store.list_sessions()]}


@router.post("/api/sessions", status_code=201, tags=["sessions"])
async def create_session(
    state: State, agents: AgentsOf, body: NewSession | None = None
) -> dict[str, Any]:
    agent = choose_agent(agents, body.agent if body else None)
    session = await state.store.create_session(title=body.title if body else "", agent=agent)
    return _session(session)


@router.get("/api/sessions/{session_id}", tags=["sessions"])
async def get_session(session_id: str, state: State) -> dict[str, Any]:
    session = await _require_session(state, session_id)
    return {
        **_session(session),
        "active_run": await state.runs.active_run(session_id) if state.runs else None,
        "queued": await state.runs.queued(session_id) if state.runs else [],
        "messages": [_message(m) for m in await state.store.list_messages(session_id)],
        "tool_calls": [_tool_call(t) for t in await state.store.list_tool_calls(session_id)],
        "runs": [_run(r) for r in await state.store.list_runs(session_id)],
    }


@router.post("/api/sessions/{session_id}/messages", status_code=202, tags=["sessions"])
async def post_message(
    session_id: str,
    body: NewMessage,
    state: State,
    stream: Annotated[bool, Query(description="answer with the run's event stream")] = False,
) -> Any:
    """Start a run for the message (or queue it, or steer the active run with it, per
    ``agent.busy``); with ``stream=true`` follow it as server-sent events."""
    session = await _require_session(state, session_id)
    if state.runs is None:
        raise ApiError(503, "no_model", "no model is configured", state.model_help)
    title = None if session.title else _title_from(body.text)
    if stream:
        # Subscribed before the run starts, so not one of its events can be missed.
        events = state.hub.follow(session_id, state.hub.last_seq(), idle=PING_SECONDS)
        try:
            accepted = await state.runs.start(session_id, body.text, title=title)
        except (RunActiveError, QueueFullError) as exc:
            await events.aclose()
            raise _busy(exc) from exc
        return _sse(events, until_run=accepted.run_id or accepted.ticket, status=202)
    try:
        accepted = await state.runs.start(session_id, body.text, title=title)
    except (RunActiveError, QueueFullError) as exc:
        raise _busy(exc) from exc
    return _accepted(accepted)


@router.post("/api/sessions/{session_id}/cancel", tags=["sessions"])
async def cancel_session(session_id: str, state: State) -> dict[str, Any]:
    """Stop the session's active run and drop its queued messages."""
    await _require_session(state, session_id)
    if state.runs is None:
        return {"cancelled": False, "run_id": None, "dropped": 0}
    cancelled, run_id, dropped = await state.runs.cancel(session_id)
    return {"cancelled": cancelled, "run_id": run_id, "dropped": dropped}


@router.get("/api/runs/{run_id}", tags=["sessions"])
async def get_run(run_id: str, state: State) -> dict[str, Any]:
    """One run: its status, agent, attempts, usage and, for a sub-agent's run, its parent."""
    run = await state.store.get_run(run_id)
    if run is None:
        raise ApiError(404, "not_found", f"no run {run_id!r}", "see a session's runs")
    return {**_run(run), "session_id": run.session_id}


@router.get("/api/runs/{run_id}/children", tags=["sessions"])
async def list_child_runs(run_id: str, state: State) -> dict[str, Any]:
    """The runs this run started for other agents (delegate, send_to_agent), oldest first."""
    if await state.store.get_run(run_id) is None:
        raise ApiError(404, "not_found", f"no run {run_id!r}", "see a session's runs")
    runs = await state.store.list_child_runs(run_id)
    return {"runs": [{**_run(r), "session_id": r.session_id} for r in runs]}


@router.post("/api/runs/{run_id}/cancel", tags=["sessions"])
async def cancel_run(run_id: str, state: State) -> dict[str, Any]:
    """Stop an active run (or a queued ticket) by id: the same as cancelling its session."""
    session_id = await state.runs.session_of(run_id) if state.runs else None
    if state.runs is None or session_id is None:
        raise ApiError(
            404,
            "not_found",
            f"no active or queued run {run_id!r}",
            "it has finished already; see the session's runs at GET /api/sessions/{id}",
        )
    cancelled, active, dropped = await state.runs.cancel(session_id)
    return {"cancelled": cancelled, "run_id": active, "dropped": dropped}


@router.get("/api/sessions/{session_id}/events", tags=["sessions"])
async def follow_events(
    session_id: str, state: State, after: Annotated[int, Query(ge=0)] = 0
) -> StreamingResponse:
    """The session's events with seq > `after`, live, until the client disconnects."""
    await _require_session(state, session_id)
    return _sse(state.hub.follow(session_id, after, idle=PING_SECONDS), until_run=None)


def _sse(
    events: Subscription,
    *,
    until_run: str | None,
    status: int = 200,
) -> StreamingResponse:
    """Stream `events`; with `until_run` (a run id or a queue ticket) only that run's,
    ending after its run_finished. A ticket's run_started names the run it became."""

    async def body() -> AsyncIterator[bytes]:
        current = until_run
        try:
            async for event in events:
                if event is None:
                    yield b": ping\n\n"
                    continue
                if until_run is not None:
                    if event["type"] == "run_started" and event.get("ticket") == until_run:
                        current = event["run_id"]
                    if event["run_id"] != current:
                        continue
                data = json.dumps(event, separators=(",", ":"))
                yield f"id: {event['seq']}\nevent: {event['type']}\ndata: {data}\n\n".encode()
                if event["type"] == "run_finished" and event["run_id"] == current:
                    return
        finally:
            await events.aclose()

    return StreamingResponse(
        body(),
        status_code=status,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _require_session(state: GatewayState, session_id: str) -> SessionRecord:
    session = await state.store.get_session(session_id)
    if session is None:
        raise ApiError(
            404, "not_found", f"no session {session_id!r}", "list sessions at GET /api/sessions"
        )
    return session


def _title_from(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _busy(exc: RunActiveError | QueueFullError) -> ApiError:
    if isinstance(exc, QueueFullError):
        return ApiError(
            429,
            "queue_full",
            f"{exc.limit} messages are already waiting for the active run in this session",
            "wait for a run_finished event, cancel with POST /api/sessions/{id}/cancel, "
            "or raise agent.max_queued",
        )
    which = f" ({exc.run_id})" if exc.run_id else ""
    return ApiError(
        409,
        "run_active",
        f"a run{which} is still active in this session",
        "wait for its run_finished event, cancel it, or start a new session",
    )


def _accepted(a: Accepted) -> dict[str, Any]:
    out: dict[str, Any] = {"run_id": a.run_id, "after": a.after, "status": a.status}
    if a.ticket is not None:
        out.update(ticket=a.ticket, position=a.position)
    return out


def _session(s: SessionRecord) -> dict[str, Any]:
    return asdict(s)


def _message(m: MessageRecord) -> dict[str, Any]:
    msg = m.message
    return {
        "seq": m.seq,
        "run_id": m.run_id,
        "role": msg.role,
        "content": msg.content,
        "tool_calls": [asdict(c) for c in msg.tool_calls],
        "tool_call_id": msg.tool_call_id,
        "name": msg.name,
        "is_error": msg.is_error,
        "created_at": m.created_at,
    }


def _tool_call(t: ToolCallRecord) -> dict[str, Any]:
    out = asdict(t)
    del out["session_id"]
    return out


def _run(r: RunRecord) -> dict[str, Any]:
    out = asdict(r)
    out["usage"] = r.usage.counts()
    del out["session_id"]
    return out
