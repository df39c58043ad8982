"""The status → error table in _http, and errors reported inside a 200 stream."""

from __future__ import annotations

import json
import time
from email.utils import formatdate

import httpx
import pytest

from staffer.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
)
from staffer.models import AnthropicModel, Message, ModelRequest
from staffer.models._http import BODY_LIMIT, Endpoint, error_for_status, retry_after

EP = Endpoint("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", 120.0)


def test_retry_after_accepts_seconds_dates_and_milliseconds() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    future = retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)})
    assert future is not None
    assert 25 < future <= 30
    assert retry_after({"retry-after": formatdate(time.time() - 30, usegmt=True)}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_rate_limit_with_http_date() -> None:
    headers = {"retry-after": formatdate(time.time() + 10, usegmt=True)}
    exc = error_for_status(EP, 429, '{"error": {"message": "slow down"}}', headers)
    assert isinstance(exc, RateLimitError)
    assert exc.retry_after is not None
    assert 5 < exc.retry_after <= 10


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (403, '{"error": {"message": "forbidden"}}', AuthenticationError),
        (422, '{"detail": [{"msg": "field required"}]}', BadRequestError),
        (413, "request entity too large", BadRequestError),
        (400, '{"error": "the request exceeds the available context size"}', ContextLengthError),
        (400, '{"error": {"message": "x", "code": "context_length_exceeded"}}', ContextLengthError),
        (502, "<html>bad gateway</html>", ProviderUnavailableError),
        (408, "", ProviderUnavailableError),
        (402, '{"error": {"message": "Insufficient credits"}}', ProviderError),
        (429, '{"error": {"message": "quota", "code": "insufficient_quota"}}', ProviderError),
    ],
)
def test_status_table(status: int, body: str, error: type[ProviderError]) -> None:
    exc = error_for_status(EP, status, body)
    assert type(exc) is error
    assert (exc.provider, exc.status, exc.body) == ("openai", status, body)
    assert "Fix:" in str(exc)


def test_bodies_are_truncated() -> None:
    exc = error_for_status(EP, 500, "x" * 100_000)
    assert exc.body is not None
    assert len(exc.body) < BODY_LIMIT + 100
    assert len(str(exc)) < 1_000


async def test_anthropic_error_event_inside_a_stream() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 3}}}),
        ("ping", {"type": "ping"}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Busy"}}),
    ]
    body = b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    async with httpx.AsyncClient(transport=transport) as client:
        model = AnthropicModel("c", api_key="k", client=client)
        with pytest.raises(ProviderUnavailableError, match="Busy") as info:
            await model.complete(ModelRequest(messages=[Message(role="user", content="hi")]))
    assert info.value.status == 529
    assert info.value.provider == "anthropic"
