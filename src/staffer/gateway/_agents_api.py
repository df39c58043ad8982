"""The agents a session can be given, and which one a new session gets.

    GET /api/agents     every configured agent: name, description, model, team and tools,
                        with the one a web session gets when it names none

`install_agents_api` keeps the `Config` the agents come from on ``app.state``;
`choose_agent` (used by ``POST /api/sessions``) checks a requested agent against it, or
picks one by the ``[[bindings]]`` when none is requested.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request

from staffer.agents import resolve_binding, tool_names
from staffer.config import Config
from staffer.gateway._errors import ApiError

routes = APIRouter(tags=["agents"])
_DEFAULTS = Config()


def install_agents_api(app: FastAPI, config: Config) -> None:
    """Serve `GET /api/agents` on `app` and remember `config`'s agents for the routes."""
    app.state.agents_config = config
    app.include_router(routes)


def agents_config(request: Request) -> Config:
    """The configuration the app's agents come from; only ``main`` when not installed."""
    config: Config | None = getattr(request.app.state, "agents_config", None)
    return config or _DEFAULTS


AgentsOf = Annotated[Config, Depends(agents_config)]


def choose_agent(config: Config, requested: str | None, *, channel: str = "web") -> str:
    """`requested` if it names a configured agent (else 422 ``unknown_agent``); without
    one, the agent the bindings give `channel`."""
    if requested is None:
        return resolve_binding(config, channel=channel)
    known = config.agents.profiles
    if requested not in known:
        raise ApiError(
            422,
            "unknown_agent",
            f"no agent named {requested!r}; the agents are: {', '.join(known)}",
            "name one of them, or leave agent out to get the default "
            "(GET /api/agents lists them; [agents.NAME] in config.toml adds one)",
        )
    return requested


@routes.get("/api/agents")
async def list_agents(request: Request, config: AgentsOf) -> dict[str, Any]:
    """Every agent a session can be given, ``main`` first."""
    state = getattr(request.app.state, "staffer", None)
    model = getattr(state, "model", None)
    default_model = model.name if model is not None else None
    return {
        "agents": [
            {
                "name": p.name,
                "description": p.description,
                "model": p.model or default_model,
                "team": p.team or None,
                "tools": tool_names(p),
            }
            for p in config.agents.profiles.values()
        ],
        "default": resolve_binding(config, channel="web"),
    }
