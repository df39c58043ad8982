"""A small HTTP/1.1 client for provider calls: an `asyncio.Protocol` feeding httptools'
parser, and a keep-alive pool per (scheme, host, port). One request with its body in
memory; the answer's status, headers, then body chunks as they arrive (chunked,
Content-Length or close-delimited). A call has one deadline, kept by one timer that
aborts the socket: a body chunk costs a parser callback and a wake-up, not a timeout
scope. Proxies are left to httpx (see `proxied`). Failures, and the builtin TimeoutError
when the deadline passes:

    TransportError
     ├── ConnectError (ConnectTimeout)  refused, DNS, TLS, or not open in time
     ├── ReadError                      dropped before the response was complete
     └── RemoteProtocolError            the answer is not HTTP/1.1

Retrying: a chat completion POST is not idempotent, so it is resent only when nothing of
it can have been answered: once, on a fresh connection, when a *reused* keep-alive
connection (the server's idle timeout raced our reuse) fails before any response byte.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024  # buffered body bytes that pause reading until they are taken


PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


def proxied(env: Mapping[str, str]) -> bool:
    """True when `env` configures a proxy: this transport does not do proxies, httpx does."""
    return any(env.get(name) for name in PROXY_VARS)


class TransportError(Exception):
    """Base of the transport's failures; `_http` turns them into `ProviderError`s."""


class ConnectError(TransportError):
    """The connection could not be opened."""


class ConnectTimeout(ConnectError):
    """The connection was not open within the connect timeout."""


class ReadError(TransportError):
    """The connection dropped before the response was complete."""


class RemoteProtocolError(TransportError):
    """The server's answer is not valid HTTP/1.1."""


class Headers(dict[str, str]):
    """Response headers; names are stored lower-cased and looked up case-insensitively."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name.lower() if isinstance(name, str) else name)

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)


@dataclass(slots=True, frozen=True)
class Target:
    """Where a request goes: the pool key, the TLS flag, and the request line's path."""

    scheme: str
    host: str
    port: int
    path: str
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port, path, parts.netloc.rpartition("@")[2])


class _Connection(asyncio.Protocol):
    """One socket and its parser; holds the state of the response being read."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport  # set by connection_made, before the pool sees it
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.begin()

    def begin(self) -> None:
        self.status = 0
        self.headers = Headers()
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.received = False
        self.until_close = False
        self.exc: BaseException | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(RemoteProtocolError(f"malformed HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None and self.headers_done and self.until_close and not self.complete:
            self.complete = True  # a close-delimited body ends with the connection
            self.wake()
        elif not self.complete:
            why = str(exc) if exc else "the server closed the connection"
            self.fail(ReadError(why))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = dict.get(self.headers, key)
        dict.__setitem__(self.headers, key, f"{old}, {text}" if old else text)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        framing = (self.headers.get("transfer-encoding") or "").lower()
        self.until_close = "content-length" not in self.headers and "chunked" not in framing
        self.headers_done = True
        self.wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self.wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self.wake()

    # used by the pool and the response
    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if self.exc is None:
            self.exc = exc
        self.wake()

    def expire(self) -> None:
        self.fail(TimeoutError())
        self.close()

    async def wait(self) -> None:
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def take(self) -> bytes:
        """Every body byte received so far: what one network read brought is handed on
        in one piece, not one HTTP chunk at a time."""
        chunks = self.chunks
        if len(chunks) == 1:
            data = chunks.popleft()
        else:
            data = b"".join(chunks)
            chunks.clear()
        self.buffered = 0
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        return data

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.closed and not self.loop.is_closed():
            self.closed = True
            self.transport.abort()


class Response:
    """A response whose body is still arriving (`async for chunk in response`, `aread()`);
    its connection goes back to the pool only once the body was read to its end."""

    def __init__(self, conn: _Connection, pool: ConnectionPool, key: tuple[str, str, int]) -> None:
        self._conn: _Connection | None = conn
        self._pool = pool
        self._key = key
        self.status = conn.status
        self.headers = conn.headers

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        while True:
            if conn.chunks:
                return conn.take()
            if conn.exc is not None:
                raise conn.exc
            if conn.complete:
                self._release()
                raise StopAsyncIteration
            await conn.wait()

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self])

    async def drain(self, seconds: float, limit: int) -> None:
        """Wait briefly for the rest of a body nobody wants, to keep the connection."""
        conn = self._conn
        if conn is None:
            return
        if not conn.complete and conn.exc is None:
            try:
                async with asyncio.timeout(seconds):
                    while not conn.complete and conn.exc is None and conn.buffered <= limit:
                        await conn.wait()
            except TimeoutError:
                return
        if conn.complete and conn.exc is None:
            conn.chunks.clear()
            conn.buffered = 0
            self._release()

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        if conn.keep_alive and not conn.closed and conn.exc is None and not conn.chunks:
            self._pool.put(self._key, conn)
        else:
            conn.close()

    def close(self) -> None:
        """Give the connection back if the body was fully read, else drop it."""
        conn = self._conn
        if conn is not None and conn.complete and conn.exc is None and not conn.chunks:
            self._release()
        elif conn is not None:
            self._conn = None
            conn.close()


class ConnectionPool:
    """Keep-alive connections per (scheme, host, port), opened on demand: at most `max_idle`
    idle per origin, each dropped after `idle_expiry` s unused. An async context manager."""

    def __init__(
        self,
        *,
        max_idle: int = 20,
        idle_expiry: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_idle = max_idle
        self.idle_expiry = idle_expiry
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self.opened = 0  # connections opened so far, for tests and diagnostics

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    async def request(
        self,
        method: str,
        target: Target,
        headers: Mapping[str, str],
        body: bytes,
        *,
        deadline: float,
        connect_timeout: float,
    ) -> Response:
        """Send one request and wait for the response's headers (not its body)."""
        lines = [f"{method} {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        data = "".join(lines).encode("latin-1") + body
        key = (target.scheme, target.host, target.port)
        loop = asyncio.get_running_loop()
        conn = self._take(key, loop)
        while True:
            if conn is None:
                conn = await self._connect(target, loop, deadline, connect_timeout)
            conn.begin()
            conn.timer = loop.call_at(deadline, conn.expire)
            conn.transport.write(data)
            try:
                while not conn.headers_done:
                    if conn.exc is not None:
                        raise conn.exc
                    await conn.wait()
            except ReadError:
                conn.close()
                if conn.reused and not conn.received:
                    conn = None  # a stale keep-alive connection: resend on a fresh one
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            return Response(conn, self, key)

    async def _connect(
        self, target: Target, loop: asyncio.AbstractEventLoop, deadline: float, limit: float
    ) -> _Connection:
        tls = self.ssl_context() if target.scheme == "https" else None
        when = min(deadline, loop.time() + limit)
        try:
            async with asyncio.timeout_at(when):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                )
        except TimeoutError as exc:
            if when >= deadline:
                raise
            raise ConnectTimeout(f"no connection within {limit:g} s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        self.opened += 1
        return conn

    def _take(
        self, key: tuple[str, str, int], loop: asyncio.AbstractEventLoop
    ) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()  # the most recently used is the likeliest to be alive
            stale = conn.closed or loop.time() - conn.idle_since > self.idle_expiry
            if stale or conn.loop is not loop:  # (an adapter reused under a new event loop)
                conn.close()
                continue
            conn.reused = True
            return conn
        return None

    def put(self, key: tuple[str, str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, deque())
        now = conn.loop.time()
        while idle and (idle[0].closed or now - idle[0].idle_since > self.idle_expiry):
            idle.popleft().close()
        if len(idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now
        idle.append(conn)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()

    async def __aenter__(self) -> ConnectionPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
