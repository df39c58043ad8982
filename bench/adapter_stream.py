"""CPU per streamed request through `OpenAIChatModel.stream`: httpx path vs `_transport`.

Starts `bench.mock_upstream` (no latency, 10 chunks, no gap) on core 1 and sends
sequential requests from this process; reports this process's CPU time per request.

    python -m bench.adapter_stream [--requests 2000] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx

from staffer.models import Message, ModelRequest, OpenAIChatModel


async def _run(model: OpenAIChatModel, n: int) -> float:
    request = ModelRequest(messages=[Message(role="user", content="hi")])
    for _ in range(50):  # warm-up: connections, caches
        async for _ in model.stream(request):
            pass
    cpu = time.process_time()
    for _ in range(n):
        async for _ in model.stream(request):
            pass
    return (time.process_time() - cpu) / n * 1000


async def _main(port: int, n: int) -> None:
    url = f"http://127.0.0.1:{port}/v1"
    async with (
        httpx.AsyncClient() as client,
        OpenAIChatModel("mock", base_url=url, client=client) as model,
    ):
        old = await _run(model, n)
    async with OpenAIChatModel("mock", base_url=url) as model:
        new = await _run(model, n)
    print(f"httpx path:  {old:.3f} ms CPU per streamed request")
    print(f"_transport:  {new:.3f} ms CPU per streamed request ({old / new:.1f}x less)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "bench.mock_upstream", "--port", str(port)]
    mock = subprocess.Popen([*cmd, "--latency-ms", "0", "--gap-ms", "0"])
    try:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(mock.pid, {1})
            os.sched_setaffinity(0, {0})
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        if args.uvloop:
            import uvloop

            uvloop.run(_main(port, args.requests))
        else:
            asyncio.run(_main(port, args.requests))
    finally:
        mock.terminate()
        mock.wait()


if __name__ == "__main__":
    main()
