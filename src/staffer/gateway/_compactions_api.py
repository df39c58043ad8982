"""GET /api/sessions/{id}/compactions: which older messages were summarized, and into what.

The web UI reads it with a session's history to mark where the model's context starts
from a summary (live runs announce the same with a ``compacted`` event). Nothing here
changes the history: compacted messages stay in ``GET /api/sessions/{id}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from staffer.gateway._errors import ApiError
from staffer.gateway._state import GatewayState
from staffer.store import CompactionRecord

router = APIRouter(tags=["sessions"])


@router.get("/api/sessions/{session_id}/compactions")
async def list_compactions(session_id: str, request: Request) -> dict[str, Any]:
    """The session's compactions, oldest first; `messages` is how many each summarized."""
    state: GatewayState = request.app.state.staffer
    if await state.store.get_session(session_id) is None:
        raise ApiError(
            404, "not_found", f"no session {session_id!r}", "list sessions at GET /api/sessions"
        )
    out: list[dict[str, Any]] = []
    covered = 0  # seqs are gap-free, so a range's length is its message count
    for record in await state.store.list_compactions(session_id):
        out.append(_compaction(record, record.upto_seq - covered))
        covered = max(covered, record.upto_seq)
    return {"compactions": out}


def _compaction(r: CompactionRecord, messages: int) -> dict[str, Any]:
    return {
        "id": r.id,
        "run_id": r.run_id,
        "upto_seq": r.upto_seq,
        "messages": max(messages, 0),
        "summary": r.summary,
        "model": r.model,
        "tokens_before": r.tokens_before,
        "tokens_after": r.tokens_after,
        "created_at": r.created_at,
    }
