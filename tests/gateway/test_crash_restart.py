"""A gateway killed with SIGKILL in the middle of a tool call: the run resumes on restart,
the cut-off shell command is reported interrupted (not run twice), the session stays usable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
from tests.conftest import free_port, wait_healthy, write_model_config

from staffer.config import Home, init_home
from staffer.testing.model_server import ScriptedModelServer

STAFFER = [sys.executable, "-m", "staffer"]
SCENARIO = {
    "scripts": [
        {
            "match": "slow",
            "steps": [
                {"tool_calls": [{"name": "exec", "arguments": {"command": "sleep 30"}}]},
                {"text": "slept"},
            ],
        },
        {"match": "", "steps": [{"text": "fine: {last_user}"}]},
    ]
}


def _start(home: Home, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [*STAFFER, "start", "--port", str(port)],
        env={**os.environ, "STAFFER_HOME": str(home.root)},
        stdout=(home.root / "gateway.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    if wait_healthy(f"http://127.0.0.1:{port}"):
        return proc
    proc.kill()
    log = (home.root / "gateway.log").read_text()
    raise AssertionError(f"the gateway did not start:\n{log}")


def test_sigkill_mid_tool_then_restart(tmp_path):
    home = Home(tmp_path / "home")
    init_home(home)
    with ScriptedModelServer(SCENARIO) as server:
        write_model_config(home, server)
        port = free_port()
        headers = {"authorization": f"Bearer {home.read_token()}"}
        url = f"http://127.0.0.1:{port}"
        proc = _start(home, port)
        try:
            session_id = httpx.post(f"{url}/api/sessions", headers=headers).json()["id"]
            httpx.post(
                f"{url}/api/sessions/{session_id}/messages", headers=headers, json={"text": "slow"}
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait until the tool is running
                detail = httpx.get(f"{url}/api/sessions/{session_id}", headers=headers).json()
                if any(m["tool_calls"] for m in detail["messages"]):
                    break
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

        proc = _start(home, port)
        try:
            with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:  # the run resumes by itself
                    detail = client.get(f"/api/sessions/{session_id}").json()
                    if detail["runs"][0]["status"] != "running":
                        break
                    time.sleep(0.05)
                assert detail["runs"][0]["status"] == "done"
                assert detail["active_run"] is None
                tool_results = [m for m in detail["messages"] if m["role"] == "tool"]
                assert len(tool_results) == 1
                assert "interrupted" in tool_results[0]["content"]
                assert "not run again" in tool_results[0]["content"]
                assert detail["messages"][-1]["content"] == "slept"
                with client.stream(
                    "POST",
                    f"/api/sessions/{session_id}/messages?stream=true",
                    json={"text": "hello"},
                ) as response:
                    lines = [line for line in response.iter_lines() if "run_finished" in line]
                assert '"status":"done"' in lines[-1]
                assert "fine: hello" in lines[-1]
                sent = server.requests[-1].body["messages"]
                tool_results = [m for m in sent if m["role"] == "tool"]
                assert len(tool_results) == 1
                assert "interrupted" in tool_results[0]["content"]
        finally:
            proc.terminate()
            proc.wait(10)
