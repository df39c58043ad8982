"""The text report of `bench.runs`: both tables and the two targets of issue 4."""

from __future__ import annotations

import argparse
import math
import os
import platform
from typing import Any

from bench._load import MODEL_LATENCY_MS, STEPS_PER_RUN, TOOL_CALLS, LoadResult

TARGET_FSYNCS = 2.0  # durable overhead per step, in fsyncs' worth
TARGET_P99_S = 1.0  # queueing delay p99 of the load on PostgreSQL


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def report(args: argparse.Namespace, part1: dict[str, Any], loads: list[LoadResult]) -> str:
    f = part1["fsync_us"]
    rounds = ", ".join(f"{x:.0f}" for x in part1["fsync_rounds_us"])
    floors = "; ".join(f"{name} {us:.0f} µs" for name, us in part1["floors_us"].items())
    load = "; load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    out = [
        f"durable runs — {os.cpu_count()} cores, Python {platform.python_version()}{load}",
        "",
        f"step overhead: {args.steps} steps x {args.rounds} rounds, one step at a time, "
        "median of the rounds (uvloop, core 0)",
        f"  disk fsync (pwrite 512 B + fsync, same directory): {f:.0f} µs "
        f"({1e6 / f:,.0f}/s; rounds {rounds})",
        f"  baseline, steps appended to a list in memory: {part1['baseline_us']:.1f} µs",
        f"  floors: {floors}",
        "",
        f"  {'backend':<40} messages only  commit_step   overhead  fsyncs' worth  "
        "journal adds  target",
    ]
    for r in part1["rows"]:
        out.append(
            f"  {r['backend']:<40} {r['messages_only_us']:10.0f} µs {r['durable_us']:9.0f} µs"
            f" {r['overhead_us']:7.0f} µs {r['fsyncs_worth']:11.1f}    {r['journal_us']:+8.0f} µs"
            f"  {verdict(r['met'])}"
        )
    out += [f"    {r['backend']}: {r['settings']}" for r in part1["rows"]]
    out += [
        "  overhead = commit_step − baseline; fsyncs' worth = overhead ÷ fsync; "
        "journal adds = commit_step − messages only",
        f"  target: overhead ≤ {TARGET_FSYNCS:g} fsyncs' worth per step",
        "",
    ]
    if loads:
        out += load_report(loads)
    return "\n".join(out)


def load_report(loads: list[LoadResult]) -> list[str]:
    n = loads[0].runs
    out = [
        f"load: {n} sessions, one run each, queued at once; a run = {TOOL_CALLS + 1} model calls "
        f"({MODEL_LATENCY_MS} ms to first token) + {TOOL_CALLS} read_file calls = "
        f"{STEPS_PER_RUN} journaled steps",
        "  backend      processes  runs/s  steps/s   queueing p50 / p99   end to end p50 / p99"
        "   RSS idle → peak   failed",
    ]
    for r in loads:
        rate = r.runs / r.elapsed if r.elapsed else math.nan
        step_rate = r.steps / r.elapsed if r.elapsed else math.nan
        out.append(
            f"  {r.backend:<12} {r.processes:>2} x {r.max_concurrent:<4} {rate:7.1f} "
            f"{step_rate:8.0f}   {r.q(r.queue_ms, 0.5):6.0f} / {r.q(r.queue_ms, 0.99):5.0f} ms"
            f"   {r.q(r.e2e_ms, 0.5):7.0f} / {r.q(r.e2e_ms, 0.99):5.0f} ms"
            f"   {r.rss_idle_mb:4.0f} → {r.rss_peak_mb:4.0f} MB   {r.failed}"
        )
    for r in loads:
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in r.cpu.items())
        each = f"; largest process {r.rss_peak_each_mb:.0f} MB" if r.processes > 1 else ""
        out.append(
            f"    {r.backend}: all done in {r.elapsed:.2f} s; CPU-seconds: {cpu}{each}; "
            f"tool errors: {r.tool_errors}"
        )
    out.append(
        "  processes = executing processes x max_concurrent each; queueing = queued → claimed;"
        " RSS = the executing processes together"
    )
    for r in loads:
        if r.backend == "PostgreSQL":
            p99 = r.q(r.queue_ms, 0.99) / 1000
            ok = p99 < TARGET_P99_S and r.failed == 0
            out.append(
                f"  target: PostgreSQL p99 queueing delay < {TARGET_P99_S:g} s with {n} "
                f"sessions: {verdict(ok)} ({p99:.2f} s)"
            )
    return out
