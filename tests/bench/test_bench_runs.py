"""`python -m bench.runs --quick` runs both parts end to end and reports both targets.

A smoke test of the benchmark, not a timed test: the figures are not checked, only that
every run finished and the report has its rows. PostgreSQL is the server named by
``STAFFER_TEST_POSTGRES_URL`` or, without one, a throwaway server the benchmark starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench._harness import ROOT
from bench._postgres import find_bindir


def postgres_args() -> list[str]:
    url = os.environ.get("STAFFER_TEST_POSTGRES_URL")
    if url:
        return ["--postgres-url", url]
    if find_bindir() is not None:
        return []
    why = "PostgreSQL is not installed and STAFFER_TEST_POSTGRES_URL is not set"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the durable-runs benchmark: {why}", pytrace=False)
    pytest.skip(why)


def test_quick_run_reports_both_parts(tmp_path: Path) -> None:
    results = tmp_path / "runs.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.runs", "--quick", "--json", str(results), *postgres_args()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = done.stdout
    for row in ("disk fsync", "SQLite, synchronous=NORMAL", "PostgreSQL", "target: overhead"):
        assert row in report, report
    assert "target: PostgreSQL p99 queueing delay" in report, report
    loads = json.loads(results.read_text())["loads"]
    assert [load["backend"] for load in loads] == ["SQLite", "PostgreSQL"]
    for load in loads:
        assert (load["runs"], load["failed"], load["tool_errors"]) == (20, 0, 0), load
        assert load["steps"] == 20 * 9  # 5 model steps and 4 tool steps per run
        assert len(load["queue_ms"]) == 20
