"""Start-up costs: `staffer --help`, `staffer start` to a healthy gateway, and idle RSS.

python -m bench.startup [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import psutil

from bench._harness import STAFFER, free_port, staffer_home, summary, wait_healthy

TARGETS = {"help_s": 0.3, "ready_s": 2.0, "rss_mb": 120.0}


def time_help(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*STAFFER, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def time_ready(runs: int) -> tuple[list[float], list[float]]:
    ready, rss = [], []
    for _ in range(runs):
        with staffer_home() as home:
            port = free_port()
            env = {**os.environ, "STAFFER_HOME": str(home)}
            started = time.perf_counter()
            proc = subprocess.Popen(
                [*STAFFER, "start", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_healthy(f"http://127.0.0.1:{port}", proc)
                ready.append(time.perf_counter() - started)
                time.sleep(1.0)  # idle
                rss.append(psutil.Process(proc.pid).memory_info().rss / 1e6)
            finally:
                proc.terminate()
                proc.wait(10)
    return ready, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    help_s = summary(time_help(args.runs))
    ready_runs = max(3, args.runs // 2)
    ready, rss = time_ready(ready_runs)
    ready_s, rss_mb = summary(ready), summary(rss)

    def verdict(value: float, key: str) -> str:
        return "met" if value < TARGETS[key] else "MISSED"

    print(f"start-up, {args.runs} runs of --help, {ready_runs} of start (fresh home each)")
    rows = [
        ("staffer --help", help_s["p50"], "s", "help_s"),
        ("start → healthy", ready_s["p50"], "s", "ready_s"),
        ("idle gateway RSS", rss_mb["p50"], "MB", "rss_mb"),
    ]
    for label, value, unit, key in rows:
        target = TARGETS[key]
        print(
            f"  {label:<18} p50 {value:8.3f} {unit:<2}  (target < {target:g} {unit}: "
            f"{verdict(value, key)})"
        )


if __name__ == "__main__":
    main()
