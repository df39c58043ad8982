"""The HTTP plumbing both adapters share: clients, timeouts, SSE streaming (over
`_transport`, or httpx when given a client or a proxy is configured) and the one place
where HTTP statuses and transport failures become Staffer errors.

    HTTP 401/403                    -> AuthenticationError
    HTTP 429                        -> RateLimitError (retry_after from the headers)
    HTTP 402, insufficient_quota    -> ProviderError (billing; retrying will not help)
    HTTP 5xx, 408, 409              -> ProviderUnavailableError
    other 4xx                       -> BadRequestError, or ContextLengthError when the
                                       provider says the prompt does not fit
    connect errors, timeouts, drops -> ProviderUnavailableError
    undecodable data, non-HTTP      -> ProtocolError
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import json.scanner
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, cast

import httpx
import orjson

from staffer.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    ProtocolError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
)
from staffer.models import _transport
from staffer.models._sse import SSEDecoder, SSEEvent

logger = logging.getLogger("staffer.models")

CONNECT_TIMEOUT = 10.0
BODY_LIMIT = 4096
DRAIN_SECONDS = 0.1
DRAIN_BYTES = 65_536

_CONTEXT_RE = re.compile(
    r"context[ _-]?(length|window|size)|prompt is too long|maximum context|too many tokens"
    r"|reduce the length of the messages|input is too long",
    re.IGNORECASE,
)


@dataclass(slots=True, frozen=True)
class Endpoint:
    """Who we are talking to, for error messages: provider name, base URL, key variable, budget."""

    provider: str
    base_url: str
    key_env: str | None
    timeout: float


def make_client() -> httpx.AsyncClient:
    """One pooled, keep-alive client per adapter; timeouts are set per request."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=60),
    )


def request_timeout(total: float, connect: float = CONNECT_TIMEOUT) -> httpx.Timeout:
    """Connect gets at most `connect` s; a single read may wait up to the whole budget."""
    return httpx.Timeout(total, connect=min(connect, total))


_LONG_NUMBER = re.compile(rb"\d{20}")
# typeshed types make_scanner's argument as itself; it takes the decoder for its settings.
_scan_once = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def loads(data: bytes) -> Any:
    """`json.loads` for one stream chunk or request body, through orjson.

    What orjson refuses and the standard library takes (NaN, 1e400) goes to the
    standard library, which also words the error, and so does a text with a run of 20
    digits (an integer over 64 bits, which orjson would turn into a float). Raises
    ValueError (a JSONDecodeError, or UnicodeDecodeError) like `json.loads`.
    """
    if not _LONG_NUMBER.search(data):  # orjson would round an integer over 64 bits
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    text = data.decode()
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)  # leading whitespace, or raise the proper JSONDecodeError
    if end != len(text) and text[end:].strip():
        return json.loads(text)  # raises "Extra data"
    return value


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_json(body: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON; a lone surrogate (broken text from a tool) becomes "?".

    orjson writes it; what orjson refuses (a lone surrogate, an integer over 64 bits, a
    key that is not a string) the standard library writes. NaN and infinities, which are
    not JSON, become null.
    """
    try:
        return orjson.dumps(body)
    except TypeError:
        return _encode(body).encode("utf-8", "replace")


def truncate(body: str, limit: int = BODY_LIMIT) -> str:
    """`body` cut to `limit` characters, saying how much was left out."""
    return body if len(body) <= limit else body[:limit] + f"… [{len(body) - limit} more chars]"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _describe(body: str) -> tuple[str, str]:
    """The provider's own message and error code/type, from whichever JSON shape it uses."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500], ""
    if not isinstance(data, dict):
        return body.strip()[:500], ""
    err = data.get("error", data)
    if isinstance(err, str):
        return err, ""
    if isinstance(err, dict):
        message = err.get("message") or err.get("detail") or data.get("message")
        code = err.get("code") or err.get("type") or ""
        if message:
            return str(message), str(code)
    detail = data.get("detail") or data.get("message")
    return (str(detail) if detail else body.strip()[:500]), ""


def error_for_status(
    ep: Endpoint, status: int, body: str, headers: Mapping[str, str] | None = None
) -> ProviderError:
    """Translate an HTTP error answer into the matching `ProviderError` subclass."""
    message, code = _describe(body)
    message = " ".join(message.split()) or "(no message)"
    if message[-1] not in ".!?":
        message += "."
    body = truncate(body)
    kw: dict[str, Any] = {"provider": ep.provider, "status": status, "body": body}
    p = ep.provider
    if status in (401, 403):
        fix = (
            f"check that {ep.key_env} holds a valid, active key for {p}"
            if ep.key_env
            else "set model.api_key_env to the variable that holds this server's key"
        )
        return AuthenticationError(
            f"the key for {p} was rejected (HTTP {status}): {message} Fix: {fix}.", **kw
        )
    if status == 402 or code == "insufficient_quota":
        return ProviderError(
            f"{p} refused the call for billing reasons (HTTP {status}): {message} "
            "Fix: check the account's credits and plan with the provider.",
            **kw,
        )
    if status == 429:
        wait = retry_after(headers or {})
        hint = f"retry after {wait:g} s" if wait is not None else "wait a little and retry"
        return RateLimitError(
            f"{p} is rate limiting requests (HTTP 429): {message} Fix: {hint}, "
            "or lower the request rate.",
            retry_after=wait,
            **kw,
        )
    if status >= 500 or status in (408, 409):
        return ProviderUnavailableError(
            f"{p} is unavailable (HTTP {status}): {message} "
            "Fix: retry later; if it persists, check the provider's status or the server's log.",
            **kw,
        )
    if code == "context_length_exceeded" or _CONTEXT_RE.search(message):
        return ContextLengthError(
            f"the conversation does not fit {p}'s context window (HTTP {status}): {message} "
            "Fix: shorten the history or use a model with a larger context window.",
            **kw,
        )
    fix = (
        "check model.name and model.base_url"
        if status == 404
        else "check the model name and the request; retrying will not help"
    )
    return BadRequestError(f"{p} refused the request (HTTP {status}): {message} Fix: {fix}.", **kw)


def error_for_stream_payload(ep: Endpoint, payload: Mapping[str, Any], raw: bytes) -> ProviderError:
    """An error the provider reported inside a 200 stream (Anthropic `error` events and
    OpenAI-compatible `{"error": ...}` chunks), mapped as if it had been an HTTP status."""
    err = payload.get("error")
    kind = str(err.get("type") or err.get("code") or "") if isinstance(err, dict) else ""
    status = {
        "authentication_error": 401,
        "permission_error": 403,
        "not_found_error": 404,
        "rate_limit_error": 429,
        "overloaded_error": 529,
        "api_error": 500,
        "server_error": 500,
        "invalid_request_error": 400,
        "context_length_exceeded": 400,
    }.get(kind)
    if status is None:
        code = err.get("code") if isinstance(err, dict) else None
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
    return error_for_status(ep, status, raw.decode("utf-8", "replace"))


def malformed(ep: Endpoint, data: bytes, exc: ValueError, chunks: int) -> ProtocolError:
    """A stream chunk that is not the JSON the wire format promises (or not JSON at all)."""
    text = data.decode("utf-8", "replace")
    return ProtocolError(
        f"{ep.provider} sent an unreadable stream chunk after {chunks} chunks ({exc}): "
        f"{text[:200]!r}. Fix: retry; if it keeps happening the server at {ep.base_url} "
        "is not speaking the expected API.",
        provider=ep.provider,
        body=truncate(text),
    )


async def _drain(chunks: AsyncIterator[bytes], deadline: float) -> None:
    """Read what is left of a body, briefly, so httpx can return the connection to its pool."""
    seen = 0
    with contextlib.suppress(Exception):  # any failure only means the connection is not reused
        async with asyncio.timeout_at(deadline):
            async for piece in chunks:
                seen += len(piece)
                if seen > DRAIN_BYTES:
                    return


async def stream_events(
    client: httpx.AsyncClient, request: httpx.Request, ep: Endpoint
) -> AsyncGenerator[list[SSEEvent], None]:
    """Send `request` and yield its SSE events, the ones each network read completed
    together, translating every failure on the way.

    The whole call, from sending to the last byte, must fit `ep.timeout`; each
    network read is bounded by the remaining budget, so a stalled or trickling
    stream fails on time without a timer spanning the consumer's code. Close it with
    `contextlib.aclosing` when stopping early, so the connection can be reused.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ep.timeout
    decoder = SSEDecoder()  # counts the events, for the error messages
    kw: dict[str, Any] = {"provider": ep.provider}
    try:
        async with asyncio.timeout_at(deadline):
            response = await client.send(request, stream=True)
        try:
            kw["status"] = response.status_code
            if response.status_code >= 400:
                async with asyncio.timeout_at(deadline):
                    body = (await response.aread()).decode("utf-8", "replace")
                raise error_for_status(ep, response.status_code, body, response.headers)
            logger.debug("%s answered %s %s", ep.provider, response.status_code, request.url)
            chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
            try:
                while True:
                    async with asyncio.timeout_at(deadline):
                        try:
                            chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                    if batch := decoder.feed(chunk):
                        yield batch
                if batch := decoder.flush():
                    yield batch
            except GeneratorExit:
                # The caller stopped at the final event ([DONE], message_stop); the body's
                # end is normally already buffered. Reading it keeps the connection alive.
                await _drain(chunks, min(deadline, loop.time() + DRAIN_SECONDS))
                raise
            finally:
                await chunks.aclose()
        finally:
            await response.aclose()
    except TimeoutError as exc:
        raise _timed_out(ep, decoder.count, kw) from exc
    except httpx.ConnectError as exc:
        raise _cannot_connect(ep, exc, kw) from exc
    except httpx.TimeoutException as exc:
        raise ProviderUnavailableError(
            f"{ep.provider} timed out ({type(exc).__name__}) after {decoder.count} chunks. "
            "Fix: retry, or check that the server at the base URL is reachable.",
            **kw,
        ) from exc
    except httpx.DecodingError as exc:
        raise ProtocolError(
            f"{ep.provider} sent a response body that could not be decoded: {exc}.", **kw
        ) from exc
    except httpx.TransportError as exc:
        raise _dropped(ep, decoder.count, exc, kw) from exc


async def stream_transport_events(
    pool: _transport.ConnectionPool,
    target: _transport.Target,
    headers: Mapping[str, str],
    body: bytes,
    ep: Endpoint,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> AsyncGenerator[list[SSEEvent], None]:
    """`stream_events` over `_transport`; its one deadline timer aborts the socket when due."""
    deadline = asyncio.get_running_loop().time() + ep.timeout
    decoder = SSEDecoder()  # counts the events, for the error messages
    kw: dict[str, Any] = {"provider": ep.provider}
    try:
        response = await pool.request(
            "POST", target, headers, body, deadline=deadline, connect_timeout=connect_timeout
        )
        try:
            status = kw["status"] = response.status
            if status >= 400:
                text = (await response.aread()).decode("utf-8", "replace")
                raise error_for_status(ep, status, text, response.headers)
            try:
                async for chunk in response:
                    if batch := decoder.feed(chunk):
                        yield batch
                if batch := decoder.flush():
                    yield batch
            except GeneratorExit:
                # The caller stopped at [DONE]; wait a moment for the body's end to reuse it.
                await response.drain(DRAIN_SECONDS, DRAIN_BYTES)
                raise
        finally:
            response.close()
    except TimeoutError as exc:
        raise _timed_out(ep, decoder.count, kw) from exc
    except _transport.ConnectError as exc:  # refused, DNS, TLS, or the connect timeout
        raise _cannot_connect(ep, exc, kw) from exc
    except _transport.RemoteProtocolError as exc:
        msg = f"{ep.provider} at {ep.base_url} did not answer in HTTP/1.1 ({exc}). Fix: check it."
        raise ProtocolError(msg, **kw) from exc
    except _transport.ReadError as exc:
        raise _dropped(ep, decoder.count, exc, kw) from exc


def _timed_out(ep: Endpoint, count: int, kw: dict[str, Any]) -> ProviderError:
    return ProviderUnavailableError(
        f"{ep.provider} did not finish within {ep.timeout:g} s (after {count} chunks). "
        "Fix: retry, raise model.timeout, or use a faster model.",
        **kw,
    )


def _cannot_connect(ep: Endpoint, exc: Exception, kw: dict[str, Any]) -> ProviderError:
    return ProviderUnavailableError(
        f"could not connect to {ep.provider} at {ep.base_url}: {exc or type(exc).__name__}. "
        "Fix: check model.base_url and that the server is running.",
        **kw,
    )


def _dropped(ep: Endpoint, count: int, exc: Exception, kw: dict[str, Any]) -> ProviderError:
    return ProviderUnavailableError(
        f"connection to {ep.provider} dropped after {count} chunks "
        f"({exc or type(exc).__name__}). Fix: retry; if it persists, check the server.",
        **kw,
    )


def ended_early(ep: Endpoint, chunks: int) -> ProviderUnavailableError:
    """The stream closed cleanly but before the provider said it was done."""
    return ProviderUnavailableError(
        f"connection to {ep.provider} dropped after {chunks} chunks: the stream ended before "
        "the answer was complete. Fix: retry; if it persists, check the server.",
        provider=ep.provider,
        status=200,
    )


def shape_error(ep: Endpoint, data: bytes, exc: Exception, chunks: int) -> ProtocolError:
    """Valid JSON, but not shaped like the wire format (a list where an object belongs)."""
    return malformed(ep, data, ValueError(f"unexpected shape: {exc}"), chunks)
