"""Delegation between agents, end to end: a real gateway, two configured agents and the
scripted model; the sub-runs are ordinary durable runs nested under the caller's run."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.gateway._sse import stream_turn

SCENARIO: dict[str, Any] = {
    "scripts": [
        {  # the researcher, asked to do the impossible, loops until its iteration cap
            "match": "impossible",
            "steps": [{"tool_calls": [{"name": "list_dir", "arguments": {"path": "."}}]}],
        },
        {"match": "look up", "steps": [{"text": "found it: 42"}]},
        {
            "match": "plan",
            "steps": [
                {
                    "tool_calls": [
                        {
                            "name": "delegate",
                            "arguments": {"agent": "researcher", "task": "do the impossible"},
                        }
                    ]
                },
                {
                    "tool_calls": [
                        {
                            "name": "delegate",
                            "arguments": {"agent": "researcher", "task": "look up the answer"},
                        }
                    ]
                },
                {"text": "the plan is ready"},
            ],
        },
        {
            "match": "background",
            "steps": [
                {
                    "tool_calls": [
                        {
                            "name": "delegate",
                            "arguments": {
                                "agent": "researcher",
                                "task": "look up in the background",
                                "background": True,
                            },
                        },
                        {
                            "name": "send_to_agent",
                            "arguments": {"agent": "researcher", "message": "look up: fyi"},
                        },
                    ]
                },
                {"text": "started them"},
            ],
        },
    ]
}

AGENTS = """
[agents.researcher]
description = "finds facts"
max_iterations = 2
"""


def _tool_results(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(m["content"]) for m in detail["messages"] if m["role"] == "tool"]


def test_a_failed_delegation_comes_back_structured_and_can_be_retried(live_gateway):
    gw = live_gateway(SCENARIO, config=AGENTS)
    with gw.client() as client:
        session = client.post("/api/sessions").json()["id"]
        events = stream_turn(client, session, "plan the work")
        assert events[-1]["status"] == "done"
        assert events[-1]["text"] == "the plan is ready"
        detail = client.get(f"/api/sessions/{session}").json()
        failed, done = _tool_results(detail)
        assert failed["status"] == "failed"
        assert "stopped after 2 model calls" in failed["error"]
        assert "retry" in failed["hint"]
        assert done == {
            "status": "done",
            "agent": "researcher",
            "run_id": done["run_id"],
            "session_id": done["session_id"],
            "answer": "found it: 42",
        }
        parent = detail["runs"][0]["id"]
        for result, status in ((failed, "failed"), (done, "done")):
            run = client.get(f"/api/runs/{result['run_id']}").json()
            assert (run["status"], run["parent_run_id"], run["agent"]) == (
                status,
                parent,
                "researcher",
            )
        children = client.get(f"/api/runs/{parent}/children").json()["runs"]
        assert [c["id"] for c in children] == [failed["run_id"], done["run_id"]]
        sub = client.get(f"/api/sessions/{children[1]['session_id']}").json()
        assert sub["agent"] == "researcher"
        assert sub["messages"][0]["content"] == "look up the answer"


def test_background_delegation_and_a_peer_message_run_as_nested_runs(live_gateway):
    gw = live_gateway(SCENARIO, config=AGENTS)
    with gw.client() as client:
        session = client.post("/api/sessions").json()["id"]
        assert stream_turn(client, session, "background work")[-1]["text"] == "started them"
        detail = client.get(f"/api/sessions/{session}").json()
        started, sent = _tool_results(detail)
        assert started["status"] == "started"
        assert sent["status"] == "sent"
        parent = detail["runs"][0]["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            children = client.get(f"/api/runs/{parent}/children").json()["runs"]
            if all(c["status"] == "done" for c in children):
                break
            time.sleep(0.05)
        assert {c["id"] for c in children} == {started["run_id"], sent["run_id"]}
        assert all(c["status"] == "done" for c in children)
        peer = next(c for c in children if c["id"] == sent["run_id"])
        messages = client.get(f"/api/sessions/{peer['session_id']}").json()["messages"]
        assert messages[0]["content"] == "Message from agent main:\nlook up: fyi"
        assert messages[-1]["content"] == "found it: 42"


PARALLEL: dict[str, Any] = {
    "scripts": [
        SCENARIO["scripts"][0],
        {
            "match": "two at once",
            "steps": [
                {
                    "tool_calls": [
                        {
                            "name": "delegate",
                            "arguments": {
                                "agent": "researcher",
                                "task": f"do the impossible, part {n}",
                                "background": True,
                            },
                        }
                        for n in (1, 2)
                    ]
                },
                {"text": "asked"},
            ],
        },
    ]
}


def test_delegations_at_once_are_limited(live_gateway):
    gw = live_gateway(PARALLEL, config=AGENTS + "[runs]\ndelegate_max_parallel = 1\n")
    with gw.client() as client:
        session = client.post("/api/sessions").json()["id"]
        assert stream_turn(client, session, "two at once")[-1]["text"] == "asked"
        first, second = _tool_results(client.get(f"/api/sessions/{session}").json())
        assert first["status"] == "started"
        assert second["status"] == "failed"
        assert "the most at once is 1" in second["error"]
        assert "delegation_result" in second["hint"]
