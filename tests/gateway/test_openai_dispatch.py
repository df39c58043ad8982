"""How ``/v1`` is served: straight from the server, before FastAPI, with the body limit in
front; the answer goes out before the router's bookkeeping, which still completes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from starlette.testclient import TestClient
from tests.conftest import LiveGateway
from tests.gateway.test_openai_api import (
    GREETING,
    SCENARIO,
    create_key,
    totals_once_cancelled,
    with_router,
)

from staffer.config import load_config
from staffer.gateway import create_app

Start = Callable[..., LiveGateway]
CHAT = "/v1/chat/completions"


def ask(**extra: Any) -> dict[str, Any]:
    return {"model": "fast", "messages": [{"role": "user", "content": "hi"}], **extra}


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


def test_the_body_limit_still_guards_v1(live_gateway: Start) -> None:
    gw = live_gateway(SCENARIO, config="[gateway]\nmax_body_bytes = 2048\n")
    headers = {"authorization": f"Bearer {create_key(gw, 'alice')}"}
    big = {"model": "scripted", "messages": [{"role": "user", "content": "x" * 5000}]}
    response = httpx.post(gw.url + CHAT, json=big, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"

    def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    chunked = httpx.post(gw.url + CHAT, content=chunks(), headers=headers)
    assert chunked.status_code == 413
    small = {"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(gw.url + CHAT, json=small, headers=headers)
    assert answer.json()["choices"][0]["message"]["content"] == GREETING


def test_v1_paths_outside_the_api_and_other_routes_keep_their_answers(
    live_gateway: Start,
) -> None:
    gw = live_gateway(SCENARIO)
    key = create_key(gw, "alice")
    auth = {"authorization": f"Bearer {key}"}
    unknown = httpx.get(gw.url + "/v1/embeddings", headers=auth)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(gw.url + "/v1/chat/completions", headers=auth).status_code == 405
    # Only /v1 skips the gateway token: a user key opens nothing else.
    assert httpx.get(gw.url + "/api/sessions", headers=auth).status_code == 401
    assert httpx.get(gw.url + "/healthz").status_code == 200


def test_the_app_alone_serves_the_same_api(live_gateway: Start) -> None:
    """`create_app` keeps its /v1 mount: in-process clients get the same answers."""
    gw = live_gateway(SCENARIO)
    gw.stop()  # one process at a time on the home's database
    app = create_app(load_config(gw.home.config_file), gw.home, env={})
    with TestClient(app) as client:
        auth = {"authorization": f"Bearer {gw.token}"}
        response = client.post(CHAT, json=ask(model="scripted"), headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == GREETING
        assert client.get("/v1/models").status_code == 401


def test_bookkeeping_after_the_answer_is_not_cancelled(live_gateway: Start) -> None:
    """Answers go out at the Finish event; the router then records the attempts (metrics,
    cost records) even though the server reports the finished response as a disconnect."""
    gw = live_gateway(SCENARIO)
    with_router(gw)
    auth = {"authorization": f"Bearer {create_key(gw, 'bob')}"}
    with httpx.Client(base_url=gw.url, headers=auth, timeout=30) as api:
        plain = api.post(CHAT, json=ask())
        assert plain.json()["choices"][0]["message"]["content"] == GREETING
        streamed = api.post(CHAT, json=ask(stream=True, stream_options={"include_usage": True}))
        data = sse_data(streamed.text)
        assert data[-1] == "[DONE]"
        assert '"finish_reason":"stop"' in data[-3]
        assert '"usage":{"prompt_tokens":12,' in data[-2]
    with gw.client() as admin:
        deadline = time.monotonic() + 10
        while True:
            calls = admin.get("/api/usage/calls").json()["calls"]
            if len(calls) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        totals = admin.get("/api/router").json()["aliases"]["fast"]["totals"]
    assert [(c["user"], c["ok"], c["error"]) for c in calls] == [("bob", True, None)] * 2
    assert (totals["requests"], totals["attempts"], totals["cancelled"]) == (2, 2, 0)


def test_the_cache_still_fills_after_an_early_answer(live_gateway: Start) -> None:
    gw = live_gateway(SCENARIO)
    with_router(gw, "[router]\ncache_ttl = 60\n")
    assert gw.server is not None
    auth = {"authorization": f"Bearer {create_key(gw, 'carol')}"}
    with httpx.Client(base_url=gw.url, headers=auth, timeout=30) as api:
        first = api.post(CHAT, json=ask())
        second = api.post(CHAT, json=ask())
    assert first.json()["choices"][0]["message"]["content"] == GREETING
    assert second.json()["choices"][0]["message"]["content"] == GREETING
    assert sum(1 for r in gw.server.requests if r.path == CHAT) == 1


def test_a_client_hanging_up_cancels_the_upstream_call(live_gateway: Start) -> None:
    # Each fault applies to one upstream request: both requests stall.
    gw = live_gateway({**SCENARIO, "faults": [{"kind": "stall", "seconds": 30}] * 2})
    with_router(gw)
    auth = {"authorization": f"Bearer {create_key(gw, 'dave')}"}
    for body in (ask(), ask(stream=True)):
        try:
            httpx.post(gw.url + CHAT, json=body, headers=auth, timeout=0.5)
        except httpx.ReadTimeout:
            pass  # the client gives up and closes the connection
        else:
            raise AssertionError("the stalled upstream answered")
    totals = totals_once_cancelled(gw, 2)
    assert (totals["requests"], totals["cancelled"], totals["errors"]) == (2, 2, 0)
