"""The OpenAI-compatible endpoint: ``POST /v1/chat/completions`` and ``GET /v1/models``.

A plain ASGI app mounted at ``/v1`` (no pydantic models, no per-chunk logging): it is
the gateway's hot path. Callers authenticate with a user's API key (``staffer keys
create``) or the gateway's own token. The request goes to the gateway's model, the
router when one is configured, with ``request.model`` naming an alias or a deployment.

Streams are passed through unbuffered, one ``data:`` chunk per upstream text or
tool-call delta. The response starts only when the model's first event arrives, so a
provider that fails before answering gets a real HTTP status (429, 502, 503) instead
of a 200 with an error inside.

    401 invalid_api_key          no key, or a key that is unknown or revoked
    404 model_not_found          neither an alias nor a deployment (nor the one model)
    400 invalid_request_error    a malformed request; `param` names the field
    429 / 502 / 503              the provider failed (after the router's retries and fallbacks)
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import Receive, Scope, Send

from staffer.errors import (
    BadRequestError,
    ContextLengthError,
    ProviderError,
    RateLimitError,
)
from staffer.gateway._apikeys import ApiKeyCache
from staffer.gateway._openai_wire import (
    DONE,
    ChatRequest,
    ChunkWriter,
    WireError,
    completion,
    error_body,
    model_list,
    parse_request,
)
from staffer.gateway._state import GatewayState
from staffer.models import (
    Finish,
    Model,
    ModelEvent,
    ResponseBuilder,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from staffer.router import RouterConfig

logger = logging.getLogger("staffer.gateway")

_JSON = (b"content-type", b"application/json")
_SSE_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ],
}
ADMIN_USER = "admin"
#: A scope extension the gateway's own protocol offers (`staffer.gateway._protocol`):
#: ``{"watch": callback}`` calls back when the client hangs up before the response ends.
DISCONNECT = "staffer.disconnect"


class _Unknown(Exception):
    """The request named a model this gateway does not serve."""


def model_names(model: Model) -> list[str]:
    """What callers may ask for: the router's aliases and deployments, or the one model."""
    config = getattr(model, "config", None)
    if isinstance(config, RouterConfig):
        return [*config.aliases, *(d for d in config.deployments if d not in config.aliases)]
    short = getattr(model, "model", None)
    return [short] if isinstance(short, str) else [model.name]


def _route(model: Model, name: str) -> str | None:
    """The `ModelRequest.model` for the name a caller asked for."""
    if isinstance(getattr(model, "config", None), RouterConfig):
        return name  # the router resolves (and rejects) names itself
    if name == model.name or name in model_names(model):
        return None  # a bare adapter: its own model
    raise _Unknown(name)


class OpenAIApi:
    """The ``/v1`` ASGI app. `admin_token` (the gateway token) is accepted as a key too;
    without it (gateway auth off, loopback only) requests need no key at all."""

    def __init__(self, *, admin_token: str | None, keys: ApiKeyCache | None = None) -> None:
        self._admin = admin_token.encode() if admin_token else None
        self.keys = keys or ApiKeyCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # get_route_path, without a call
            path = path[len(root) :]
        path = path.rstrip("/")
        method = scope["method"]
        if path not in ("/chat/completions", "/models"):
            await _error(send, 404, f"no route {scope['path']}", "invalid_request_error", None)
            return
        wanted = "POST" if path == "/chat/completions" else "GET"
        if method != wanted:
            await _error(send, 405, f"use {wanted} {scope['path']}", "invalid_request_error", None)
            return
        state: GatewayState = scope["app"].state.staffer
        who = await self._authenticate(scope, state)
        if who is None:
            await _error(
                send,
                401,
                "Incorrect API key provided. Create one with `staffer keys create --user NAME` "
                "and send it as 'Authorization: Bearer sk-staffer-…'.",
                "invalid_request_error",
                "invalid_api_key",
            )
            return
        model = state.model
        if model is None:
            await _error(send, 503, state.model_help.strip(), "server_error", "no_model")
            return
        if path == "/models":
            await _json(send, 200, model_list(model_names(model)))
            return
        body = await _read_body(receive)
        if body is None:
            return
        try:
            chat = parse_request(body)
        except WireError as exc:
            await _error(send, 400, exc.message, "invalid_request_error", None, exc.param)
            return
        try:
            chat.request.model = _route(model, chat.model)
        except _Unknown:
            await _unknown_model(send, chat.model, model)
            return
        user, key_id = who
        metadata = chat.request.metadata
        metadata["channel"] = "api"
        metadata["user"] = chat.end_user if user == ADMIN_USER and chat.end_user else user
        if key_id:
            metadata["api_key"] = key_id
        if chat.end_user:
            metadata["end_user"] = chat.end_user
        hang_up = _HangUp(scope, receive)
        try:
            if chat.stream:
                await _stream(send, model, chat, hang_up)
            else:
                await _answer(send, model, chat, hang_up)
        except asyncio.CancelledError:
            if not hang_up.gone:
                raise
            hang_up.task.uncancel()  # the client left: nothing more to do
        finally:
            hang_up.stop()

    async def _authenticate(self, scope: Scope, state: GatewayState) -> tuple[str, str] | None:
        """(user, key id) for the caller; the gateway token is user ``admin`` with no key id."""
        header = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        scheme, _, credentials = (header or b"").partition(b" ")
        credentials = credentials.strip()
        if scheme.lower() == b"bearer" and credentials:
            if self._admin is not None and hmac.compare_digest(credentials, self._admin):
                return ADMIN_USER, ""
            owner = await self.keys.owner(state.store, credentials.decode("latin-1"))
            if owner is not None:
                return owner.user, owner.key_id
        return None if self._admin is not None else ("local", "")


class _HangUp:
    """Cancels the request's task if the client hangs up (so the upstream call stops),
    until `stop` is called.

    An answer calls `stop` as soon as its last byte is sent: the server reports a
    finished response as a disconnect, and what still runs then (the router's metrics
    and cost records, a cache fill) must not be cancelled. The gateway's own protocol
    reports the hang-up with a callback (the `DISCONNECT` extension); other servers
    through `receive`, which a watcher task waits on.
    """

    __slots__ = ("_start", "_watcher", "gone", "stopped", "task")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.gone = False
        self.stopped = False
        self._watcher: asyncio.Task[None] | None = None
        self._start: asyncio.Handle | None = None
        extension = scope.get("extensions", {}).get(DISCONNECT)
        if extension is not None:
            extension["watch"](self._hung_up)
        else:
            # The watcher starts once the request's task yields: creating a task costs
            # more than scheduling a callback, and the upstream request goes out first.
            self._start = task.get_loop().call_soon(self._watch, receive)

    def _watch(self, receive: Receive) -> None:
        self._watcher = asyncio.create_task(self._wait(receive))

    async def _wait(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._hung_up()

    def _hung_up(self) -> None:
        if not self.stopped:
            self.gone = True
            self.task.cancel()

    def stop(self) -> None:
        self.stopped = True
        if self._start is not None:
            self._start.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


async def _answer(send: Send, model: Model, chat: ChatRequest, hang_up: _HangUp) -> None:
    """A non-streamed answer, sent as soon as the model's Finish event arrives."""
    builder = ResponseBuilder()
    events = model.stream(chat.request)
    try:  # not `aclosing`: a context manager costs calls on the hot path
        try:
            async for event in events:
                builder.add(event)
                if isinstance(event, Finish):
                    break
        except ProviderError as exc:
            await _provider_error(send, exc, chat.model, model)
            return
        await _json(send, 200, completion(chat.model, builder.build()))
        await _finish(events, chat.model, hang_up)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def _stream(send: Send, model: Model, chat: ChatRequest, hang_up: _HangUp) -> None:
    writer = ChunkWriter(chat.model)
    usage = Usage()
    events = model.stream(chat.request)
    try:
        try:
            first: ModelEvent | None = await anext(events)
        except StopAsyncIteration:
            first = None
        except ProviderError as exc:
            await _provider_error(send, exc, chat.model, model)
            return
        await send(_SSE_START)
        out = writer.role()
        try:
            event = first
            while event is not None:
                # One downstream chunk per upstream delta, sent as soon as it arrives.
                if isinstance(event, TextDelta):
                    out += writer.text(event.text)
                elif isinstance(event, ToolCallDelta):
                    out += writer.tool_call(event)
                elif isinstance(event, Usage):
                    usage = usage + event
                else:  # Finish, the last event: the end of the stream goes out with it
                    out += writer.finish(event.reason)
                    break
                if out:
                    await send(
                        {"type": "http.response.body", "body": out.encode(), "more_body": True}
                    )
                    out = ""
                event = await anext(events, None)
            else:
                out += writer.finish("stop")
        except ProviderError as exc:
            # Headers are gone: report it the way OpenAI does mid-stream, as an error chunk.
            kind, code = _kind_of(exc)
            error = error_body(_message(exc), kind, code).decode()
            await send({"type": "http.response.body", "body": f"data: {error}\n\n".encode()})
            return
        if chat.include_usage:
            out += writer.usage(usage)
        await send({"type": "http.response.body", "body": out.encode() + DONE})
        await _finish(events, chat.model, hang_up)
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def _finish(events: AsyncIterator[ModelEvent], name: str, hang_up: _HangUp) -> None:
    """Read a stream past its Finish event to its end, once the answer is on its way.

    The layers below do their bookkeeping when their streams end (the router records
    the attempt for metrics and costs, the cache stores the answer); the caller need
    not wait for it, and neither should other requests: yield to them first. Nothing
    should follow Finish: what does is logged and dropped.
    """
    hang_up.stop()
    await asyncio.sleep(0)
    try:
        async for event in events:
            logger.warning("model %s sent a %s event after its Finish; dropped", name, event.type)
    except ProviderError as exc:
        logger.warning("model %s failed after its answer was sent: %s", name, _message(exc))


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _message(exc: ProviderError) -> str:
    return " ".join(str(exc).split())


def _kind_of(exc: ProviderError) -> tuple[str, str | None]:
    if isinstance(exc, RateLimitError) or exc.status == 429:
        return "rate_limit_error", "rate_limit_exceeded"
    if isinstance(exc, ContextLengthError):
        return "invalid_request_error", "context_length_exceeded"
    if isinstance(exc, BadRequestError):
        if exc.status == 404:
            return "invalid_request_error", "model_not_found"
        return "invalid_request_error", None
    return "server_error", "upstream_error"


def _status_of(exc: ProviderError) -> int:
    if isinstance(exc, RateLimitError) or exc.status == 429:
        return 429  # also when the router gave up and the last deployment said 429
    if isinstance(exc, BadRequestError):
        return 404 if exc.status == 404 else 400
    if exc.status in (503, 529) or (exc.provider == "router" and exc.status is None):
        return 503  # overloaded, or every deployment is unavailable (breakers open)
    return 502  # other 5xx, timeouts, a rejected provider key, billing, unreadable answers


async def _provider_error(send: Send, exc: ProviderError, name: str, model: Model) -> None:
    if isinstance(exc, BadRequestError) and exc.status == 404 and exc.provider == "router":
        await _unknown_model(send, name, model)
        return
    kind, code = _kind_of(exc)
    headers = []
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
    await _json(send, _status_of(exc), error_body(_message(exc), kind, code), headers)


async def _unknown_model(send: Send, name: str, model: Model) -> None:
    known = ", ".join(model_names(model))
    await _error(
        send,
        404,
        f"The model {name!r} does not exist on this Staffer gateway. Use one of: {known} "
        "(GET /v1/models lists them).",
        "invalid_request_error",
        "model_not_found",
        "model",
    )


async def _error(
    send: Send, status: int, message: str, kind: str, code: str | None, param: str | None = None
) -> None:
    headers = [(b"www-authenticate", b'Bearer realm="staffer"')] if status == 401 else []
    await _json(send, status, error_body(message, kind, code, param), headers)


async def _json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": status,
        "headers": [_JSON, (b"content-length", str(len(body)).encode()), *(headers or ())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
