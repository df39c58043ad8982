"""Building one `Agent` per configured agent: its folder, model, tools and limits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from staffer.agent import Agent
from staffer.config import DEFAULT_AGENT, AgentConfig, AgentProfile, Config, Home, init_workspace
from staffer.models import Model
from staffer.store import Store
from staffer.tools import Tool, Toolset, blackboard_tools, builtin_tools
from staffer.tools._builtin import BUILTIN_TOOL_NAMES
from staffer.tools.blackboard import BLACKBOARD_TOOL_NAMES
from staffer.tools.delegate import DELEGATION_TOOL_NAMES, RunBroker, delegation_tools

logger = logging.getLogger("staffer.agents")


def agent_workspace(home: Home, profile: AgentProfile) -> Path:
    """The agent's folder: its `workspace` setting (relative to the home), else
    ``<home>/agents/NAME/workspace``; ``main`` keeps the home's own workspace."""
    if profile.workspace:
        path = Path(profile.workspace).expanduser()
        return path if path.is_absolute() else home.root / path
    if profile.name == DEFAULT_AGENT:
        return home.workspace
    return home.root / "agents" / profile.name / "workspace"


def tool_names(profile: AgentProfile, *, peers: bool = False) -> list[str]:
    """The tools the agent gets, in toolset order: the built-ins on its allow-list (all of
    them without one); with a team, the blackboard tools; with `peers` (other agents are
    configured), the delegation tools — of these two groups only those the list names,
    if it names any."""
    allowed = set(profile.tools)
    names = [n for n in BUILTIN_TOOL_NAMES if not allowed or n in allowed]
    if profile.team:
        board = [n for n in BLACKBOARD_TOOL_NAMES if n in allowed]
        names += board or list(BLACKBOARD_TOOL_NAMES)
    if peers:
        delegation = [n for n in DELEGATION_TOOL_NAMES if n in allowed]
        names += delegation or list(DELEGATION_TOOL_NAMES)
    return names


def agent_toolset(
    profile: AgentProfile,
    workspace: Path,
    limits: AgentConfig,
    store: Store,
    *,
    delegation: list[Tool] | None = None,
) -> Toolset:
    """A new toolset with exactly `tool_names(profile)`, confined to `workspace`;
    `delegation` are the agent's delegation tools when other agents exist."""
    tools: list[Tool] = builtin_tools(
        workspace,
        max_read_chars=limits.max_tool_output_chars,
        exec_timeout=limits.tool_timeout,
        exec_max_output_chars=limits.max_tool_output_chars,
    ).tools()
    if profile.team:
        tools += blackboard_tools(store, team=profile.team, agent=profile.name)
    tools += delegation or []
    wanted = set(tool_names(profile, peers=bool(delegation)))
    return Toolset(t for t in tools if t.name in wanted)


def build_agents(
    config: Config,
    home: Home,
    *,
    model_for: Callable[[str], Model],
    store: Store,
    context_window_for: Callable[[str], int | None] | None = None,
    broker: RunBroker | None = None,
    delegate_max_depth: int = 2,
    delegate_timeout: float = 600.0,
    delegate_max_parallel: int = 4,
) -> dict[str, Agent]:
    """An `Agent` per configured agent, by name, ``main`` first.

    Each gets its own workspace (created with the template files when missing, like the
    home's), its own toolset, `model_for(profile.model)` ("" for the default model; see
    `routed_models`) and the ``[agent]`` limits with its overrides. `context_window_for`
    maps the same name to the model's context window when one is known. Creating the
    folders touches the disk: call it before serving, or in a thread. Raises ConfigError
    naming ``agents.NAME.workspace`` when a folder cannot be created.
    """
    profiles = config.agents.profiles

    def delegation_for(name: str) -> list[Tool] | None:
        peers = {n: p.description for n, p in profiles.items() if n != name}
        if broker is None or not peers:
            return None
        return delegation_tools(
            broker,
            agent=name,
            peers=peers,
            max_depth=delegate_max_depth,
            timeout=delegate_timeout,
            max_parallel=delegate_max_parallel,
        )

    agents: dict[str, Agent] = {}
    for name, profile in profiles.items():
        workspace = agent_workspace(home, profile)
        home_own = name == DEFAULT_AGENT and not profile.workspace
        key = "STAFFER_HOME" if home_own else f"agents.{name}.workspace"
        created = init_workspace(workspace, key=key)
        if created:
            logger.info("agent %s: created workspace %s", name, workspace)
        limits = profile.agent_config(config.agent)
        window = context_window_for(profile.model) if context_window_for else None
        agents[name] = Agent(
            model=model_for(profile.model),
            tools=agent_toolset(profile, workspace, limits, store, delegation=delegation_for(name)),
            store=store,
            workspace=workspace,
            config=limits,
            max_tokens=config.model.max_tokens,
            name=name,
            context_window=window,
        )
    return agents
