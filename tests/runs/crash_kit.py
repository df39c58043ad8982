"""What the crash tests share: the 30-step scripted task, starting `staffer` processes,
waiting for runs, and checking that no side effect happened twice."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import wait_healthy

from staffer.config import Home

STEPS = 30  # tool-calling model steps per run, then a final answer


def scenario(log: Path) -> dict[str, Any]:
    """Every third step writes a file (safe to run again after a crash); the others run a
    shell command that logs its own start and end, with the idempotency key it was given."""
    steps: list[dict[str, Any]] = []
    for n in range(1, STEPS + 1):
        if n % 3 == 0:
            call = {"name": "write_file", "arguments": {"path": f"f{n}.txt", "content": f"{n}"}}
        else:
            command = (
                f'echo "start {n} $STAFFER_IDEMPOTENCY_KEY" >> {log}; sleep 0.02; '
                f'echo "end {n} $STAFFER_IDEMPOTENCY_KEY" >> {log}'
            )
            call = {"name": "exec", "arguments": {"command": command}}
        steps.append({"tool_calls": [call]})
    steps.append({"text": "all done"})
    return {"scripts": [{"match": "", "steps": steps}], "ttft_ms": 5}


def launch(home: Home, *args: str, port: int | None = None) -> subprocess.Popen[bytes]:
    """`staffer ARGS` for `home`; with `port`, wait until it answers /healthz."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "staffer", *args],
        env={**os.environ, "STAFFER_HOME": str(home.root)},
        stdout=(home.root / "staffer.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    if port is None or wait_healthy(f"http://127.0.0.1:{port}"):
        return proc
    proc.kill()
    raise AssertionError(f"staffer did not start:\n{(home.root / 'staffer.log').read_text()}")


def wait_all_finished(
    client: httpx.Client, sessions: list[str], timeout: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        details = [client.get(f"/api/sessions/{s}").json() for s in sessions]
        if all(d["runs"] and d["runs"][-1]["status"] not in ("queued", "running") for d in details):
            return details
        if time.monotonic() > deadline:
            states = collections.Counter(d["runs"][-1]["status"] for d in details if d["runs"])
            raise AssertionError(f"runs still unfinished after {timeout} s: {states}")
        time.sleep(0.2)


def check_effects(log: Path, details: list[dict[str, Any]], model_requests: int, kills: int) -> str:
    """Assert every run finished with one result per call and no side effect twice;
    return a one-line summary."""
    starts: collections.Counter[tuple[str, str]] = collections.Counter()
    ends: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in log.read_text().splitlines():
        kind, n, key = line.split()
        (starts if kind == "start" else ends)[(key, n)] += 1
    assert max(starts.values()) == 1, "a side effect started twice"
    assert max(ends.values(), default=1) == 1, "a side effect finished twice"
    interrupted = 0
    for detail in details:
        run = detail["runs"][-1]
        assert run["status"] == "done", run
        assert detail["messages"][-1]["content"] == "all done"
        results = [m for m in detail["messages"] if m["role"] == "tool"]
        assert len(results) == STEPS, "every tool call has exactly one result"
        assert len({m["tool_call_id"] for m in results}) == STEPS
        for message in results:
            if "interrupted" in message["content"]:
                interrupted += 1
                assert message["name"] == "exec"  # write_file is simply run again
            elif message["name"] == "exec":
                key = f"{run['id']}:{message['tool_call_id']}"
                ran = [k for k in starts if k[0] == key]
                assert len(ran) == 1, (key, message)
                assert ends[ran[0]] == 1, (key, message)
    runs = len(details)
    # a model step is called again only when it was in flight at a kill
    assert model_requests <= runs * (STEPS + 1) + runs * kills, model_requests
    return (
        f"{runs} runs x {STEPS} steps, {kills} kill(s): all done; {interrupted} tool calls "
        f"reported interrupted, 0 run twice; {model_requests} model calls for "
        f"{runs * (STEPS + 1)} model steps"
    )
