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
from staffer.agent import Agent
from staffer.config import MODEL_HELP, Config, Home
from staffer.gateway._errors import install_error_handlers
from staffer.gateway._hub import EventHub
from staffer.gateway._middleware import BodyLimitMiddleware, TokenAuthMiddleware
from staffer.gateway._observability import install_observability, observability_for
from staffer.gateway._openai_api import OpenAIApi
from staffer.gateway._router_admin import build_routing, install_router_admin
from staffer.gateway._routes import router
from staffer.gateway._runs import RunManager
from staffer.gateway._state import GatewayState
from staffer.store.sqlite import SQLiteStore
from staffer.tools._builtin import builtin_tools
from staffer.web import STATIC_DIR

logger = logging.getLogger("staffer.gateway")
INTERRUPTED = "interrupted: Staffer stopped before the run finished; send the message again"


def create_app(config: Config, home: Home, *, env: Mapping[str, str]) -> FastAPI:
    """Build the gateway for `home`. Raises ConfigError for a model that cannot be set up.

    The model is built here, before anything listens, so a missing key or a
    malformed model name stops `staffer start` with a clear message.
    """
    # With [deployments]/[aliases] the model is a Router (model.name may be an alias);
    # a plain [model] section is its bare adapter; no model at all is None.
    # Splits, the response cache and tiers wrap the router (see staffer.router._stack);
    # the admin routes reload the config and flip splits.
    observability = observability_for(config)  # metrics, router events, cost records
    model, router_admin = build_routing(config, home, env, observability)
    token = home.read_token() if config.gateway.auth else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SQLiteStore(home.db_file)
        await store.open()
        for run in await store.interrupt_unfinished_runs(INTERRUPTED):
            # The history is repaired when the session is next used (repair_history).
            logger.warning("run %s of session %s was interrupted", run.id, run.session_id)
        await observability.start(store, router=model)
        hub = EventHub()
        runs = None
        if model is not None:
            tools = builtin_tools(
                home.workspace,
                max_read_chars=config.agent.max_tool_output_chars,
                exec_timeout=config.agent.tool_timeout,
                exec_max_output_chars=config.agent.max_tool_output_chars,
            )
            agent = Agent(
                model=model,
                tools=tools,
                store=store,
                workspace=home.workspace,
                config=config.agent,
                max_tokens=config.model.max_tokens,
            )
            runs = RunManager(agent, hub)
        app.state.staffer = GatewayState(store, hub, runs, home.workspace, MODEL_HELP, model=model)
        logger.info("gateway ready (model: %s)", model.name if model else "none")
        try:
            yield
        finally:
            if runs is not None:
                await runs.aclose()
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
    install_observability(app, observability)
    install_router_admin(app, router_admin)
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
