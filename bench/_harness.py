"""Shared benchmark plumbing: percentiles, a Staffer home, a gateway in its own process."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
STAFFER = [sys.executable, "-m", "staffer"]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "mean": statistics.fmean(values),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def staffer_home(config_text: str = "") -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="staffer-bench-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "STAFFER_HOME": str(home)}
        subprocess.run([*STAFFER, "init"], env=env, check=True, capture_output=True)
        if config_text:
            (home / "config.toml").write_text(config_text, encoding="utf-8")
        yield home


@contextmanager
def gateway_process(
    home: Path, port: int, *, cpu: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`staffer start` in its own process (optionally pinned to one core), ready when yielded."""
    env = {**os.environ, "STAFFER_HOME": str(home)}
    command = [*STAFFER, "start", "--port", str(port)]
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        command = ["taskset", "-c", str(cpu), *command]
    # A file, not a pipe: a pipe nobody reads would block the gateway once full.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> float:
    """Seconds until /healthz answers 200; raises with the process output if it died."""
    started = time.perf_counter()
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"staffer exited with {proc.returncode}; run it by hand to see why")
        try:
            if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"the gateway at {url} was not healthy after {timeout} s")


def pin_to(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def token_of(home: Path) -> str:
    return (home / "token").read_text().strip()
