"""End to end over real HTTP: a loopback gateway, the real OpenAI adapter, the scripted server."""

from __future__ import annotations

import json
from typing import Any

from tests.gateway._sse import by_type, stream_turn

WRITE_READ_ANSWER: dict[str, Any] = {
    "chunk_chars": 4,
    "scripts": [
        {
            "match": "note",
            "steps": [
                {
                    "tool_calls": [
                        {
                            "name": "write_file",
                            "arguments": {"path": "notes/todo.txt", "content": "buy milk"},
                        }
                    ]
                },
                {"tool_calls": [{"name": "read_file", "arguments": {"path": "notes/todo.txt"}}]},
                {"text": "The note says: {last_tool_result}"},
            ],
        }
    ],
}


def test_three_step_task_writes_reads_and_answers(live_gateway):
    gw = live_gateway(WRITE_READ_ANSWER)
    with gw.client() as client:
        session = client.post("/api/sessions", json={"title": "todo"}).json()
        events = stream_turn(client, session["id"], "Write a note, then read it back.")

    assert (gw.home.workspace / "notes" / "todo.txt").read_text() == "buy milk"
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started"
    assert kinds[-1] == "run_finished"
    finished = events[-1]
    assert finished["status"] == "done", finished
    assert finished["text"] == "The note says: buy milk"
    # streamed in pieces, in order, adding up to the answer
    deltas = [e["text"] for e in by_type(events, "text_delta")]
    assert len(deltas) > 1
    assert "".join(deltas) == finished["text"]
    started = by_type(events, "tool_call_started")
    done = by_type(events, "tool_call_finished")
    assert [e["name"] for e in started] == ["write_file", "read_file"]
    assert json.loads(started[0]["arguments"]) == {"path": "notes/todo.txt", "content": "buy milk"}
    assert all(e["error"] is None and e["duration_ms"] >= 0 for e in done)
    assert done[1]["result"] == "buy milk"
    assert finished["usage"]["input_tokens"] > 0
    assert finished["usage"]["output_tokens"] > 0
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)

    # the model saw the tool results of the earlier steps
    requests = [r for r in gw.server.requests if r.path.endswith("/chat/completions")]
    assert len(requests) == 3
    last_messages = requests[-1].body["messages"]
    assert last_messages[0]["role"] == "system"
    assert [m["role"] for m in last_messages[1:]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]


def test_history_is_persisted_and_survives_restart(live_gateway):
    gw = live_gateway(WRITE_READ_ANSWER)
    with gw.client() as client:
        session_id = client.post("/api/sessions", json={}).json()["id"]
        stream_turn(client, session_id, "Write a note please.")
    gw.restart()
    with gw.client() as client:
        sessions = client.get("/api/sessions").json()["sessions"]
        assert [s["id"] for s in sessions] == [session_id]
        detail = client.get(f"/api/sessions/{session_id}").json()
    roles = [m["role"] for m in detail["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert detail["messages"][0]["content"] == "Write a note please."
    assert detail["messages"][-1]["content"] == "The note says: buy milk"
    assert [t["name"] for t in detail["tool_calls"]] == ["write_file", "read_file"]
    assert detail["runs"][0]["status"] == "done"
    assert detail["runs"][0]["usage"]["output_tokens"] > 0
    assert detail["title"] == "Write a note please."


def test_a_second_turn_sees_the_first(live_gateway):
    gw = live_gateway({"scripts": [{"match": "", "steps": [{"text": "echo: {last_user}"}]}]})
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        first = stream_turn(client, session_id, "one")
        second = stream_turn(client, session_id, "two")
    assert first[-1]["text"] == "echo: one"
    assert second[-1]["text"] == "echo: two"
    body = gw.server.requests[-1].body
    assert [m["content"] for m in body["messages"][1:]] == ["one", "echo: one", "two"]


def test_post_then_follow_the_event_stream(live_gateway):
    gw = live_gateway({"scripts": [{"match": "", "steps": [{"text": "hello there"}]}]})
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        started = client.post(f"/api/sessions/{session_id}/messages", json={"text": "hi"})
        assert started.status_code == 202
        run_id, after = started.json()["run_id"], started.json()["after"]
        events: list[dict[str, Any]] = []
        with client.stream("GET", f"/api/sessions/{session_id}/events?after={after}") as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["type"] == "run_finished":
                        break
    assert {e["run_id"] for e in events} == {run_id}
    assert events[-1]["text"] == "hello there"


def test_message_while_a_run_is_active_is_refused_with_409(live_gateway):
    gw = live_gateway(
        {
            "inter_chunk_ms": 50,
            "chunk_chars": 1,
            "scripts": [{"match": "", "steps": [{"text": "slow answer"}]}],
        },
        config='[agent]\nbusy = "reject"\n',
    )
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        first = client.post(f"/api/sessions/{session_id}/messages", json={"text": "a"})
        assert first.status_code == 202
        second = client.post(f"/api/sessions/{session_id}/messages", json={"text": "b"})
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "run_active"
        with client.stream(
            "GET", f"/api/sessions/{session_id}/events?after={first.json()['after']}"
        ) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: ") and '"run_finished"' in line:
                    break
        # once the run is over the session takes messages again
        third = stream_turn(client, session_id, "c")
        assert third[-1]["status"] == "done"


def test_status_reports_the_model(live_gateway):
    gw = live_gateway({"scripts": [{"match": "", "steps": [{"text": "x"}]}]})
    with gw.client() as client:
        status = client.get("/api/status").json()
    assert status["model"] == {"configured": True, "name": "openai:scripted", "help": None}
    assert status["workspace"] == str(gw.home.workspace)


def test_openapi_schema_is_published(live_gateway):
    gw = live_gateway(None)
    with gw.client() as client:
        schema = client.get("/openapi.json").json()
    assert "/api/sessions/{session_id}/messages" in schema["paths"]
