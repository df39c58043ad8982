"""`_transport`, the adapters' own HTTP/1.1 client, against real loopback servers: the
scripted model server, and raw asyncio servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import gc
import shutil
import ssl
import subprocess
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from staffer.errors import ProtocolError, ProviderUnavailableError, RateLimitError
from staffer.models import Message, ModelRequest, OpenAIChatModel
from staffer.models._transport import (
    ConnectError,
    ConnectionPool,
    Headers,
    ReadError,
    Target,
    proxied,
)
from staffer.testing.model_server import ScriptedModelServer

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

SSE = (
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n',
    b'data: {"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n',
    b"data: [DONE]\n\n",
)


def ask() -> ModelRequest:
    return ModelRequest(messages=[Message(role="user", content="hi")])


def chunked(*parts: bytes, end: bool = True) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return head + body + (b"0\r\n\r\n" if end else b"")


def sized(body: bytes, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head (and its body, read and dropped); b"" when the client left."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return b""
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


class RawServer:
    """A loopback server running `handler` per connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []

    async def __aenter__(self) -> RawServer:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def answering(*answers: bytes, close: bool = False) -> Callable[[RawServer], Handler]:
    """Each request on a connection gets the next answer; `close` hangs up after each."""

    def make(server: RawServer) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for answer in answers:
                head = await read_request(reader)
                if not head:
                    return
                server.heads.append(head)
                writer.write(answer)
                await writer.drain()
                if close:
                    return
            await reader.read()

        return handle

    return make


def raw_server(make: Callable[[RawServer], Handler]) -> RawServer:
    server = RawServer(lambda r, w: asyncio.sleep(0))
    server.handler = make(server)
    return server


async def fetch(pool: ConnectionPool, url: str, budget: float = 5.0) -> tuple[int, bytes]:
    loop = asyncio.get_running_loop()
    response = await pool.request(
        "POST", Target.parse(url), {}, b"{}", deadline=loop.time() + budget, connect_timeout=1
    )
    try:
        return response.status, await response.aread()
    finally:
        response.close()


async def test_the_adapter_reuses_one_keep_alive_connection() -> None:
    server = raw_server(answering(*[chunked(*SSE)] * 3))
    async with server, OpenAIChatModel("m", base_url=server.url) as model:
        for _ in range(3):
            assert (await model.complete(ask())).text == "Hello"
    assert server.connections == 1
    head = server.heads[0].lower()
    assert head.startswith(b"post /v1/chat/completions http/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in head
    assert b"\r\naccept: text/event-stream" in head


async def test_the_scripted_server_over_one_pooled_connection() -> None:
    with ScriptedModelServer() as scripted:
        async with OpenAIChatModel("m", base_url=scripted.openai_base_url) as model:
            for _ in range(3):
                assert (await model.complete(ask())).text
        async with ConnectionPool() as pool:
            for _ in range(3):
                status, _ = await fetch(pool, scripted.url + "/v1/models")
                assert status in (200, 404, 405)
            assert pool.opened == 1


@pytest.mark.parametrize(
    ("answer", "reused"),
    [
        (chunked(b"ab", b"cd"), True),
        (sized(b"abcd"), True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabcd", False),  # close-delimited
        (b"HTTP/1.0 200 OK\r\n\r\nabcd", False),
    ],
    ids=["chunked", "content-length", "close-delimited", "http-1.0"],
)
async def test_body_framings(answer: bytes, reused: bool) -> None:
    server = raw_server(answering(answer, answer, close=not reused))
    async with server, ConnectionPool() as pool:
        assert await fetch(pool, server.url) == (200, b"abcd")
        assert await fetch(pool, server.url) == (200, b"abcd")
    assert server.connections == (1 if reused else 2)


async def test_chunks_arrive_as_they_are_sent() -> None:
    go_on = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(chunked(b"first", end=False))
        await go_on.wait()  # the second part only once the client has the first
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with RawServer(handle) as server, ConnectionPool() as pool:
        loop = asyncio.get_running_loop()
        response = await pool.request(
            "POST", Target.parse(server.url), {}, b"", deadline=loop.time() + 5, connect_timeout=1
        )
        chunks = aiter(response)
        assert await anext(chunks) == b"first"
        go_on.set()
        assert [c async for c in chunks] == [b"second"]
        response.close()


async def test_a_pooled_connection_the_server_closed_is_retried_once() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(chunked(*SSE))
        await writer.drain()
        if server.connections == 1:
            await read_request(reader)  # the idle-timeout race: read the next request, hang up
            return
        while await read_request(reader):
            writer.write(chunked(*SSE))

    server = RawServer(handle)
    async with server, OpenAIChatModel("m", base_url=server.url) as model:
        assert (await model.complete(ask())).text == "Hello"
        assert (await model.complete(ask())).text == "Hello"
    assert server.connections == 2


async def test_no_resend_once_part_of_the_response_arrived() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sized(b"ok"))
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")  # then hang up mid-head

    async with RawServer(handle) as server, ConnectionPool() as pool:
        assert await fetch(pool, server.url) == (200, b"ok")
        with pytest.raises(ReadError):
            await fetch(pool, server.url)
    assert server.connections == 1


async def test_a_drop_mid_body_says_after_how_many_chunks() -> None:
    server = raw_server(answering(chunked(*SSE[:2], end=False), close=True))
    async with server, OpenAIChatModel("m", base_url=server.url) as model:
        with pytest.raises(ProviderUnavailableError, match="dropped after 2 chunks") as info:
            await model.complete(ask())
    assert info.value.retryable


async def test_connection_refused_is_a_clear_error() -> None:
    async with raw_server(answering()) as server:
        pass  # closed again: nothing listens on its port now
    async with OpenAIChatModel("m", base_url=server.url) as model:
        with pytest.raises(ProviderUnavailableError, match="could not connect to openai at http"):
            await model.complete(ask())


async def test_malformed_http_is_a_protocol_error() -> None:
    server = raw_server(answering(b"SMTP ready\r\n\r\n", close=True))
    async with server, OpenAIChatModel("m", base_url=server.url) as model:
        with pytest.raises(ProtocolError, match=r"did not answer in HTTP/1\.1"):
            await model.complete(ask())


async def test_an_error_status_reads_headers_case_insensitively() -> None:
    body = b'{"error":{"message":"slow down"}}'
    server = raw_server(answering(sized(body, b"429 Too Many", b"ReTrY-AfTeR: 3\r\n")))
    async with server, OpenAIChatModel("m", base_url=server.url) as model:
        with pytest.raises(RateLimitError, match="slow down") as info:
            await model.complete(ask())
    assert info.value.retry_after == 3


def test_headers_are_case_insensitive() -> None:
    headers = Headers()
    dict.__setitem__(headers, "retry-after", "2")
    assert headers["Retry-After"] == headers.get("RETRY-AFTER") == "2"
    assert "Retry-After" in headers
    assert headers.get("x-missing") is None


def test_targets_and_https_use_a_verifying_ssl_context() -> None:
    target = Target.parse("https://api.example.com/v1/chat/completions?x=1")
    assert (target.scheme, target.host, target.port) == ("https", "api.example.com", 443)
    assert target.path == "/v1/chat/completions?x=1"
    assert target.host_header == "api.example.com"
    assert Target.parse("http://[::1]:8080/v1").host_header == "[::1]:8080"
    context = ConnectionPool().ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_https_to_a_plain_server_fails_to_connect() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(sized(b"ok"))  # plain HTTP where the TLS handshake expects a record
        await reader.read()

    async with RawServer(plain) as server, ConnectionPool() as pool:
        with pytest.raises(ConnectError, match=r"WRONG_VERSION_NUMBER|wrong version"):
            await fetch(pool, f"https://127.0.0.1:{server.port}/")


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_a_tls_round_trip_verifies_the_certificate(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server = RawServer(lambda r, w: asyncio.sleep(0))
    server.handler = answering(sized(b"secure"), sized(b"secure"))(server)
    server.server = await asyncio.start_server(
        lambda r, w: _count_and_serve(server, r, w), "127.0.0.1", 0, ssl=server_side
    )
    port = server.server.sockets[0].getsockname()[1]
    client_side = ssl.create_default_context(cafile=str(cert))
    try:
        async with ConnectionPool(ssl_context=client_side) as pool:
            for _ in range(2):
                assert await fetch(pool, f"https://localhost:{port}/") == (200, b"secure")
        assert server.connections == 1
        async with ConnectionPool() as untrusting:  # the system CAs do not know this one
            with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await fetch(untrusting, f"https://localhost:{port}/")
    finally:
        server.server.close()


async def _count_and_serve(
    server: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    server.connections += 1
    try:
        await server.handler(reader, writer)
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def test_a_configured_proxy_sends_calls_through_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = raw_server(answering(chunked(*SSE)))
    async with proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with OpenAIChatModel("m", base_url="http://upstream.invalid/v1") as model:
            assert (await model.complete(ask())).text == "Hello"
    assert proxy.heads[0].startswith(b"POST http://upstream.invalid/v1/chat/completions ")
    assert proxied({"https_proxy": "http://p:3128"})
    assert not proxied({"NO_PROXY": "*"})


async def test_connect_timeout_is_a_constructor_parameter() -> None:
    model = OpenAIChatModel("m", base_url="http://127.0.0.1:9/v1", connect_timeout=2.5)
    assert model.connect_timeout == 2.5


def test_an_adapter_survives_a_new_event_loop() -> None:
    with ScriptedModelServer() as scripted:
        model = OpenAIChatModel("m", base_url=scripted.openai_base_url)
        with warnings.catch_warnings():
            # A socket left open by a loop that was closed under it can only be reclaimed
            # by the garbage collector (it warns); the point here is the next call works.
            warnings.simplefilter("ignore", ResourceWarning)
            for _ in range(2):  # the pooled connection belongs to the first, closed loop
                assert asyncio.run(model.complete(ask())).text
            asyncio.run(model.aclose())
            gc.collect()


async def test_finish_reaches_the_caller_before_the_body_ends() -> None:
    """[DONE] ends the answer: Usage and Finish are yielded at once, and only then does
    the adapter wait (briefly) for the body's end to keep the connection."""
    end = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            await read_request(reader)
            writer.write(chunked(*SSE, end=False))
            await end.wait()  # the body's end comes only once the caller has Finish
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            end.clear()

    async with RawServer(handle) as server:
        model = OpenAIChatModel("mock", base_url=server.url, api_key="k")
        for _ in range(2):
            events = model.stream(ask())
            kinds = []
            async for event in events:
                kinds.append(event.type)
                if event.type == "finish":
                    end.set()
            assert kinds == ["text_delta", "text_delta", "finish"]
        await model.aclose()
    assert server.connections == 1  # the connection was kept: its body's end was read
