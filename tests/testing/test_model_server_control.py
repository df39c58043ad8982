"""Scenario validation, scenario files, control endpoints, lifecycle and the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from staffer.errors import ConfigError
from staffer.testing.model_server import (
    ScenarioError,
    ScriptedModelServer,
    load_scenario,
    parse_scenario,
)

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        (
            {
                "scripts": [
                    {"match": "", "steps": [{"text": "a"}, {"tool_calls": [{"arguments": {}}]}]}
                ]
            },
            "scripts[0].steps[1].tool_calls[0]: missing 'name'",
        ),
        (
            {"scripts": [{"match": "(", "steps": [{}]}]},
            "scripts[0].match: invalid regular expression",
        ),
        ({"scripts": [{"match": ""}]}, "scripts[0]: missing 'steps'"),
        ({"scripts": [{"steps": []}]}, "scripts[0].steps: needs at least one step"),
        ({"scripts": [{"steps": [{"txt": "a"}]}]}, "scripts[0].steps[0].txt: unknown key 'txt'"),
        ({"scripts": [{"steps": [{"finish": "done"}]}]}, "scripts[0].steps[0].finish: unknown"),
        (
            {"scripts": [{"steps": [{"usage": {"input_tokens": "9"}}]}]},
            "scripts[0].steps[0].usage.input_tokens: must be an integer, not str",
        ),
        (
            {"scripts": [{"steps": [{"tool_calls": [{"name": "x", "arguments": 3}]}]}]},
            "scripts[0].steps[0].tool_calls[0].arguments: must be an object or a string",
        ),
        ({"scripts": {"match": ""}}, "scripts: must be a list"),
        ({"faults": ["418"]}, "faults[0].kind: unknown fault kind '418'"),
        (
            {"faults": [{"kind": "stall", "seconds": -1}]},
            "faults[0].seconds: must be a non-negative",
        ),
        ({"faults": [{"retry_after": 1}]}, "faults[0]: missing 'kind'"),
        ({"fault_rate": {"rate": 2}}, "fault_rate.rate: must be between 0 and 1"),
        ({"fault_rate": {"rate": 0.1, "kinds": ["drop", "nope"]}}, "fault_rate.kinds[1].kind"),
        ({"chunk_chars": 0}, "chunk_chars: must be at least 1"),
        ({"ttft": 5}, "ttft: unknown key 'ttft'"),
        ([], "scenario: must be an object"),
    ],
)
def test_invalid_scenarios_name_the_bad_key(scenario: Any, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(scenario)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ConfigError)


def test_faults_count_expands_and_strings_are_kinds() -> None:
    scenario = parse_scenario({"faults": [{"kind": "429", "count": 3}, "500"]})
    assert [fault.kind for fault in scenario.faults] == ["429", "429", "429", "500"]
    assert scenario.faults[0].retry_after == 1.0


def test_scenario_files_json_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text(
        'ttft_ms = 5\n[[scripts]]\nmatch = "hi"\n[[scripts.steps]]\ntext = "hello"\n'
        '[[scripts.steps.tool_calls]]\nname = "t"\narguments = { a = 1 }\n'
        '[[faults]]\nkind = "429"\nretry_after = 2\n'
    )
    json_file = tmp_path / "s.json"
    json_file.write_text('{"scripts": [{"match": "hi", "steps": [{"text": "hello"}]}]}')
    broken = tmp_path / "broken.json"
    broken.write_text("{")

    from_toml = load_scenario(toml)
    assert from_toml.ttft_ms == 5
    assert from_toml.scripts[0].steps[0].tool_calls[0].arguments == {"a": 1}
    assert from_toml.faults[0].retry_after == 2
    assert load_scenario(json_file).scripts[0].steps[0].text == "hello"
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(broken)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.json")


def test_construction_rejects_a_bad_scenario_before_listening() -> None:
    with pytest.raises(ScenarioError, match="faults"):
        ScriptedModelServer({"faults": "429"})


def test_no_matching_script_is_a_clear_400() -> None:
    scenario = {"scripts": [{"match": "^deploy", "steps": [{"text": "ok"}]}]}
    with ScriptedModelServer(scenario) as server:
        response = httpx.post(server.openai_base_url + "/chat/completions", json=CHAT)
    assert response.status_code == 400
    assert "no script matches the last user message 'hi'" in response.json()["error"]["message"]


def test_bad_request_bodies_and_unknown_routes() -> None:
    with ScriptedModelServer() as server, httpx.Client(base_url=server.url) as http:
        not_json = http.post("/v1/chat/completions", content=b"{")
        no_messages = http.post("/v1/messages", json={"model": "m"})
        unknown = http.get("/v1/embeddings")
        wrong_method = http.get("/v1/messages", headers={"anthropic-version": "1"})
    assert not_json.status_code == 400
    assert "JSON object" in not_json.json()["error"]["message"]
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["type"] == "invalid_request_error"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["type"] == "error"


def test_control_endpoints() -> None:
    with ScriptedModelServer() as server, httpx.Client(base_url=server.url) as http:
        replaced = http.post(
            "/_scripted/scenario",
            json={"faults": ["503"], "scripts": [{"match": "", "steps": [{"text": "new"}]}]},
        )
        chat = "/v1/chat/completions"
        statuses = [http.post(chat, json=CHAT).status_code for _ in range(2)]
        recorded = http.get("/_scripted/requests").json()
        rejected = http.post("/_scripted/scenario", json={"scripts": [{"steps": [{"x": 1}]}]})
        not_json = http.post("/_scripted/scenario", content=b"nope")
        reset = http.post("/_scripted/reset")
        after_reset = http.post(chat, json=CHAT)

        assert replaced.json() == {"ok": True}
        assert statuses == [503, 200]
        assert [item["path"] for item in recorded] == ["/v1/chat/completions"] * 2
        assert recorded[0]["body"] == CHAT
        assert "user-agent" in recorded[0]["headers"]
        assert rejected.status_code == 400
        assert rejected.json()["error"].startswith("scripts[0].steps[0].x: unknown key")
        assert not_json.status_code == 400
        assert reset.json() == {"ok": True}
        assert after_reset.status_code == 503  # the fault queue started again
        assert len(server.requests) == 1


def test_set_scenario_restarts_the_fault_queue_and_recording_can_be_off() -> None:
    with (
        ScriptedModelServer({"faults": ["500"]}, record_requests=False) as server,
        httpx.Client(base_url=server.openai_base_url) as http,
    ):
        first = http.post("/chat/completions", json=CHAT).status_code
        server.set_scenario({"faults": ["502"]})
        second = http.post("/chat/completions", json=CHAT).status_code
        third = http.post("/chat/completions", json=CHAT)
        assert (first, second, third.status_code) == (500, 502, 200)
        assert third.json()["choices"][0]["message"]["content"] == "OK"
        assert server.requests == []


def test_start_is_fast_and_stop_cuts_stalled_requests() -> None:
    started = time.perf_counter()
    server = ScriptedModelServer({"faults": [{"kind": "stall", "seconds": 30}]})
    server.start()
    startup = time.perf_counter() - started
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(server.openai_base_url + "/chat/completions", json=CHAT, timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.1)
    stopping = time.perf_counter()
    server.stop()
    server.stop()  # twice is fine
    shutdown = time.perf_counter() - stopping
    caller.join(timeout=5)

    assert startup < 0.3
    assert shutdown < 1.0
    assert len(errors) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/v1/models")


def test_explicit_port_and_second_start_is_refused() -> None:
    with ScriptedModelServer() as first:
        with pytest.raises(RuntimeError, match="already running"):
            first.start()
        with pytest.raises(OSError, match="already in use"):
            ScriptedModelServer(port=first.port).start()


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "staffer.testing.model_server", *args]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_cli_serves_a_scenario_file_until_terminated(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text('{"models": ["gpt-scripted"], "scripts": [{"match": "", "steps": [{}]}]}')
    process = _cli("--scenario", str(scenario), "--port", "0")
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", first_line)
        assert match, first_line
        models = httpx.get(match.group(1) + "/v1/models").json()
        assert models["data"][0]["id"] == "gpt-scripted"
        assert "OpenAI base URL" in process.stdout.readline()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr


def test_cli_reports_a_bad_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.json"
    scenario.write_text('{"faults": [{"kind": "teapot"}]}')
    process = _cli("--scenario", str(scenario), "--port", "0")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "faults[0].kind: unknown fault kind 'teapot'" in stderr
