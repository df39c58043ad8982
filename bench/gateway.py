"""Gateway overhead: direct to a mock upstream vs through Staffer vs through LiteLLM's proxy.

One run measures three paths side by side against the same OpenAI-compatible mock
(`bench.mock_upstream`: fixed latency, SSE streaming):

- **direct**: the load generator talks to the mock; these requests are interleaved
  with each gateway's (`bench._loadgen.open_loop`, at 100/s or the gateway's rate if
  lower), so a gateway's added latency compares requests made at the same moments, not
  minutes apart;
- **Staffer**: `staffer start` with the mock as a router deployment (alias ``fast``),
  called on ``/v1/chat/completions`` with a user API key;
- **LiteLLM**: ``litellm --config … --num_workers 1`` (pinned ``litellm[proxy]``, in
  its own virtualenv under ``bench/.venv-litellm``, installed on first run), with a
  master key and ``LITELLM_LOCAL_MODEL_COST_MAP=True``.

The gateway under test runs alone, pinned to core 0; the mock and the open-loop load
generator (`bench._loadgen`) share core 1. Each path runs non-streamed requests at
each rate (after a 1 s warm-up at that rate), then streamed requests for the
time-to-first-token overhead and the chunk counts.

    python -m bench.gateway [--rates 100,200,400,800] [--duration 5] [--no-litellm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench._harness import (
    ROOT,
    STAFFER,
    free_port,
    gateway_process,
    percentile,
    pin_to,
    staffer_home,
)
from bench._loadgen import Pool, RunStats, build_request, open_loop

LITELLM_VERSION = "1.103.7"  # the newest whose dependencies resolve on PyPI here (see docs)
LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
LITELLM_KEY = "sk-bench-litellm"
MOCK_CORE, GATEWAY_CORE = 1, 0
MESSAGES = [{"role": "user", "content": "Say something."}]
CHAT = "/v1/chat/completions"
DIRECT_RATE = 100  # direct requests a second interleaved with a gateway's (fewer below 100/s)


def taskset(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if hasattr(os, "sched_setaffinity") else []


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:g} s")


@contextmanager
def process(
    command: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read()[-3000:].decode(errors="replace"))
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def ensure_litellm() -> Path:
    """The litellm executable of the pinned version, installing it on first use."""
    marker = LITELLM_VENV / f".installed-{LITELLM_VERSION}"
    exe = LITELLM_VENV / "bin" / "litellm"
    if marker.exists() and exe.exists():
        return exe
    print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} …", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], capture_output=True)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-2:]
        raise RuntimeError(f"pip could not install litellm[proxy]=={LITELLM_VERSION}: {tail}")
    marker.touch()
    return exe


@contextmanager
def litellm_proxy(mock_url: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    exe = ensure_litellm()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-litellm-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            "model_list:\n"
            "  - model_name: fast\n"
            "    litellm_params:\n"
            "      model: openai/mock\n"
            f"      api_base: {mock_url}\n"
            "      api_key: sk-mock\n"
            "general_settings:\n"
            f"  master_key: {LITELLM_KEY}\n"
            "litellm_settings:\n"
            "  set_verbose: false\n"
            "  drop_params: true\n",
            encoding="utf-8",
        )
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
        command = [*taskset(GATEWAY_CORE), str(exe), "--config", str(config)]
        command += ["--port", str(port), "--num_workers", "1"]
        with process(command, env) as proc:
            wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, 180, "litellm")
            yield port, proc


@contextmanager
def staffer_gateway(mock_url: str) -> Iterator[tuple[int, str, subprocess.Popen[bytes]]]:
    config = (
        f'[deployments.mock]\nprovider = "openai"\nmodel = "mock"\nbase_url = "{mock_url}"\n'
        '[aliases.fast]\ndeployments = ["mock"]\n[router]\ndefault_alias = "fast"\n'
    )
    with staffer_home(config) as home:
        env = {**os.environ, "STAFFER_HOME": str(home)}
        made = subprocess.run(
            [*STAFFER, "keys", "create", "--user", "bench"],
            env=env,
            capture_output=True,
            check=True,
        )
        key = made.stdout.decode().strip()
        port = free_port()
        with gateway_process(home, port, cpu=GATEWAY_CORE) as proc:
            yield port, key, proc


def cpu_seconds(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


async def settle(proc: psutil.Process | None, limit: float = 60.0) -> None:
    """Wait until the server is idle (< 5 % CPU over 0.5 s): a backlog from an overloaded
    run must not be charged to the next one."""
    deadline = time.monotonic() + limit
    while proc is not None and time.monotonic() < deadline:
        before = cpu_seconds(proc)
        await asyncio.sleep(0.5)
        if cpu_seconds(proc) - before < 0.025:
            return


def rss_mb(proc: psutil.Process) -> float:
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


async def measure(
    port: int,
    headers: dict[str, str],
    direct_port: int,
    args: argparse.Namespace,
    server: subprocess.Popen[bytes],
) -> dict[str, Any]:
    """Every rate non-streamed, then the streaming rates, for one gateway, each with
    direct requests to the mock interleaved with the gateway's (`open_loop`) at up to
    `DIRECT_RATE` a second: the added latency compares requests made at the same moments,
    and the direct ones add little load to the core the mock and this generator share."""
    body: dict[str, Any] = {"model": "fast", "messages": MESSAGES}
    streamed_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
    proc = psutil.Process(server.pid)
    out: dict[str, Any] = {"rates": {}, "stream": {}, "rss_mb": 0.0}
    direct: dict[str, Any] = {"rates": {}, "stream": {}}
    out["direct"] = direct
    # Streams first, at the low rates, so they never inherit an overload's backlog.
    for mode, rates, payload in (
        ("stream", args.stream_rates, streamed_body),
        ("rates", args.rates, body),
    ):
        pools = [Pool("127.0.0.1", direct_port), Pool("127.0.0.1", port)]
        raws = [build_request(CHAT, payload, {}), build_request(CHAT, payload, headers)]
        for rate in rates:
            stream = mode == "stream"
            targets = [
                (pools[0], raws[0], float(min(rate, DIRECT_RATE))),
                (pools[1], raws[1], float(rate)),
            ]
            await settle(proc)
            await open_loop(targets, duration=1.0, stream=stream)  # warm-up
            before = cpu_seconds(proc)
            base, stats = await open_loop(targets, duration=args.duration, stream=stream)
            cpu = cpu_seconds(proc) - before
            out[mode][rate] = summarize(stats, cpu)
            direct[mode][rate] = summarize(base, 0.0)
            out["rss_mb"] = max(out["rss_mb"], rss_mb(proc))
            # An overloaded server's sockets are in a bad state: start over with new ones.
            for pool in pools:
                await pool.close()
    return out


def summarize(stats: RunStats, cpu: float) -> dict[str, Any]:
    ok = [r for r in stats.results if r.ok]
    ms = [r.latency * 1000 for r in ok]
    ttft = [r.ttft * 1000 for r in ok if r.ttft is not None]
    spread = [r.spread * 1000 for r in ok if r.spread is not None]
    n = len(stats.results)
    return {
        "n": n,
        "errors": n - len(ok),
        "error_kinds": sorted({r.error or str(r.status) for r in stats.results if not r.ok}),
        "p50": percentile(ms, 0.5),
        "p99": percentile(ms, 0.99),
        "ttft_p50": percentile(ttft, 0.5),
        "ttft_p99": percentile(ttft, 0.99),
        "spread_p50": percentile(spread, 0.5),
        "events": sorted({r.events for r in ok}),
        "cpu_per_1k": cpu / n * 1000 if n else float("nan"),
        "gen_rate": stats.achieved_rate,
        "gen_lag_p99": percentile(stats.dispatch_lag, 0.99) * 1000,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    pin_to(MOCK_CORE)
    os.environ.setdefault("OPENAI_API_KEY", "sk-mock")  # the mock deployment's key
    mock_port = free_port()
    mock_cmd = [*taskset(MOCK_CORE), sys.executable, "-m", "bench.mock_upstream"]
    mock_cmd += ["--port", str(mock_port), "--latency-ms", str(args.latency_ms)]
    mock_cmd += ["--chunks", str(args.chunks), "--gap-ms", str(args.gap_ms)]
    results: dict[str, Any] = {"config": vars(args).copy(), "litellm_version": LITELLM_VERSION}
    with process(mock_cmd) as mock, busy_core(GATEWAY_CORE, args.busy_core):
        wait_http(f"http://127.0.0.1:{mock_port}/health", mock, 30, "the mock upstream")
        mock_url = f"http://127.0.0.1:{mock_port}/v1"
        print("Staffer (with direct requests interleaved) …", flush=True)
        with staffer_gateway(mock_url) as (port, key, proc):
            auth = {"authorization": f"Bearer {key}"}
            results["staffer"] = arun(measure(port, auth, mock_port, args, proc))
        if args.no_litellm:
            results["litellm_error"] = "skipped (--no-litellm)"
        else:
            print(f"LiteLLM {LITELLM_VERSION} (with direct requests interleaved) …", flush=True)
            try:
                with litellm_proxy(mock_url) as (port, proc):
                    auth = {"authorization": f"Bearer {LITELLM_KEY}"}
                    results["litellm"] = arun(measure(port, auth, mock_port, args, proc))
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                results["litellm_error"] = str(exc)
    return results


@contextmanager
def busy_core(core: int, enabled: bool) -> Iterator[None]:
    """With `enabled`, keep `core` from idling: a spinning process at the lowest priority,
    which yields the core to the gateway whenever it has work. A diagnostic: the gap to a
    normal run is what waking an idle core costs (see docs/benchmarks.md)."""
    if not enabled:
        yield
        return
    spin = [*taskset(core), "nice", "-n", "19", sys.executable, "-c", "while True: pass"]
    with process(spin):
        yield


def arun(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,400,800")
    parser.add_argument("--stream-rates", default="100,400")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per rate and path")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--gap-ms", type=float, default=1.0)
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument(
        "--busy-core",
        action="store_true",
        help="keep the gateway's core busy with a lowest-priority spinner (a diagnostic)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "gateway.json")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",")]
    args.stream_rates = [int(r) for r in args.stream_rates.split(",") if r]
    results = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    from bench._gateway_report import report

    print(report(results))


if __name__ == "__main__":
    main()
