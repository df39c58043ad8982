"""The gateway's ASGI app: API routes, the web UI, auth and limits, and the lifespan
that opens and closes the store, the model and the runs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from staffer import __version__
from staffer.config import MODEL_HELP, Config, Home
from staffer.errors import ConfigError
from staffer.gateway._agents_api import install_agents_api
from staffer.gateway._compactions_api import router as compactions_router
from staffer.gateway._errors import install_error_handlers
from staffer.gateway._hub import EventHub
from staffer.gateway._middleware import BodyLimitMiddleware, TokenAuthMiddleware
from staffer.gateway._observability import install_observability, observability_for
from staffer.gateway._openai_api import OpenAIApi
from staffer.gateway._router_admin import build_routing, install_router_admin
from staffer.gateway._routes import router
from staffer.gateway._runs import RunManager
from staffer.gateway._state import GatewayState
from staffer.runs import Publish
from staffer.runs._runtime import (
    PgBridge,
    control_handler,
    fan_out,
    make_executor,
    postgres_dsn,
)
from staffer.store import open_store
from staffer.store._codec import new_id
from staffer.web import STATIC_DIR

logger = logging.getLogger("staffer.gateway")


def create_app(
    config: Config, home: Home, *, env: Mapping[str, str], execute: bool = True
) -> FastAPI:
    """Build the gateway for `home`. Raises ConfigError for a model that cannot be set up.

    The model is built here, before anything listens, so a missing key or a
    malformed model name stops `staffer start` with a clear message. With `execute`
    (`staffer start`) this process also executes runs; without (`staffer gateway`) it
    only queues them for `staffer worker` processes, which needs a PostgreSQL store.
    """
    # With [deployments]/[aliases] the model is a Router (model.name may be an alias);
    # a plain [model] section is its bare adapter; no model at all is None.
    # Splits, the response cache and tiers wrap the router (see staffer.router._stack);
    # the admin routes reload the config and flip splits.
    observability = observability_for(config)  # metrics, router events, cost records
    model, router_admin = build_routing(config, home, env, observability)
    token = home.read_token() if config.gateway.auth else None
    store = open_store(config.store, home, env)
    if not execute and postgres_dsn(store) is None:
        raise ConfigError(
            "`staffer gateway` leaves runs to `staffer worker` processes, which need a "
            "shared PostgreSQL database",
            key="store.url",
            fix="set store.url = postgresql://USER:PASSWORD@HOST:5432/DB, or run "
            "`staffer start` (gateway and worker in one process)",
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        await observability.start(store, router=model)
        hub = EventHub()
        runs = executor = bridge = None
        dsn = postgres_dsn(store)
        if model is not None:
            publish: Publish = hub.publish
            if execute:
                if dsn is not None:  # other gateways may have clients following our runs
                    bridge = PgBridge(dsn, "", on_event=hub.publish)
                    publish = fan_out(hub.publish, bridge.publish)
                # Runs interrupted by a crash are resumed from their journal by start().
                executor = make_executor(config, home, store, model, publish, kind="gateway")
                if bridge is not None:
                    bridge.origin = executor.id
                    bridge.on_control = control_handler(executor)
            elif dsn is not None:
                bridge = PgBridge(dsn, new_id(), on_event=hub.publish)
            if bridge is not None:
                await bridge.start()
            if executor is not None:
                await executor.start()
            notify = bridge.control if bridge is not None else None
            runs = RunManager(store, hub, config.agent, executor=executor, notify=notify)
        app.state.staffer = GatewayState(store, hub, runs, home.workspace, MODEL_HELP, model=model)
        logger.info("gateway ready (model: %s)", model.name if model else "none")
        try:
            yield
        finally:
            if executor is not None:
                await executor.aclose()
            if bridge is not None:
                await bridge.aclose()
            if model is not None:
                await model.aclose()
            await observability.aclose()  # flushes cost records: before the store closes
            await store.close()

    app = FastAPI(
        title="Staffer",
        version=__version__,
        lifespan=lifespan,
        description="The Staffer gateway: sessions, messages and live run events.",
    )
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(compactions_router)
    install_observability(app, observability)
    install_router_admin(app, router_admin)
    install_agents_api(app, config)  # GET /api/agents; POST /api/sessions checks agent names
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    async def web_ui() -> FileResponse:
        return FileResponse(index, headers={"cache-control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # The OpenAI-compatible API authenticates itself (user API keys or the token).
    app.mount("/v1", OpenAIApi(admin_token=token), name="openai")
    # The last added is the outermost: the size limit applies before anything else runs.
    if token is not None:
        app.add_middleware(TokenAuthMiddleware, token=token)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.gateway.max_body_bytes)
    return app
