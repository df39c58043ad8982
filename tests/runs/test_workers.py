"""`staffer gateway` + `staffer worker` on PostgreSQL: cancel reaches the worker at once,
and a gateway refuses to start on SQLite (it would have no workers to hand runs to)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import free_port, write_model_config
from tests.runs.crash_kit import launch

from staffer.config import Home, init_home
from staffer.testing.model_server import ScriptedModelServer

SLOW = {
    "scripts": [{"match": "", "steps": [{"text": "a slow answer, written word by word " * 8}]}],
    "inter_chunk_ms": 300,
    "chunk_chars": 4,
}


def test_cancel_reaches_the_worker_within_a_second(tmp_path: Path, postgres_schema_url: str):
    home = Home(tmp_path / "home")
    init_home(home)
    with ScriptedModelServer(SLOW) as server:
        write_model_config(home, server, f"[store]\nurl = {json.dumps(postgres_schema_url)}\n")
        port = free_port()
        headers = {"authorization": f"Bearer {home.read_token()}"}
        gateway = launch(home, "gateway", "--port", str(port), port=port)
        worker = launch(home, "worker")
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
            ) as client:
                session = client.post("/api/sessions").json()["id"]
                url = f"/api/sessions/{session}/messages?stream=true"
                events = []
                cancelled_at = 0.0
                with client.stream("POST", url, json={"text": "go"}) as response:
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        events.append(json.loads(line[5:]))
                        if events[-1]["type"] == "text_delta" and not cancelled_at:
                            cancelled_at = time.monotonic()
                            answer = client.post(f"/api/sessions/{session}/cancel").json()
                            assert answer["cancelled"] is True
                        if events[-1]["type"] == "run_finished":
                            break
                elapsed = time.monotonic() - cancelled_at
                assert events[-1]["status"] == "cancelled"
                assert elapsed < 1.0, elapsed
                run = client.get(f"/api/sessions/{session}").json()["runs"][0]
                assert run["status"] == "cancelled"
                assert run["owner"].split(":")[1] == str(worker.pid)
        finally:
            for proc in (gateway, worker):
                proc.kill()
                proc.wait(10)


def test_a_gateway_without_a_shared_database_is_refused(tmp_path: Path):
    home = Home(tmp_path / "home")
    init_home(home)
    env = {"STAFFER_HOME": str(home.root), "PATH": "/usr/bin:/bin"}
    for command in (["gateway", "--port", str(free_port())], ["worker"]):
        done = subprocess.run(
            [sys.executable, "-m", "staffer", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0
        out = done.stdout + done.stderr
        assert "store.url" in out, out
        assert "postgresql://" in out
