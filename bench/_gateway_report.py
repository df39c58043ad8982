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
        base = results["direct"]["rates"][rate]
        added_p99 = row["p99"] - base["p99"]
        if row["errors"] / row["n"] < MAX_ERROR_RATE and added_p99 < MAX_ADDED_P99_MS:
            best = max(best or 0, int(rate))
    return best


def report(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        f"gateway overhead, {cfg['duration']:g} s per rate and path; mock: first chunk after "
        f"{cfg['latency_ms']:g} ms, {cfg['chunks']} chunks {cfg['gap_ms']:g} ms apart",
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
        "gateway on core 0, mock + load generator on core 1",
        "",
        "non-streamed, latency from the scheduled time (ms); added = path - direct",
        "  rate   direct p50/p99 | path       p50/p99   added p50/p99   errors   gen rate",
    ]
    paths = [(k, label) for k, label in PATHS if k in results]
    for rate, base in results["direct"]["rates"].items():
        lines.append(
            f"  {rate:>4}   {_f(base['p50']):>6} /{_f(base['p99']):>6} | direct"
            f"{'':25}{base['errors']:>6}   {_f(base['gen_rate'], 0):>6}/s"
        )
        for key, label in paths:
            row = results[key]["rates"][rate]
            lines.append(
                f"{'':24}| {label:<8} {_f(row['p50']):>6} /{_f(row['p99']):>6}"
                f"  {_f(row['p50'] - base['p50']):>6} /{_f(row['p99'] - base['p99']):>6}"
                f"   {row['errors']:>6}   {_f(row['gen_rate'], 0):>6}/s"
                + (f"  {','.join(row['error_kinds'])}" if row["errors"] else "")
            )
    lines += ["", "streamed (include_usage): time to first content chunk (ms), chunk counts"]
    for rate, base in results["direct"]["stream"].items():
        lines.append(
            f"  {rate:>4}/s direct   TTFT p50 {_f(base['ttft_p50']):>6}"
            f" p99 {_f(base['ttft_p99']):>6}"
            f"  first->last chunk {_f(base['spread_p50'])} ms  events {base['events']}"
        )
        for key, label in paths:
            row = results[key]["stream"][rate]
            lines.append(
                f"  {rate:>4}/s {label:<8} TTFT p50 {_f(row['ttft_p50']):>6}"
                f" p99 {_f(row['ttft_p99']):>6}"
                f"  first->last chunk {_f(row['spread_p50'])} ms  events {row['events']}"
                f"  overhead p50 {_f(row['ttft_p50'] - base['ttft_p50'])} ms"
                f"  errors {row['errors']}"
            )
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
    direct = results["direct"]
    low = min(direct["rates"])
    staffer = results["staffer"]
    added = staffer["rates"][low]["p50"] - direct["rates"][low]["p50"]
    s_rate = sustained(results, "staffer")
    out = ["targets:"]
    out.append(
        f"  Staffer added p50 at {low}/s: {_f(added)} ms (target <= 1 ms): "
        + ("met" if added <= 1.0 else "MISSED")
    )
    first = min(direct["stream"]) if direct["stream"] else None
    if first is not None:
        ttft = staffer["stream"][first]["ttft_p50"] - direct["stream"][first]["ttft_p50"]
        counts_ok = all(
            staffer["stream"][r]["events"] in ([], direct["stream"][r]["events"])
            for r in direct["stream"]
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
        lite = results["litellm"]
        l_added = lite["rates"][low]["p50"] - direct["rates"][low]["p50"]
        l_rate = sustained(results, "litellm")
        out.append(
            f"  LiteLLM added p50 at {low}/s: {_f(l_added)} ms; sustained: {l_rate or '<min'}/s"
        )
        out.append(
            f"  Staffer added p50 <= 1/4 of LiteLLM's ({_f(l_added / 4)} ms): "
            + ("met" if added <= l_added / 4 else "MISSED")
        )
        if l_rate is None:
            verdict = (
                f"met (LiteLLM sustained none of the rates, Staffer {s_rate}/s)"
                if s_rate
                else "undetermined: neither sustained the lowest rate tested"
            )
        else:
            verdict = "met" if s_rate and s_rate >= 3 * l_rate else "MISSED"
            verdict += "" if max(direct["rates"]) >= 3 * l_rate else " (rates tested top out)"
        out.append(f"  Staffer sustained >= 3x LiteLLM's: {verdict}")
    return out


def load(path: str) -> dict[str, Any]:
    """Results saved by `bench.gateway` (JSON turns the rate keys into strings)."""
    import json
    from pathlib import Path

    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    for name in ("direct", "staffer", "litellm"):
        if name in data:
            for mode in ("rates", "stream"):
                data[name][mode] = {int(k): v for k, v in data[name][mode].items()}
    return data


if __name__ == "__main__":
    import sys

    print(report(load(sys.argv[1] if len(sys.argv) > 1 else "bench/results/gateway.json")))
