"""The crash tests of issue 4: runs killed with SIGKILL at random steps resume and finish.

SQLite: 20 runs of a 30-step scripted task execute at once in a real `staffer start`
process, which is killed with SIGKILL at random moments (so each run at its own step)
and started again, three times. PostgreSQL: a `staffer gateway` and two `staffer worker`
processes share the database; one worker is killed mid-run and the other takes over.
Either way every run must finish, no tool call with a side effect may run twice (the
shell command logs its own starts and ends), and no finished model step is called again.
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import httpx
from tests.conftest import free_port, write_model_config
from tests.runs.crash_kit import STEPS, check_effects, launch, scenario, wait_all_finished

from staffer.config import Home, init_home
from staffer.testing.model_server import ScriptedModelServer

RUNS = 20
KILLS = 3


def _client(port: int, headers: dict[str, str]) -> httpx.Client:
    # no keep-alive: a pooled connection to a killed process would fail the next request
    limits = httpx.Limits(max_keepalive_connections=0)
    url = f"http://127.0.0.1:{port}"
    return httpx.Client(base_url=url, headers=headers, timeout=30, limits=limits)


def _busiest(
    client: httpx.Client, sessions: list[str], workers: dict[int, subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """The worker process executing the most runs right now (owner ids hold the pid)."""
    owners = collections.Counter(
        int(run["owner"].split(":")[1])
        for s in sessions
        for run in client.get(f"/api/sessions/{s}").json()["runs"]
        if run["status"] == "running" and run["owner"]
    )
    assert owners, "no run is executing"
    return workers[owners.most_common(1)[0][0]]


def _post_all(client: httpx.Client) -> list[str]:
    sessions = [client.post("/api/sessions").json()["id"] for _ in range(RUNS)]
    for session in sessions:
        assert client.post(f"/api/sessions/{session}/messages", json={"text": "go"}).is_success
    return sessions


def test_sigkill_at_random_steps_then_restart(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("STAFFER_CRASH_SEED"))
    home = Home(tmp_path / "home")
    init_home(home)
    log = tmp_path / "effects.log"
    with ScriptedModelServer(scenario(log)) as server:
        write_model_config(home, server, "[agent]\nmax_iterations = 40\n")
        port = free_port()
        headers = {"authorization": f"Bearer {home.read_token()}"}
        client = _client(port, headers)
        proc = launch(home, "start", "--port", str(port), port=port)
        try:
            sessions = _post_all(client)
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.3, 1.5))
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                proc = launch(home, "start", "--port", str(port), port=port)
            details = wait_all_finished(client, sessions, timeout=240)
        finally:
            proc.kill()
            proc.wait(10)
            client.close()
        resumed = sum(any(r["attempt"] > 1 for r in d["runs"]) for d in details)
        assert resumed >= RUNS // 2, f"only {resumed} runs were cut off by a kill"
        print("\nSQLite:", check_effects(log, details, len(server.requests), KILLS))
        for n in range(3, STEPS + 1, 3):
            assert (home.workspace / f"f{n}.txt").read_text() == str(n)


def test_postgres_two_workers_one_killed(tmp_path: Path, postgres_schema_url: str) -> None:
    rng = random.Random(os.environ.get("STAFFER_CRASH_SEED"))
    home = Home(tmp_path / "home")
    init_home(home)
    log = tmp_path / "effects.log"
    with ScriptedModelServer(scenario(log)) as server:
        write_model_config(
            home,
            server,
            "[agent]\nmax_iterations = 40\n"
            f"[store]\nurl = {json.dumps(postgres_schema_url)}\n"
            "[runs]\nlease_seconds = 3.0\nheartbeat_every = 0.5\n",
        )
        port = free_port()
        headers = {"authorization": f"Bearer {home.read_token()}"}
        client = _client(port, headers)
        gateway = launch(home, "gateway", "--port", str(port), port=port)
        workers = [launch(home, "worker"), launch(home, "worker")]
        try:
            sessions = _post_all(client)
            # a client of the gateway sees the events of a run a worker executes
            watched = client.post("/api/sessions").json()["id"]
            sessions.append(watched)
            url = f"/api/sessions/{watched}/messages?stream=true"
            with client.stream("POST", url, json={"text": "go"}) as response:
                kinds = []
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        kinds.append(json.loads(line[5:])["type"])
                        if kinds[-1] == "tool_call_finished":
                            break
            assert kinds[0] == "run_started"
            assert "tool_call_started" in kinds
            time.sleep(rng.uniform(0.2, 1.0))
            victim = _busiest(client, sessions, {w.pid: w for w in workers})
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            details = wait_all_finished(client, sessions, timeout=240)
        finally:
            for proc in (gateway, *workers):
                proc.kill()
                proc.wait(10)
            client.close()
        taken_over = sum(d["runs"][0]["attempt"] > 1 for d in details)
        assert taken_over >= 1, "the killed worker's runs were not taken over"
        owners = {d["runs"][0]["owner"] for d in details}
        assert len(owners) == 1, f"runs finished on {owners}: the surviving worker only"
        print("\nPostgreSQL:", check_effects(log, details, len(server.requests), 1))
