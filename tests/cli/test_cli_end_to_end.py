"""The CLI as a user runs it: real processes, a real gateway, the scripted model server."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import free_port, wait_healthy, write_model_config

STAFFER = [sys.executable, "-m", "staffer"]

TODO = {
    "scripts": [
        {
            "match": "note",
            "steps": [
                {
                    "tool_calls": [
                        {"name": "write_file", "arguments": {"path": "n.txt", "content": "42"}}
                    ]
                },
                {"tool_calls": [{"name": "read_file", "arguments": {"path": "n.txt"}}]},
                {"text": "The note says {last_tool_result}."},
            ],
        }
    ]
}


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "STAFFER_HOME": str(home), "NO_COLOR": "1"}


def test_chat_one_shot_runs_the_three_step_task(live_gateway):
    gw = live_gateway(TODO)
    result = subprocess.run(
        [*STAFFER, "chat", "--url", gw.url, "-m", "write a note and read it back"],
        env=_env(gw.home.root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "The note says 42."
    assert "write_file" in result.stderr
    assert "read_file" in result.stderr
    assert (gw.home.workspace / "n.txt").read_text() == "42"


def test_chat_one_shot_exit_code_reflects_a_failed_run(live_gateway):
    gw = live_gateway(
        {"faults": [{"kind": "500"}], "scripts": [{"match": "", "steps": [{"text": "x"}]}]}
    )
    result = subprocess.run(
        [*STAFFER, "chat", "--url", gw.url, "-m", "hello"],
        env=_env(gw.home.root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "500" in result.stderr


def test_start_creates_the_home_and_prints_the_url_with_the_token(tmp_path):
    home = tmp_path / "home"
    port = free_port()
    proc = subprocess.Popen(
        [*STAFFER, "start", "--port", str(port)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "#token=" in line:
                break
        output = "".join(lines)
        token = (home / "token").read_text().strip()
        assert re.search(rf"http://127\.0\.0\.1:{port}/#token={re.escape(token)}", output), output
        # no model yet: it says how to connect one
        assert "base_url" in output
        assert stat.S_IMODE((home / "token").stat().st_mode) == 0o600
        for name in ("AGENTS.md", "SOUL.md", "USER.md", "TOOLS.md", "MEMORY.md", "HEARTBEAT.md"):
            assert (home / "workspace" / name).is_file()
        assert (home / "config.toml").is_file()
        assert (home / "staffer.db").is_file()
        status = httpx.get(
            f"http://127.0.0.1:{port}/api/status", headers={"authorization": f"Bearer {token}"}
        ).json()
        assert status["model"]["configured"] is False
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    assert proc.returncode == 0


def test_start_with_a_broken_config_exits_2_and_names_the_problem(tmp_path):
    home = tmp_path / "home"
    subprocess.run([*STAFFER, "init"], env=_env(home), check=True, capture_output=True)
    (home / "config.toml").write_text("[gateway]\nport = 'eighty'\n")
    result = subprocess.run(
        [*STAFFER, "start"], env=_env(home), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "gateway.port" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_start_with_a_hosted_model_but_no_key_exits_2(tmp_path):
    home = tmp_path / "home"
    subprocess.run([*STAFFER, "init"], env=_env(home), check=True, capture_output=True)
    (home / "config.toml").write_text('[model]\nname = "anthropic:claude-sonnet-4-5"\n')
    env = {k: v for k, v in _env(home).items() if k != "ANTHROPIC_API_KEY"}
    result = subprocess.run(
        [*STAFFER, "start"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "ANTHROPIC_API_KEY" in result.stdout + result.stderr


def test_history_survives_a_real_process_restart(tmp_path):
    from staffer.config import Home
    from staffer.testing.model_server import ScriptedModelServer

    home = Home(tmp_path / "home")
    subprocess.run([*STAFFER, "init"], env=_env(home.root), check=True, capture_output=True)
    with ScriptedModelServer({"scripts": [{"match": "", "steps": [{"text": "pong"}]}]}) as server:
        write_model_config(home, server)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        session_ids = []
        for _ in range(2):
            proc = subprocess.Popen(
                [*STAFFER, "start", "--port", str(port)],
                env=_env(home.root),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                assert wait_healthy(url), f"{url} never became healthy"
                result = subprocess.run(
                    [
                        *STAFFER,
                        "chat",
                        "--url",
                        url,
                        "-m",
                        "ping",
                        *(["--session", session_ids[0]] if session_ids else []),
                    ],
                    env=_env(home.root),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert result.returncode == 0, result.stderr
                assert result.stdout.strip() == "pong"
                token = home.read_token()
                sessions = httpx.get(
                    f"{url}/api/sessions", headers={"authorization": f"Bearer {token}"}
                ).json()
                session_ids = [s["id"] for s in sessions["sessions"]]
            finally:
                proc.terminate()
                proc.wait(15)
        detail = None
        proc = subprocess.Popen(
            [*STAFFER, "start", "--port", str(port)],
            env=_env(home.root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_healthy(url), f"{url} never became healthy"
            detail = httpx.get(
                f"{url}/api/sessions/{session_ids[0]}",
                headers={"authorization": f"Bearer {home.read_token()}"},
            ).json()
        finally:
            proc.terminate()
            proc.wait(15)
    assert len(session_ids) == 1
    assert [m["content"] for m in detail["messages"]] == ["ping", "pong", "ping", "pong"]
