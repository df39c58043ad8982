"""The app the server runs: ``/v1/…`` straight to the OpenAI-compatible API, the rest to
FastAPI.

The OpenAI API is the gateway's hot path, a plain ASGI app that authenticates its
callers itself. Reaching it through FastAPI cost about 0.3 ms a request on the
reference machine: FastAPI's per-request telemetry check, six middleware layers,
matching every API route before the ``/v1`` mount, and a wrapper around every `send`
of every chunk. `V1Dispatch` sends it those requests directly, with the body size
limit still in front. The FastAPI app keeps its ``/v1`` mount, so the app alone (an
in-process `TestClient`) serves the same API, only slower.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from staffer.gateway._middleware import BodyLimitMiddleware
from staffer.gateway._openai_api import OpenAIApi

PREFIX = "/v1"


class V1Dispatch:
    """Routes ``/v1/…`` to `api` (behind the body limit) and everything else to `app`.

    The scope `api` gets is the one the ``/v1`` mount would give it: ``app`` is the
    FastAPI app (whose state holds the store and the model) and ``root_path`` ends in
    ``/v1``. Lifespan events go to `app`.
    """

    def __init__(self, app: FastAPI, api: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.api = BodyLimitMiddleware(api, max_bytes=max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and get_route_path(scope).startswith(PREFIX + "/"):
            scope["app"] = self.app
            scope["root_path"] = scope.get("root_path", "") + PREFIX
            await self.api(scope, receive, send)
            return
        await self.app(scope, receive, send)


def mounted_api(app: FastAPI) -> OpenAIApi | None:
    """The `OpenAIApi` that `app` mounts at ``/v1``, if it does."""
    for route in app.routes:
        if isinstance(route, Mount) and route.path == PREFIX and isinstance(route.app, OpenAIApi):
            return route.app
    return None


def served_app(app: FastAPI, *, max_body_bytes: int) -> ASGIApp:
    """What the server should run for `app`: a `V1Dispatch` when it mounts the OpenAI API."""
    api = mounted_api(app)
    if api is None:
        return app
    return V1Dispatch(app, api, max_body_bytes=max_body_bytes)
