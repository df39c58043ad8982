"""Bad input of every kind gives a clear error and loses nothing."""

from __future__ import annotations

import httpx
import pytest
from tests.gateway._sse import by_type, stream_turn

from staffer.config import Config, GatewayConfig, Home, init_home
from staffer.errors import ConfigError
from staffer.gateway import BackgroundGateway

ECHO = {"scripts": [{"match": "", "steps": [{"text": "ok"}]}]}


def test_healthz_needs_no_token(live_gateway):
    gw = live_gateway(None)
    response = httpx.get(f"{gw.url}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_missing_and_wrong_token_are_refused(live_gateway):
    gw = live_gateway(None)
    missing = httpx.get(f"{gw.url}/api/sessions")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert "Bearer" in missing.json()["error"]["fix"]
    wrong = httpx.get(f"{gw.url}/api/sessions", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_token"
    # the OpenAPI schema and docs are data too
    assert httpx.get(f"{gw.url}/openapi.json").status_code == 401


def test_every_data_route_needs_the_token(live_gateway):
    gw = live_gateway(None)
    from staffer.gateway._middleware import _is_public

    with gw.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert len(paths) > 4
    for path, methods in paths.items():
        if _is_public(path):
            continue
        concrete = path.replace("{session_id}", "x")
        for method in methods:
            response = httpx.request(method.upper(), f"{gw.url}{concrete}")
            assert response.status_code == 401, (method, path)


def test_the_bearer_scheme_is_case_insensitive(live_gateway):
    gw = live_gateway(None)
    response = httpx.get(f"{gw.url}/api/sessions", headers={"authorization": f"bearer {gw.token}"})
    assert response.status_code == 200


def test_a_blank_message_gets_422(live_gateway):
    gw = live_gateway(ECHO)
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        response = client.post(f"/api/sessions/{session_id}/messages", json={"text": "  \n "})
    assert response.status_code == 422
    assert "empty" in response.json()["error"]["message"]


def test_oversized_body_gets_413(live_gateway):
    gw = live_gateway(ECHO, config="[gateway]\nmax_body_bytes = 2048\n")
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        response = client.post(f"/api/sessions/{session_id}/messages", json={"text": "x" * 5000})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
        assert "max_body_bytes" in response.json()["error"]["fix"]

        # a chunked body without Content-Length is cut off as well
        def chunks():
            for _ in range(10):
                yield b"x" * 1000

        chunked = client.post(
            f"/api/sessions/{session_id}/messages",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413
        assert client.get(f"/api/sessions/{session_id}").json()["messages"] == []


def test_malformed_json_and_wrong_fields_get_422(live_gateway):
    gw = live_gateway(ECHO)
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        url = f"/api/sessions/{session_id}/messages"
        bad_json = client.post(
            url, content=b'{"text": ', headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 422
        assert "not valid JSON" in bad_json.json()["error"]["message"]
        missing = client.post(url, json={"txt": "hi"})
        assert missing.status_code == 422
        assert "text" in missing.json()["error"]["message"]
        empty = client.post(url, json={"text": ""})
        assert empty.status_code == 422
        assert client.get(f"/api/sessions/{session_id}").json()["messages"] == []


def test_unknown_session_is_404(live_gateway):
    gw = live_gateway(ECHO)
    with gw.client() as client:
        response = client.post("/api/sessions/nope/messages", json={"text": "hi"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_no_model_configured_says_how_to_connect_one(live_gateway):
    gw = live_gateway(None)
    with gw.client() as client:
        status = client.get("/api/status").json()
        assert status["model"]["configured"] is False
        assert "base_url" in status["model"]["help"]
        session_id = client.post("/api/sessions").json()["id"]
        response = client.post(f"/api/sessions/{session_id}/messages", json={"text": "hi"})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_model"
    assert "base_url" in error["fix"]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [("401", "rejected"), ("500", "500")],
)
def test_provider_errors_fail_the_run_clearly_and_keep_the_message(live_gateway, fault, expected):
    gw = live_gateway(
        {"faults": [{"kind": fault}], "scripts": [{"match": "", "steps": [{"text": "ok"}]}]}
    )
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        events = stream_turn(client, session_id, "hello")
        finished = events[-1]
        assert finished["type"] == "run_finished"
        assert finished["status"] == "failed"
        assert expected in finished["error"]
        assert "Traceback" not in finished["error"]
        detail = client.get(f"/api/sessions/{session_id}").json()
        assert [m["content"] for m in detail["messages"]] == ["hello"]
        assert detail["runs"][0]["status"] == "failed"
        # the session is usable again once the provider recovers
        again = stream_turn(client, session_id, "hello again")
        assert again[-1]["status"] == "done"
        assert again[-1]["text"] == "ok"


def _tool_then_answer(*calls: dict) -> dict:
    steps = [{"tool_calls": [c]} for c in calls]
    return {"scripts": [{"match": "", "steps": [*steps, {"text": "finished"}]}]}


@pytest.mark.parametrize(
    "path",
    ["../outside.txt", "/etc/passwd", "link/passwd"],
)
def test_path_escapes_are_refused_and_the_run_goes_on(live_gateway, path):
    gw = live_gateway(_tool_then_answer({"name": "read_file", "arguments": {"path": path}}))
    (gw.home.workspace / "link").symlink_to("/etc")
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        events = stream_turn(client, session_id, "read it")
    [finished_call] = by_type(events, "tool_call_finished")
    assert finished_call["result"] is None
    assert "outside the workspace" in finished_call["error"]
    assert events[-1]["status"] == "done"
    assert events[-1]["text"] == "finished"
    # the model was told why
    tool_message = gw.server.requests[-1].body["messages"][-1]
    assert tool_message["role"] == "tool"
    assert "outside the workspace" in tool_message["content"]


def test_write_through_symlink_escape_is_refused(live_gateway, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    gw = live_gateway(
        _tool_then_answer(
            {"name": "write_file", "arguments": {"path": "out/evil.txt", "content": "x"}}
        )
    )
    (gw.home.workspace / "out").symlink_to(outside)
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        events = stream_turn(client, session_id, "write it")
    assert "outside the workspace" in by_type(events, "tool_call_finished")[0]["error"]
    assert not (outside / "evil.txt").exists()


def test_a_hanging_tool_is_stopped_by_the_timeout_and_keeps_its_output(live_gateway):
    gw = live_gateway(
        _tool_then_answer({"name": "exec", "arguments": {"command": "echo partial; sleep 30"}}),
        config="[agent]\ntool_timeout = 0.5\n",
    )
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        events = stream_turn(client, session_id, "run it")
    [call] = by_type(events, "tool_call_finished")
    assert call["error"] is None
    assert "partial" in call["result"]
    assert "timed out after 0.5 s" in call["result"]
    assert call["duration_ms"] < 10_000
    assert events[-1]["status"] == "done"


def test_repeating_the_same_call_stops_the_run(live_gateway):
    same = {"name": "list_dir", "arguments": {"path": "."}}
    gw = live_gateway({"scripts": [{"match": "", "steps": [{"tool_calls": [same]}]}]})
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        events = stream_turn(client, session_id, "loop forever")
        assert events[-1]["status"] == "failed"
        assert "3 times in a row" in events[-1]["error"]
        assert len(by_type(events, "tool_call_finished")) == 2
        # the history stays valid: every tool call has an answer
        messages = client.get(f"/api/sessions/{session_id}").json()["messages"]
    call_ids = {c["id"] for m in messages for c in m["tool_calls"]}
    answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
    assert call_ids == answered


def test_iteration_cap_stops_the_run(live_gateway):
    steps = [
        {"tool_calls": [{"name": "list_dir", "arguments": {"path": str(i)}}]} for i in range(10)
    ]
    gw = live_gateway(
        {"scripts": [{"match": "", "steps": steps}]}, config="[agent]\nmax_iterations = 3\n"
    )
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        events = stream_turn(client, session_id, "go")
    assert events[-1]["status"] == "failed"
    assert "3 model calls" in events[-1]["error"]
    assert "max_iterations" in events[-1]["error"]


def test_non_loopback_bind_without_auth_is_refused(tmp_path):
    home = Home(tmp_path / "home")
    init_home(home)
    config = Config(gateway=GatewayConfig(host="0.0.0.0", auth=False))
    with pytest.raises(ConfigError, match="without authentication"):
        BackgroundGateway(config, home)
