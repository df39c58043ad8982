"""An open-loop HTTP/1.1 load generator on raw asyncio sockets.

Requests are fired at scheduled times (``start + i / rate``) whatever happened to the
earlier ones, and each latency is measured from its *scheduled* time, so a server that
falls behind is charged for the queue it builds (no coordinated omission). Keep-alive
connections are pooled; a new one is opened whenever none is idle.

Raw sockets rather than httpx: httpx spends ~0.5 ms of CPU per request, which would
make the generator, not the server, the bottleneck at 800 requests/s on one core.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

TIMEOUT = 10.0
IDLE_EXPIRY = 4.0  # seconds a kept-alive connection may sit unused before it is dropped
_CONTENT = re.compile(rb'"content":\s*"(?!")')


@dataclass(slots=True)
class Result:
    ok: bool
    status: int
    latency: float  # seconds from the scheduled time to the last byte
    ttft: float | None = None  # seconds from the scheduled time to the first content chunk
    events: int = 0  # SSE data events before [DONE]
    spread: float | None = None  # seconds from the first to the last content chunk
    error: str = ""


@dataclass(slots=True)
class RunStats:
    results: list[Result] = field(default_factory=list)
    dispatch_lag: list[float] = field(default_factory=list)  # fired - scheduled, seconds
    achieved_rate: float = 0.0


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0


class Pool:
    """Keep-alive connections to one host; `request` sends prebuilt request bytes."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.idle: list[Connection] = []

    async def _connect(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return Connection(reader, writer)

    def _take(self) -> Connection | None:
        """The most recently used idle connection, skipping any idle for `IDLE_EXPIRY` s: the
        server may be closing it (uvicorn's keep-alive timeout is 5 s), as clients do."""
        now = time.perf_counter()
        while self.idle:
            conn = self.idle.pop()
            if now - conn.idle_since < IDLE_EXPIRY:
                return conn
            conn.writer.close()
        return None

    async def request(self, raw: bytes, scheduled: float, *, stream: bool) -> Result:
        conn = self._take() or await self._connect()
        clock = time.perf_counter
        try:
            async with asyncio.timeout(TIMEOUT):
                conn.writer.write(raw)
                head = await conn.reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                lower = head.lower()
                keep = b"connection: close" not in lower
                if b"transfer-encoding: chunked" in lower:
                    result = await _read_chunked(conn.reader, scheduled, stream)
                else:
                    match = re.search(rb"content-length:\s*(\d+)", lower)
                    await conn.reader.readexactly(int(match.group(1)) if match else 0)
                    result = Result(True, status, clock() - scheduled)
                result.status = status
                result.ok = status == 200 and result.ok
        except Exception as exc:  # every failure is a failed request, with its reason
            conn.writer.close()
            return Result(False, 0, clock() - scheduled, error=type(exc).__name__)
        if keep:
            conn.idle_since = clock()
            self.idle.append(conn)
        else:
            conn.writer.close()
        return result

    async def close(self) -> None:
        for conn in self.idle:
            conn.writer.close()
        self.idle.clear()


async def _read_chunked(reader: asyncio.StreamReader, scheduled: float, stream: bool) -> Result:
    clock = time.perf_counter
    buffer = b""
    events = 0
    first: float | None = None
    last: float | None = None
    done = False
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            break
        data = (await reader.readexactly(size + 2))[:-2]
        if not stream:
            continue
        now = clock()
        buffer += data
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if not event.startswith(b"data:"):
                continue
            if event.strip() == b"data: [DONE]":
                done = True
                continue
            events += 1
            if _CONTENT.search(event):
                first = now if first is None else first
                last = now
    ok = done or not stream
    ttft = None if first is None else first - scheduled
    spread = None if first is None or last is None else last - first
    return Result(ok, 200, clock() - scheduled, ttft, events, spread)


def build_request(path: str, body: dict[str, object], headers: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", "content-type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"content-length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def open_loop(
    targets: Sequence[tuple[Pool, bytes, float]], *, duration: float, stream: bool
) -> list[RunStats]:
    """Fire requests at each ``(pool, raw, rate)`` target on schedule for `duration`
    seconds, and wait for every answer.

    Several targets run at once, their schedules merged: the requests of the second
    target fall halfway between those of the first, and so on, so all of them are
    measured under the same conditions of the machine.
    """
    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    start = clock() + 0.01
    schedule = sorted(
        (start + (j + k / len(targets)) / rate, k)
        for k, (_, _, rate) in enumerate(targets)
        for j in range(int(rate * duration))
    )
    stats = [RunStats() for _ in targets]
    tasks: list[list[asyncio.Task[Result]]] = [[] for _ in targets]
    fired: list[list[float]] = [[] for _ in targets]
    i = 0
    while i < len(schedule):
        now = clock()
        # Fire everything that is due, then sleep until the next one is.
        while i < len(schedule) and schedule[i][0] <= now:
            scheduled, k = schedule[i]
            pool, raw, _ = targets[k]
            tasks[k].append(loop.create_task(pool.request(raw, scheduled, stream=stream)))
            stats[k].dispatch_lag.append(now - scheduled)
            fired[k].append(now)
            i += 1
        if i < len(schedule):
            await asyncio.sleep(max(0.0, schedule[i][0] - clock()))
    for one, started, times in zip(stats, tasks, fired, strict=True):
        one.results = list(await asyncio.gather(*started))
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        one.achieved_rate = (len(times) - 1) / span if span > 0 else float("nan")
    return stats
