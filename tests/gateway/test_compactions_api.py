"""GET /api/sessions/{id}/compactions, in-process over a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from staffer.gateway._compactions_api import router
from staffer.gateway._errors import install_error_handlers
from staffer.gateway._hub import EventHub
from staffer.gateway._state import GatewayState
from staffer.models import Message
from staffer.store import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    async with SQLiteStore(tmp_path / "staffer.db") as opened:
        yield opened


@pytest.fixture
async def client(store: SQLiteStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    app.state.staffer = GatewayState(store, EventHub(), None, tmp_path, "no model")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as opened:
        yield opened


async def test_lists_compactions_with_how_many_messages_each_summarized(
    store: SQLiteStore, client: httpx.AsyncClient
) -> None:
    session = await store.create_session()
    run = await store.create_run(session.id)
    messages = [Message(role="user", content=str(i)) for i in range(12)]
    await store.append_messages(session.id, messages, run_id=run.id)
    assert (await client.get(f"/api/sessions/{session.id}/compactions")).json() == {
        "compactions": []
    }

    await store.record_compaction(
        session.id, upto_seq=4, summary="first", run_id=run.id, model="m", tokens_before=90
    )
    await store.record_compaction(session.id, upto_seq=10, summary="second", tokens_after=20)
    response = await client.get(f"/api/sessions/{session.id}/compactions")
    assert response.status_code == 200
    first, second = response.json()["compactions"]
    assert {k: first[k] for k in ("upto_seq", "messages", "summary", "model", "run_id")} == {
        "upto_seq": 4,
        "messages": 4,
        "summary": "first",
        "model": "m",
        "run_id": run.id,
    }
    assert (first["tokens_before"], second["tokens_after"]) == (90, 20)
    assert (second["upto_seq"], second["messages"], second["model"]) == (10, 6, None)
    assert isinstance(second["id"], int)
    assert second["created_at"] >= first["created_at"]
    # the summarized messages are all still in the history
    assert len(await store.list_messages(session.id)) == 12


async def test_unknown_session_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/sessions/nope/compactions")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
