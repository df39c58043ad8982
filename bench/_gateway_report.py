"""The text report of `bench.gateway`: the tables, the derived figures and the targets."""

from __future__ import annotations

import math
import os
import platform
from typing import Any

MAX_ADDED_P99_MS, MAX_ERROR_RATE = 10.0, 0.001
PATHS = (("staffer", "Staffer"), ("litellm", "LiteLLM"))


def _f(value: float, digits: int = 2) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def sustained(results: dict[str, Any], name: str) -> int | None:
    """The highest rate at which added p99 < 10 ms and errors < 0.1 %, or None."""
    best = None
    for rate, row in results[name]["rates"].items():
        base = results[name]["direct"]["rates"][rate]
        added_p99 = row["p99"] - base["p99"]
        if row["errors"] / row["n"] < MAX_ERROR_RATE and added_p99 < MAX_ADDED_P99_MS:
            best = max(best or 0, int(rate))
    return best


def added(results: dict[str, Any], name: str, mode: str, rate: int, key: str) -> float:
    """`key` (p50, p99, ttft_p50) of path `name` minus that of its interleaved direct requests."""
    row = results[name][mode][rate]
    return float(row[key] - results[name]["direct"][mode][rate][key])


def report(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        f"gateway overhead, {cfg['duration']:g} s per rate and path; mock: first chunk after "
        f"{cfg['latency_ms']:g} ms, {cfg['chunks']} chunks {cfg['gap_ms']:g} ms apart",
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
        "gateway on core 0, mock + load generator on core 1",
        "direct requests (100/s, or the path's rate if lower) are interleaved with each path's",
    ]
    if cfg.get("busy_core"):
        lines.append("--busy-core: a lowest-priority spinner kept the gateway's core from idling")
    lines += [
        "",
        "non-streamed, latency from the scheduled time (ms); added = path - direct",
        "  rate   path      direct p50/p99 |   path p50/p99 |  added p50/p99   errors   gen rate",
    ]
    paths = [(k, label) for k, label in PATHS if k in results]
    for rate in cfg["rates"]:
        for key, label in paths:
            row, base = results[key]["rates"][rate], results[key]["direct"]["rates"][rate]
            lines.append(
                f"  {rate:>4}   {label:<8} {_f(base['p50']):>6} /{_f(base['p99']):>6} |"
                f" {_f(row['p50']):>6} /{_f(row['p99']):>6} |"
                f" {_f(row['p50'] - base['p50']):>6} /{_f(row['p99'] - base['p99']):>6}"
                f"   {row['errors']:>6}   {_f(row['gen_rate'], 0):>6}/s"
                + (f"  {','.join(row['error_kinds'])}" if row["errors"] else "")
                + (f"  (direct errors {base['errors']})" if base["errors"] else "")
            )
    lines += ["", "streamed (include_usage): time to first content chunk (ms), chunk counts"]
    for rate in cfg["stream_rates"]:
        for key, label in paths:
            for who, row in (("direct", results[key]["direct"]["stream"][rate]),
                             (label, results[key]["stream"][rate])):  # fmt: skip
                line = (
                    f"  {rate:>4}/s {who:<8} TTFT p50 {_f(row['ttft_p50']):>6}"
                    f" p99 {_f(row['ttft_p99']):>6}"
                    f"  first->last chunk {_f(row['spread_p50'])} ms  events {row['events']}"
                )
                if who != "direct":
                    line += f"  overhead p50 {_f(added(results, key, 'stream', rate, 'ttft_p50'))}"
                    line += f" ms  errors {row['errors']}"
                lines.append(line)
    lines += ["", "resources of the gateway process (peak RSS; CPU-seconds per 1,000 requests)"]
    for key, label in paths:
        rates = results[key]["rates"]
        cpu = "  ".join(f"{r}/s {_f(v['cpu_per_1k'], 3)}" for r, v in rates.items())
        lines.append(f"  {label:<8} RSS {_f(results[key]['rss_mb'], 1)} MB   CPU-s/1k: {cpu}")
    if "litellm_error" in results:
        lines += ["", f"LiteLLM was not measured: {results['litellm_error']}"]
    lines += ["", *targets(results)]
    return "\n".join(lines)


def targets(results: dict[str, Any]) -> list[str]:
    cfg = results["config"]
    low = min(cfg["rates"])
    staffer = results["staffer"]
    s_added = added(results, "staffer", "rates", low, "p50")
    s_rate = sustained(results, "staffer")
    out = ["targets:"]
    out.append(
        f"  Staffer added p50 at {low}/s: {_f(s_added)} ms (target <= 1 ms): "
        + ("met" if s_added <= 1.0 else "MISSED")
    )
    if cfg["stream_rates"]:
        first = min(cfg["stream_rates"])
        ttft = added(results, "staffer", "stream", first, "ttft_p50")
        counts_ok = all(
            staffer["stream"][r]["events"] in ([], staffer["direct"]["stream"][r]["events"])
            for r in cfg["stream_rates"]
        )
        failed = {r: v["errors"] for r, v in staffer["stream"].items() if v["errors"]}
        out.append(
            f"  Staffer TTFT overhead p50 at {first}/s: {_f(ttft)} ms (target <= 1 ms): "
            + ("met" if ttft <= 1.0 else "MISSED")
        )
        out.append(
            "  every completed stream had the upstream's chunk count: "
            + ("yes" if counts_ok else "NO")
            + (f" (failed streams by rate: {failed})" if failed else "")
        )
    out.append(
        f"  Staffer sustained rate (added p99 < 10 ms, errors < 0.1 %): {s_rate or '<min'}/s"
    )
    if "litellm" in results:
        l_added = added(results, "litellm", "rates", low, "p50")
        l_rate = sustained(results, "litellm")
        out.append(
            f"  LiteLLM added p50 at {low}/s: {_f(l_added)} ms; sustained: {l_rate or '<min'}/s"
        )
        out.append(
            f"  Staffer added p50 <= 1/4 of LiteLLM's ({_f(l_added / 4)} ms): "
            + ("met" if s_added <= l_added / 4 else "MISSED")
        )
        if l_rate is None:
            verdict = (
                f"met (LiteLLM sustained none of the rates, Staffer {s_rate}/s)"
                if s_rate
                else "undetermined: neither sustained the lowest rate tested"
            )
        else:
            verdict = "met" if s_rate and s_rate >= 3 * l_rate else "MISSED"
            verdict += "" if max(cfg["rates"]) >= 3 * l_rate else " (rates tested top out)"
        out.append(f"  Staffer sustained >= 3x LiteLLM's: {verdict}")
    return out


def load(path: str) -> dict[str, Any]:
    """Results saved by `bench.gateway` (JSON turns the rate keys into strings)."""
    import json
    from pathlib import Path

    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    for name in ("staffer", "litellm"):
        if name in data:
            for part in (data[name], data[name]["direct"]):
                for mode in ("rates", "stream"):
                    part[mode] = {int(k): v for k, v in part[mode].items()}
    return data


if __name__ == "__main__":
    import sys

    print(report(load(sys.argv[1] if len(sys.argv) > 1 else "bench/results/gateway.json")))
