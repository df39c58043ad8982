"""The gateway's HTTP protocol: uvicorn's httptools protocol, with ``/v1/…`` requests
handed straight to the OpenAI-compatible API.

The OpenAI API is the gateway's hot path. Going through the ASGI stack the rest of the
gateway uses cost it about 0.3 ms a request on the reference machine (FastAPI's routing
and middleware, then uvicorn's proxy-headers middleware and its per-request cycle). Here
a ``/v1`` request gets a plain ASGI scope and a `V1Cycle`, and its task runs `OpenAIApi`
directly, with the body size limit checked from Content-Length in the protocol (a
chunked body goes through `BodyLimitMiddleware`, which reads it up to the limit). Every
other request takes uvicorn's path unchanged.

`V1Cycle` is uvicorn's `RequestResponseCycle` (the protocol reads its request-side
state) with a shorter `send`: it holds the status line and headers back until the first
body message, which `OpenAIApi` always sends next, so a response's head and its first
bytes leave in one write — one packet for a stream's first chunk, not two.

This leans on uvicorn's protocol internals (``self.url``, ``self.headers``, the cycle's
fields), which is why uvicorn is pinned; ``tests/gateway/test_protocol.py`` covers the
paths taken here, so an upgrade that changes them fails there first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.routing import Mount
from starlette.types import ASGIApp, Message
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from staffer.gateway._middleware import BodyLimitMiddleware
from staffer.gateway._openai_api import DISCONNECT, OpenAIApi

PREFIX = "/v1"
_PREFIX_SLASH = b"/v1/"


def mounted_api(app: FastAPI) -> OpenAIApi | None:
    """The `OpenAIApi` that `app` mounts at ``/v1``, if it does."""
    for route in app.routes:
        if isinstance(route, Mount) and route.path == PREFIX and isinstance(route.app, OpenAIApi):
            return route.app
    return None


def gateway_protocol(app: FastAPI, *, max_body_bytes: int) -> type[HttpToolsProtocol]:
    """The protocol class to serve `app` with: `GatewayProtocol` bound to the API `app`
    mounts at ``/v1`` (uvicorn's own protocol when it mounts none)."""
    api = mounted_api(app)
    if api is None:
        return HttpToolsProtocol
    namespace = {
        "fastapi_app": app,
        "api": api,
        "limited_api": BodyLimitMiddleware(api, max_bytes=max_body_bytes),
        "max_body_bytes": max_body_bytes,
    }
    return type("GatewayProtocol", (GatewayProtocol,), namespace)


class GatewayProtocol(HttpToolsProtocol):
    """Serves ``/v1/…`` with `api` on a `V1Cycle`; everything else as uvicorn does."""

    fastapi_app: FastAPI
    api: OpenAIApi
    limited_api: ASGIApp
    max_body_bytes: int

    def on_headers_complete(self) -> None:
        url = self.url
        limit = self.limit_concurrency
        if (
            not url.startswith(_PREFIX_SLASH)
            or self.root_path
            or self.parser.should_upgrade()
            or (limit is not None and max(len(self.connections), len(self.tasks)) >= limit)
        ):
            super().on_headers_complete()  # (at the concurrency limit, uvicorn answers 503)
            return
        parser = self.parser
        http_version = parser.get_http_version()
        method = parser.get_method().decode("ascii")
        raw_path, _, query = url.partition(b"?")
        path = raw_path.decode("ascii")
        if "%" in path:  # /v1 routes have none: leave the unusual to uvicorn
            super().on_headers_complete()
            return
        scope = self.scope
        scope["method"] = method
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = query.partition(b"#")[0]
        scope["root_path"] = PREFIX
        scope["app"] = self.fastapi_app  # type: ignore[typeddict-unknown-key]
        app: ASGIApp = self.limited_api
        for name, value in self.headers:
            if name == b"content-length":
                if value.isdigit() and int(value) <= self.max_body_bytes:
                    app = self.api
                break
        existing = self.cycle
        self.cycle = cycle = V1Cycle(
            self,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
        )
        scope["extensions"] = {DISCONNECT: {"watch": cycle.watch}}
        if existing is None or existing.response_complete:
            self._start_asgi_task(self.cycle, app)  # type: ignore[arg-type]
        else:  # a pipelined request waits for the one before it
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if isinstance(cycle, V1Cycle) and cycle.disconnected and cycle.on_disconnect:
            cycle.on_disconnect()


class V1Cycle(RequestResponseCycle):
    """One ``/v1`` request and its response; see the module docstring."""

    def __init__(self, protocol: GatewayProtocol, *, keep_alive: bool) -> None:
        # RequestResponseCycle's fields, set directly: its __init__ takes eleven arguments.
        self.scope = protocol.scope
        self.transport = protocol.transport
        self.flow = protocol.flow
        self.logger = protocol.logger
        self.access_logger = protocol.access_logger
        self.access_log = protocol.access_log
        self.default_headers = protocol.server_state.default_headers
        self.message_event = asyncio.Event()
        self.on_response = protocol.on_response_complete
        self.disconnected = False
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = protocol.expect_100_continue
        self.body = bytearray()
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.chunked_encoding: bool | None = None
        self.expected_content_length = 0
        self.head = b""  # the status line and headers, until the first body message
        self.on_disconnect: Callable[[], None] | None = None

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` if the client goes away before the response is complete (the
        ``staffer.disconnect`` extension: no task waiting on `receive` for it)."""
        if self.disconnected:  # gone already (while the app read the body or the store)
            callback()
            return
        self.on_disconnect = callback

    async def receive(self) -> Message:  # type: ignore[override]
        # The usual case, a body that has arrived whole, without the event's wait.
        waiting = self.more_body or self.waiting_for_100_continue or self.disconnected
        if not waiting and not self.response_complete and self.message_event.is_set():
            # Reading stopped if the body passed 64 KiB: without it, no hang-up is seen.
            self.flow.resume_reading()
            self.message_event.clear()
            body, self.body = bytes(self.body), bytearray()
            return {"type": "http.request", "body": body, "more_body": False}
        return await super().receive()  # type: ignore[return-value]

    async def send(self, message: Message) -> None:  # type: ignore[override]
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(f"expected 'http.response.start', got {message['type']!r}")
            self.response_started = True
            self.waiting_for_100_continue = False
            self.head = self._head(message["status"], message.get("headers", ()))
            return
        if self.response_complete or message["type"] != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {message['type']!r}")
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            data = b""
            self.expected_content_length = 0
        elif self.chunked_encoding:
            data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more_body:
                data += b"0\r\n\r\n"
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            data = body
        if self.head:
            data = self.head + data
            self.head = b""
        if data:
            self.transport.write(data)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.on_disconnect = None
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()

    def _head(self, status: int, headers: Any) -> bytes:
        """The status line and headers, framed as uvicorn frames them."""
        content = [STATUS_LINE[status]]
        for name, value in self.default_headers:  # uvicorn's own (date, server)
            content += (name, b": ", value, b"\r\n")
        close = False
        for name, value in headers:
            if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
                raise RuntimeError(f"invalid HTTP header {name!r}")
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value)
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection" and b"close" in value.lower():
                self.keep_alive = False
                close = True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not close:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status not in (204, 304)
        ):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)
