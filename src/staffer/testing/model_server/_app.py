"""The ASGI app: provider endpoints, fault injection, request recording, control endpoints."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from staffer.testing.model_server._anthropic import AnthropicDialect
from staffer.testing.model_server._dialect import Dialect
from staffer.testing.model_server._openai import OpenAIDialect
from staffer.testing.model_server._reply import NoScriptMatched, Reply, plan_reply
from staffer.testing.model_server._scenario import (
    STATUS_FAULTS,
    Fault,
    FaultQueue,
    Scenario,
    ScenarioError,
    parse_scenario,
)

OPENAI: Final = OpenAIDialect()
ANTHROPIC: Final = AnthropicDialect()

# uvicorn logs an error when an app returns mid-response; for a scripted "drop" that
# is the point, so the record is hidden (only for the request that dropped on purpose).
_DROPPING: ContextVar[bool] = ContextVar("scripted_model_server_dropping", default=False)
_UNFINISHED: Final = "ASGI callable returned without completing response."


class _HideDeliberateDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_DROPPING.get() and record.msg == _UNFINISHED)


_drop_filter = _HideDeliberateDrops()


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the server received: method, path, lower-cased headers and parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    def to_dict(self) -> dict[str, Any]:
        """The request as plain JSON-ready data (what ``GET /_scripted/requests`` returns)."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
        }


class _Live:
    """The scenario in force and its fault queue; swapped whole, so readers never see a mix."""

    __slots__ = ("faults", "scenario")

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.faults = FaultQueue(scenario)


class ScriptedApp:
    """The scripted model server as an ASGI app; `ScriptedModelServer` serves it on loopback."""

    def __init__(self, scenario: Scenario, *, record_requests: bool = True) -> None:
        self._live = _Live(scenario)
        self._record = record_requests
        self.requests: list[RecordedRequest] = []
        logging.getLogger("uvicorn.error").addFilter(_drop_filter)  # idempotent
        routes = [
            Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/_scripted/requests", self._get_requests, methods=["GET"]),
            Route("/_scripted/scenario", self._put_scenario, methods=["POST", "PUT"]),
            Route("/_scripted/reset", self._reset, methods=["POST"]),
        ]
        handlers = {404: self._not_found, 405: self._not_found}
        self._app = Starlette(routes=routes, exception_handlers=handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    @property
    def scenario(self) -> Scenario:
        """The scenario in force."""
        return self._live.scenario

    def set_scenario(self, scenario: Scenario) -> None:
        """Replace the scenario; its fault queue starts from the beginning."""
        self._live = _Live(scenario)

    def reset(self) -> None:
        """Forget recorded requests and restart the fault queue."""
        self.requests.clear()
        self._live = _Live(self._live.scenario)

    # --- provider endpoints ---------------------------------------------------

    async def _chat_completions(self, request: Request) -> Response:
        return await self._answer(request, OPENAI)

    async def _messages(self, request: Request) -> Response:
        return await self._answer(request, ANTHROPIC)

    async def _models(self, request: Request) -> Response:
        dialect = ANTHROPIC if "anthropic-version" in request.headers else OPENAI
        if self._record:
            self.requests.append(_recorded(request, None))
        return _json(dialect.models(self._live.scenario.models), dialect)

    async def _answer(self, request: Request, dialect: Dialect) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if self._record:
            self.requests.append(_recorded(request, body))
        live = self._live
        fault = live.faults.next()
        if fault is not None and fault.kind in STATUS_FAULTS:
            return _error(dialect, fault.kind, retry_after=fault.retry_after)
        if not isinstance(body, dict):
            return _error(dialect, "400", "The request body must be a JSON object.")
        try:
            prompt = dialect.read_prompt(body)
            reply = plan_reply(live.scenario, prompt, dialect.new_call_id)
        except ValueError as exc:
            return _error(dialect, "400", str(exc))
        except NoScriptMatched:
            message = (
                f"Scripted model server: no script matches the last user message "
                f"{prompt.last_user[:200]!r}. Add a script with a matching 'match' "
                "(an empty match catches everything)."
            )
            return _error(dialect, "400", message)
        return _ScriptedReply(dialect, live.scenario, reply, body, fault)

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        dialect = ANTHROPIC if "anthropic-version" in request.headers else OPENAI
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = f"{request.method} {request.url.path} is not served by the scripted model server."
        _, body = dialect.error("404", message)
        return Response(body, status, media_type="application/json")

    # --- control endpoints ----------------------------------------------------

    async def _get_requests(self, request: Request) -> Response:
        data = [item.to_dict() for item in self.requests]
        return Response(json.dumps(data), media_type="application/json")

    async def _put_scenario(self, request: Request) -> Response:
        try:
            scenario = parse_scenario(json.loads(await request.body()))
        except ValueError as exc:  # JSON errors are ValueErrors; ScenarioError is not
            return Response(
                json.dumps({"error": f"not JSON: {exc}"}), 400, media_type="application/json"
            )
        except ScenarioError as exc:
            return Response(json.dumps({"error": str(exc)}), 400, media_type="application/json")
        self.set_scenario(scenario)
        return Response(b'{"ok":true}', media_type="application/json")

    async def _reset(self, request: Request) -> Response:
        self.reset()
        return Response(b'{"ok":true}', media_type="application/json")


class _ScriptedReply(Response):
    """Writes a reply at the scenario's pace, injecting the request's fault if it has one."""

    def __init__(
        self,
        dialect: Dialect,
        scenario: Scenario,
        reply: Reply,
        body: dict[str, Any],
        fault: Fault | None,
    ) -> None:
        self._dialect = dialect
        self._reply = reply
        self._body = body
        self._fault = fault
        self._ttft = scenario.ttft_ms / 1000
        self._inter = scenario.inter_chunk_ms / 1000
        self.status_code = 200
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self._fault
        if (
            fault is not None
            and fault.kind == "stall"
            and await _until_disconnect(receive, fault.seconds)
        ):
            return
        if self._dialect.wants_stream(self._body):
            await self._stream(receive, send)
        else:
            await self._message(receive, send)

    async def _stream(self, receive: Receive, send: Send) -> None:
        dialect, fault = self._dialect, self._fault
        frames = dialect.stream(self._reply, self._body)
        cut = -1
        if fault is not None and fault.kind in ("stall_mid", "drop", "malformed"):
            cut = min(fault.after_chunks, len(frames) - 1)  # always before the closing event
        await send(_start(dialect, b"text/event-stream; charset=utf-8"))
        pending: list[bytes] = []
        seen_content = False
        for i, (data, is_content) in enumerate(frames):
            if i == cut and fault is not None:
                if fault.kind == "malformed":
                    pending.append(dialect.malformed_frame())
                else:
                    await _flush(send, pending)
                    if fault.kind == "drop":
                        _DROPPING.set(True)
                        return  # uvicorn closes the connection: the client sees a cut body
                    if await _until_disconnect(receive, fault.seconds):
                        return
            paced = is_content and seen_content
            delay = self._ttft if i == 0 else (self._inter if paced else 0.0)
            seen_content = seen_content or is_content
            if delay > 0:
                await _flush(send, pending)
                if i == 0:
                    if await _until_disconnect(receive, delay):
                        return
                else:
                    await asyncio.sleep(delay)
            pending.append(data)  # frames without a delay between them go out in one write
        await send({"type": "http.response.body", "body": b"".join(pending), "more_body": False})

    async def _message(self, receive: Receive, send: Send) -> None:
        dialect, fault = self._dialect, self._fault
        body = dialect.message(self._reply, self._body)
        delay = self._ttft + self._inter * max(0, self._reply.chunk_count - 1)
        if delay > 0 and await _until_disconnect(receive, delay):
            return
        kind = fault.kind if fault is not None else None
        if kind == "malformed":
            body = body[: len(body) // 2]
        await send(_start(dialect, b"application/json", len(body)))
        if (
            kind == "stall_mid"
            and fault is not None
            and await _until_disconnect(receive, fault.seconds)
        ):
            return
        if kind == "drop":
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            _DROPPING.set(True)
            return
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _start(dialect: Dialect, content_type: bytes, length: int | None = None) -> dict[str, Any]:
    headers = [
        (b"content-type", content_type),
        (dialect.request_id_header, b"req_" + uuid.uuid4().hex[:24].encode()),
    ]
    if length is None:
        headers.append((b"cache-control", b"no-cache"))
    else:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": 200, "headers": headers}


async def _flush(send: Send, pending: list[bytes]) -> None:
    if pending:
        await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
        pending.clear()


async def _until_disconnect(receive: Receive, seconds: float) -> bool:
    """Wait `seconds`; True if the client hung up first (then there is nobody to answer)."""
    try:
        async with asyncio.timeout(seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


def _recorded(request: Request, body: Any) -> RecordedRequest:
    return RecordedRequest(request.method, request.scope["path"], dict(request.headers), body)


def _json(body: bytes, dialect: Dialect) -> Response:
    request_id = "req_" + uuid.uuid4().hex[:24]
    headers = {dialect.request_id_header.decode(): request_id}
    return Response(body, headers=headers, media_type="application/json")


def _error(
    dialect: Dialect, kind: str, message: str | None = None, *, retry_after: float | None = None
) -> Response:
    status, body = dialect.error(kind, message)
    headers = {dialect.request_id_header.decode(): "req_" + uuid.uuid4().hex[:24]}
    if kind == "429" and retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    return Response(body, status, headers=headers, media_type="application/json")
