"""GET /api/agents and the agent of a new session, through the ASGI app in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from staffer.config import Config, load_config
from staffer.gateway._agents_api import install_agents_api
from staffer.gateway._errors import install_error_handlers
from staffer.gateway._hub import EventHub
from staffer.gateway._routes import router
from staffer.gateway._state import GatewayState
from staffer.store import SQLiteStore, Store

AGENTS = """
[agents.scout]
description = "Finds sources"
tools = ["read_file", "list_dir"]
team = "research"

[agents.front]
description = "Answers the web chat"

[[bindings]]
agent = "front"
channel = "web"
"""


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with SQLiteStore(tmp_path / "staffer.db") as opened:
        yield opened


def app_for(store: Store, tmp_path: Path, config: Config | None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    if config is not None:
        install_agents_api(app, config)
    app.state.staffer = GatewayState(
        store=store, hub=EventHub(), runs=None, workspace=tmp_path, model_help=""
    )
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def configured(tmp_path: Path, text: str = AGENTS) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def test_list_agents(store: Store, tmp_path: Path) -> None:
    async with client(app_for(store, tmp_path, configured(tmp_path))) as http:
        response = await http.get("/api/agents")
    assert response.status_code == 200
    body = response.json()
    assert body["default"] == "front"
    assert body["agents"] == [
        {
            "name": "main",
            "description": "",
            "model": None,
            "team": None,
            "tools": ["read_file", "write_file", "edit_file", "list_dir", "exec"],
        },
        {
            "name": "scout",
            "description": "Finds sources",
            "model": None,
            "team": "research",
            "tools": ["read_file", "list_dir", "blackboard_read", "blackboard_write"],
        },
        {
            "name": "front",
            "description": "Answers the web chat",
            "model": None,
            "team": None,
            "tools": ["read_file", "write_file", "edit_file", "list_dir", "exec"],
        },
    ]


async def test_a_session_gets_the_agent_it_names_or_the_bound_one(
    store: Store, tmp_path: Path
) -> None:
    async with client(app_for(store, tmp_path, configured(tmp_path))) as http:
        named = await http.post("/api/sessions", json={"agent": "scout", "title": "t"})
        assert named.status_code == 201
        assert (named.json()["agent"], named.json()["title"]) == ("scout", "t")
        bound = await http.post("/api/sessions", json={})
        assert bound.json()["agent"] == "front", "web sessions go where the bindings say"
        no_body = await http.post("/api/sessions")
        assert no_body.json()["agent"] == "front"
        main = await http.post("/api/sessions", json={"agent": "main"})
        assert main.json()["agent"] == "main"
    stored = await store.get_session(named.json()["id"])
    assert stored is not None
    assert stored.agent == "scout"


async def test_an_unknown_agent_is_422_with_the_list(store: Store, tmp_path: Path) -> None:
    async with client(app_for(store, tmp_path, configured(tmp_path))) as http:
        response = await http.post("/api/sessions", json={"agent": "scuot"})
        sessions = (await http.get("/api/sessions")).json()["sessions"]
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_agent"
    assert error["message"] == "no agent named 'scuot'; the agents are: main, scout, front"
    assert "GET /api/agents" in error["fix"]
    assert sessions == [], "nothing was created"


async def test_without_the_agents_api_there_is_only_main(store: Store, tmp_path: Path) -> None:
    async with client(app_for(store, tmp_path, None)) as http:
        assert (await http.post("/api/sessions")).json()["agent"] == "main"
        refused = await http.post("/api/sessions", json={"agent": "scout"})
        assert refused.status_code == 422
        assert (await http.get("/api/agents")).status_code == 404
