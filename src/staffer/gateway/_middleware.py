"""Plain ASGI middleware: bearer-token auth and a request body size limit."""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths served without the token: health, and the static web UI shell, which holds no data.
PUBLIC_PATHS = frozenset({"/healthz", "/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
#: Paths that authenticate callers themselves (the OpenAI API: user keys or the token).
SELF_AUTHENTICATED_PREFIXES = ("/v1/",)


async def send_error(
    send: Send, status: int, code: str, message: str, fix: str | None = None
) -> None:
    """Write a JSON error in the gateway's one error shape."""
    error: dict[str, str] = {"code": code, "message": message}
    if fix:
        error["fix"] = fix
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="staffer"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TokenAuthMiddleware:
    """Requires ``Authorization: Bearer <token>`` on every route but the public ones."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not path or _is_public(path) or path.startswith(SELF_AUTHENTICATED_PREFIXES):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if header is None:
            await send_error(
                send,
                401,
                "unauthorized",
                "this route needs the access token",
                "send 'Authorization: Bearer <token>'; the token is in $STAFFER_HOME/token",
            )
            return
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(credentials.strip(), self._token):
            await send_error(
                send,
                401,
                "invalid_token",
                "the access token was not accepted",
                "use the token from $STAFFER_HOME/token (it changes only if that file is removed)",
            )
            return
        await self.app(scope, receive, send)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class BodyLimitMiddleware:
    """Answers 413 for bodies over `max_bytes`, by Content-Length or while reading the body.

    A body without Content-Length (chunked) is read here, up to the limit, and
    replayed to the app, so the app never sees a body it would have to refuse.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            if length.isdigit() and int(length) > self.max_bytes:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_error(
            send,
            413,
            "body_too_large",
            f"the request body is larger than {self.max_bytes} bytes",
            "send less, or raise gateway.max_body_bytes in config.toml",
        )
