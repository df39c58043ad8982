"""Sessions as lanes, over real HTTP: queueing, steering, rejecting, cancelling, stuck runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
from tests.gateway._sse import by_type, read_events, stream_turn

SLOW: dict[str, Any] = {
    "inter_chunk_ms": 40,
    "chunk_chars": 2,
    "scripts": [
        {"match": "second", "steps": [{"text": "answer two"}]},
        {"match": "also", "steps": [{"text": "steered answer"}]},
        {"match": "", "steps": [{"text": "a slow first answer, written a little at a time"}]},
    ],
}


def _new_session(client: httpx.Client) -> str:
    return str(client.post("/api/sessions", json={}).json()["id"])


def _events_until_finished(
    client: httpx.Client, session_id: str, after: int
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with client.stream("GET", f"/api/sessions/{session_id}/events?after={after}") as resp:
        for event in _iter(resp):
            events.append(event)
            if event["type"] == "run_finished":
                break
    return events


def _iter(resp: httpx.Response) -> Any:
    import json

    for line in resp.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


def _post(client: httpx.Client, session_id: str, text: str) -> httpx.Response:
    return client.post(f"/api/sessions/{session_id}/messages", json={"text": text})


def test_a_message_sent_during_a_run_is_queued_and_answered_after_it(live_gateway):
    gw = live_gateway(SLOW)
    with gw.client() as client:
        session_id = _new_session(client)
        first = _post(client, session_id, "first")
        assert first.json()["status"] == "running"
        with client.stream(
            "POST", f"/api/sessions/{session_id}/messages?stream=true", json={"text": "second"}
        ) as resp:
            assert resp.status_code == 202
            events = read_events(resp)
        detail = client.get(f"/api/sessions/{session_id}").json()

    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_queued"
    assert events[0]["position"] == 1
    ticket = events[0]["ticket"]
    assert events[0]["run_id"] == ticket  # a queued message is a queued run: its id is the ticket
    started = by_type(events, "run_started")[0]
    run_id = started["run_id"]
    assert run_id == ticket != first.json()["run_id"]
    # only the queued message's own run is in its stream
    assert {e["run_id"] for e in events} == {run_id}
    assert events[-1]["status"] == "done"
    assert events[-1]["text"] == "answer two"
    assert [r["status"] for r in detail["runs"]] == ["done", "done"]
    roles = [(m["role"], m["content"]) for m in detail["messages"]]
    assert roles == [
        ("user", "first"),
        ("assistant", "a slow first answer, written a little at a time"),
        ("user", "second"),
        ("assistant", "answer two"),
    ]
    assert detail["active_run"] is None
    assert detail["queued"] == []


def test_steering_joins_the_active_run_before_its_next_model_call(live_gateway):
    gw = live_gateway(SLOW, config='[agent]\nbusy = "steer"\n')
    with gw.client() as client:
        session_id = _new_session(client)
        first = _post(client, session_id, "first").json()
        time.sleep(0.2)  # the first answer is streaming
        steer = _post(client, session_id, "also mention the weather").json()
        assert steer == {"run_id": first["run_id"], "after": steer["after"], "status": "steered"}
        events = _events_until_finished(client, session_id, first["after"])
        detail = client.get(f"/api/sessions/{session_id}").json()

    assert by_type(events, "steered")[0]["text"] == "also mention the weather"
    assert events[-1]["status"] == "done"
    assert events[-1]["text"] == "steered answer"
    assert len(detail["runs"]) == 1
    calls = [r for r in gw.server.requests if r.path.endswith("/chat/completions")]
    assert len(calls) == 2
    last = calls[-1].body["messages"]
    assert [m["role"] for m in last[1:]] == ["user", "assistant", "user"]
    assert last[-1]["content"] == "also mention the weather"


def test_reject_mode_answers_409(live_gateway):
    gw = live_gateway(SLOW, config='[agent]\nbusy = "reject"\n')
    with gw.client() as client:
        session_id = _new_session(client)
        first = _post(client, session_id, "first")
        second = _post(client, session_id, "second")
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "run_active"
        _events_until_finished(client, session_id, first.json()["after"])
        assert stream_turn(client, session_id, "second")[-1]["status"] == "done"


def test_a_full_queue_answers_429_with_a_fix(live_gateway):
    gw = live_gateway(SLOW, config="[agent]\nmax_queued = 1\n")
    with gw.client() as client:
        session_id = _new_session(client)
        _post(client, session_id, "first")
        assert _post(client, session_id, "second").json()["position"] == 1
        third = _post(client, session_id, "third")
        assert third.status_code == 429
        error = third.json()["error"]
        assert error["code"] == "queue_full"
        assert "max_queued" in error["fix"]
        client.post(f"/api/sessions/{session_id}/cancel")


def test_cancel_during_a_slow_stream_stops_within_a_second(live_gateway):
    scenario = {**SLOW, "inter_chunk_ms": 300}
    gw = live_gateway(scenario)
    with gw.client() as client:
        session_id = _new_session(client)
        first = _post(client, session_id, "first").json()
        queued = _post(client, session_id, "second").json()
        assert queued["status"] == "queued"
        events: list[dict[str, Any]] = []
        cancelled_at = 0.0
        with client.stream(
            "GET", f"/api/sessions/{session_id}/events?after={first['after']}"
        ) as resp:
            for event in _iter(resp):
                events.append(event)
                if event["type"] == "text_delta" and not cancelled_at:
                    cancelled_at = time.monotonic()
                    answer = client.post(f"/api/sessions/{session_id}/cancel").json()
                    assert answer == {"cancelled": True, "run_id": first["run_id"], "dropped": 1}
                if event["type"] == "run_finished" and event["run_id"] == first["run_id"]:
                    break
        elapsed = time.monotonic() - cancelled_at
        assert elapsed < 1.0, elapsed
        finished = events[-1]
        assert finished["status"] == "cancelled"
        assert finished["error"] == "cancelled by the user"
        # the queued message was dropped, and said so on the stream
        dropped = [e for e in by_type(events, "run_finished") if e["run_id"] == queued["ticket"]]
        assert dropped
        assert dropped[0]["status"] == "cancelled"

        detail = client.get(f"/api/sessions/{session_id}").json()
        # the queued message was a queued run: it is kept, cancelled before it started
        assert [(r["status"], r["error"]) for r in detail["runs"]] == [
            ("cancelled", "cancelled by the user"),
            ("cancelled", "cancelled before it started"),
        ]
        assert detail["active_run"] is None
        # the session takes messages again
        assert stream_turn(client, session_id, "second")[-1]["status"] == "done"


def test_cancel_during_a_hanging_tool_call(live_gateway):
    gw = live_gateway(
        {
            "scripts": [
                {
                    "match": "",
                    "steps": [
                        {"tool_calls": [{"name": "exec", "arguments": {"command": "sleep 30"}}]},
                        {"text": "never"},
                    ],
                }
            ]
        }
    )
    with gw.client() as client:
        session_id = _new_session(client)
        first = _post(client, session_id, "run it").json()
        events: list[dict[str, Any]] = []
        cancelled_at = 0.0
        with client.stream(
            "GET", f"/api/sessions/{session_id}/events?after={first['after']}"
        ) as resp:
            for event in _iter(resp):
                events.append(event)
                if event["type"] == "tool_call_started":
                    time.sleep(0.2)
                    cancelled_at = time.monotonic()
                    answer = client.post(f"/api/runs/{first['run_id']}/cancel")
                    assert answer.json()["run_id"] == first["run_id"]
                if event["type"] == "run_finished":
                    break
        assert time.monotonic() - cancelled_at < 1.0
        assert events[-1]["status"] == "cancelled"
        detail = client.get(f"/api/sessions/{session_id}").json()
        tool = [m for m in detail["messages"] if m["role"] == "tool"]
        assert tool
        assert tool[0]["is_error"]
        assert "cancelled" in tool[0]["content"]
        assert client.post(f"/api/runs/{first['run_id']}/cancel").status_code == 404
        assert stream_turn(client, session_id, "again")[-1]["run_id"] != first["run_id"]


def test_a_run_without_progress_is_stopped_as_stuck(live_gateway):
    gw = live_gateway(
        {
            "faults": [{"kind": "stall", "seconds": 30}],
            "scripts": [{"match": "", "steps": [{"text": "fine now"}]}],
        },
        config="[agent]\nstuck_after = 0.5\n",
    )
    with gw.client() as client:
        session_id = _new_session(client)
        started = time.monotonic()
        events = stream_turn(client, session_id, "hello")
        elapsed = time.monotonic() - started
        assert elapsed < 3.0, elapsed
        finished = events[-1]
        assert finished["status"] == "failed"
        assert finished["error"] == "stopped: no progress for 0.5 s"
        notices = [e["text"] for e in by_type(events, "notice")]
        assert any("no progress" in n and "stuck_after" in n for n in notices)
        # the next message works (the stall fault was used up)
        assert stream_turn(client, session_id, "again")[-1]["text"] == "fine now"


def test_cancel_with_nothing_running_is_harmless(live_gateway):
    gw = live_gateway(SLOW)
    with gw.client() as client:
        session_id = _new_session(client)
        answer = client.post(f"/api/sessions/{session_id}/cancel")
        assert answer.status_code == 200
        assert answer.json() == {"cancelled": False, "run_id": None, "dropped": 0}
        assert client.post("/api/sessions/nope/cancel").status_code == 404


def test_concurrent_messages_in_two_sessions_run_side_by_side(live_gateway):
    gw = live_gateway(SLOW)
    results: dict[str, str] = {}

    def turn(name: str) -> None:
        with gw.client() as client:
            session_id = _new_session(client)
            results[name] = stream_turn(client, session_id, name)[-1]["status"]

    threads = [threading.Thread(target=turn, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"first": "done", "second": "done"}
