"""The gateway's HTTP protocol (`staffer.gateway._protocol`): ``/v1`` on its own lean
cycle, spoken to over raw sockets where HTTP's corners matter (keep-alive, pipelining,
HTTP/1.0, HEAD, Expect: 100-continue), and the one-write response head."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from tests.conftest import LiveGateway
from tests.gateway.test_openai_api import (
    GREETING,
    SCENARIO,
    create_key,
    totals_once_cancelled,
    with_router,
)

from staffer.gateway._protocol import V1Cycle

Start = Callable[..., LiveGateway]
CHAT = "/v1/chat/completions"


def request(path: str, key: str, body: dict[str, Any] | None = None, **extra: str) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    method = extra.pop("method", "POST" if body is not None else "GET")
    version = extra.pop("version", "1.1")
    lines = [f"{method} {path} HTTP/{version}", "host: test", f"authorization: Bearer {key}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    if body is not None:
        lines += ["content-type: application/json", f"content-length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def ask(**extra: Any) -> dict[str, Any]:
    return {"model": "scripted", "messages": [{"role": "user", "content": "hi"}], **extra}


def connect(gw: LiveGateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[bytes, bytes]:
    """One response (head, body) from `sock`; what follows it stays in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        buffer += _recv(sock)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    lower = head.lower()
    if b"content-length:" in lower:
        size = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(buffer) < size:
            buffer += _recv(sock)
        body = bytes(buffer[:size])
        buffer[:] = buffer[size:]
        return head, body
    body = bytearray()
    while True:  # chunked
        while b"\r\n" not in buffer:
            buffer += _recv(sock)
        line, _, rest = bytes(buffer).partition(b"\r\n")
        size = int(line, 16)
        while len(rest) < size + 2:
            rest += _recv(sock)
        body += rest[:size]
        buffer[:] = rest[size + 2 :]
        if size == 0:
            return head, bytes(body)


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("the server closed the connection")
    return data


def test_keep_alive_and_pipelined_requests_are_answered_in_order(live_gateway: Start) -> None:
    gw = live_gateway(SCENARIO)
    key = create_key(gw, "alice")
    with connect(gw) as sock:
        buffer = bytearray()
        for _ in range(3):  # one connection, one request after another
            sock.sendall(request(CHAT, key, ask()))
            head, body = read_response(sock, buffer)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert json.loads(body)["choices"][0]["message"]["content"] == GREETING
        # Pipelined: a models list, a completion and a 404, written at once.
        sock.sendall(
            request("/v1/models", key) + request(CHAT, key, ask()) + request("/v1/nope", key)
        )
        answers = [read_response(sock, buffer) for _ in range(3)]
    assert [h.split(b" ")[1] for h, _ in answers] == [b"200", b"200", b"404"]
    assert json.loads(answers[0][1])["object"] == "list"
    assert json.loads(answers[1][1])["choices"][0]["message"]["content"] == GREETING


def test_http_1_0_head_and_expect_100_continue(live_gateway: Start) -> None:
    gw = live_gateway(SCENARIO)
    key = create_key(gw, "bob")
    with connect(gw) as sock:  # HTTP/1.0: answered, then the connection closes
        sock.sendall(request(CHAT, key, ask(), version="1.0"))
        head, body = read_response(sock, bytearray())
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" in head.lower()
        assert json.loads(body)["choices"][0]["message"]["content"] == GREETING
        assert sock.recv(10) == b""
    with connect(gw) as sock:  # HEAD: the head of the answer GET would get, no body
        sock.sendall(request("/v1/models", key, method="HEAD") + request("/v1/models", key))
        buffer = bytearray()
        while buffer.count(b"\r\n\r\n") < 2:
            buffer += _recv(sock)
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405 ")
        assert b"content-length:" in head.lower()
        assert rest.startswith(b"HTTP/1.1 200 ")  # no body came between the two
    payload = json.dumps(ask()).encode()
    with connect(gw) as sock:  # Expect: 100-continue, then the body
        head_only = request(CHAT, key, ask(), expect="100-continue")[: -len(payload)]
        sock.sendall(head_only)
        interim = _recv(sock)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(payload)
        buffer = bytearray(interim.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n"))
        head, body = read_response(sock, buffer)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert json.loads(body)["choices"][0]["message"]["content"] == GREETING


def test_an_escaped_path_takes_the_asgi_route_to_the_same_api(live_gateway: Start) -> None:
    """What the lean path leaves to uvicorn (a %-escaped path) still reaches the API, through
    the app's /v1 mount, and a hang-up there still cancels the upstream call."""
    gw = live_gateway({**SCENARIO, "faults": [{"kind": "stall", "seconds": 30}]})
    with_router(gw)
    auth = {"authorization": f"Bearer {create_key(gw, 'carol')}"}
    escaped = "/v1/chat/completion%73"
    with pytest.raises(httpx.ReadTimeout):  # the stalled upstream; the client gives up
        httpx.post(gw.url + escaped, json=ask(model="fast"), headers=auth, timeout=0.5)
    answer = httpx.post(gw.url + escaped, json=ask(model="fast"), headers=auth, timeout=30)
    assert answer.json()["choices"][0]["message"]["content"] == GREETING
    totals = totals_once_cancelled(gw, 1)
    assert (totals["requests"], totals["cancelled"]) == (2, 1)


def test_a_hang_up_after_a_large_body_still_cancels_the_upstream_call(
    live_gateway: Start,
) -> None:
    """Past 64 KiB uvicorn stops reading until the body is taken: taking it must read on,
    or the client's hang-up would go unseen and the upstream call run to its end."""
    gw = live_gateway({**SCENARIO, "faults": [{"kind": "stall", "seconds": 30}]})
    with_router(gw)
    key = create_key(gw, "erin")
    big = ask(model="fast", messages=[{"role": "user", "content": "x" * 70_000}])
    with connect(gw) as sock:
        sock.sendall(request(CHAT, key, big))
        time.sleep(0.5)  # the request is upstream, stalled; the client gives up
    totals = totals_once_cancelled(gw, 1)
    assert (totals["requests"], totals["cancelled"]) == (1, 1)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class _Protocol:
    """What `V1Cycle` reads of its protocol."""

    def __init__(self, method: str = "POST") -> None:
        from uvicorn.protocols.http.flow_control import FlowControl

        self.transport = _Transport()
        self.flow = FlowControl(self.transport)
        self.scope = {"type": "http", "method": method}
        self.logger = self.access_logger = None
        self.access_log = False
        self.expect_100_continue = False
        self.completed = 0

        self.server_state = SimpleNamespace(default_headers=[(b"server", b"test")])

    def on_response_complete(self) -> None:
        self.completed += 1


async def test_the_head_goes_out_with_the_first_body_bytes_in_one_write() -> None:
    proto = _Protocol()
    cycle = V1Cycle(proto, keep_alive=True)  # type: ignore[arg-type]
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]}
    await cycle.send(start)
    assert proto.transport.writes == []  # held for the first body message
    await cycle.send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    assert len(proto.transport.writes) == 1
    first = proto.transport.writes[0]
    assert first.startswith(b"HTTP/1.1 200 OK\r\nserver: test\r\nx-a: 1\r\n")
    assert first.endswith(b"transfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n")
    await cycle.send({"type": "http.response.body", "body": b"", "more_body": False})
    assert proto.transport.writes[1:] == [b"0\r\n\r\n"]
    assert (cycle.response_complete, proto.completed, proto.transport.closed) == (True, 1, False)
    with pytest.raises(RuntimeError):
        await cycle.send({"type": "http.response.body", "body": b"late"})


async def test_content_length_is_kept_to_and_bad_headers_are_refused() -> None:
    proto = _Protocol()
    cycle = V1Cycle(proto, keep_alive=False)  # type: ignore[arg-type]
    headers = [(b"content-length", b"2")]
    await cycle.send({"type": "http.response.start", "status": 404, "headers": headers})
    with pytest.raises(RuntimeError, match="longer than Content-Length"):
        await cycle.send({"type": "http.response.body", "body": b"abc"})
    cycle = V1Cycle(_Protocol(), keep_alive=False)  # type: ignore[arg-type]
    await cycle.send({"type": "http.response.start", "status": 200, "headers": headers})
    await cycle.send({"type": "http.response.body", "body": b"ok"})
    assert cycle.transport.writes[0].endswith(  # type: ignore[attr-defined]
        b"content-length: 2\r\nconnection: close\r\n\r\nok"
    )
    assert cycle.transport.is_closing()
    bad = [(b"x-bad", b"a\r\nset-cookie: b")]
    cycle = V1Cycle(_Protocol(), keep_alive=True)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="invalid HTTP header"):
        await cycle.send({"type": "http.response.start", "status": 200, "headers": bad})


def test_watching_a_connection_already_gone_calls_back_at_once() -> None:
    cycle = V1Cycle(_Protocol(), keep_alive=True)  # type: ignore[arg-type]
    calls: list[str] = []
    cycle.watch(lambda: calls.append("now"))
    assert calls == []
    cycle.disconnected = True
    cycle.watch(lambda: calls.append("gone"))
    assert calls == ["gone"]
