"""`staffer chat` cancels its run on Ctrl-C: a real CLI process against a live gateway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STAFFER = [sys.executable, "-m", "staffer"]
SLOW = {
    "inter_chunk_ms": 200,
    "chunk_chars": 1,
    "scripts": [{"match": "", "steps": [{"text": "a very slow answer that takes a while"}]}],
}


def test_ctrl_c_during_chat_cancels_the_run(live_gateway):
    gw = live_gateway(SLOW)
    env = {**os.environ, "STAFFER_HOME": str(gw.home.root), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*STAFFER, "chat", "--url", gw.url, "-m", "hello"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.read(1) == b"a"  # the answer is streaming
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert b"cancelled" in err
    with gw.client() as client:
        sessions = client.get("/api/sessions").json()["sessions"]
        deadline = time.monotonic() + 2
        while True:
            runs = client.get(f"/api/sessions/{sessions[0]['id']}").json()["runs"]
            if runs[0]["status"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert runs[0]["status"] == "cancelled"
