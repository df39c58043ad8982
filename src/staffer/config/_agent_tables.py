"""Reading ``[agents.NAME]`` and ``[[bindings]]`` into an `AgentsConfig`, with the same
key-problem-fix errors as the rest of the file.

`read_agents` checks what one table can tell (names, types, one-line descriptions, limits,
bindings naming known agents); `check_agents`, run by `check_config`, checks what needs the
rest of the configuration: model names against the routing tables, tool names against the
tools Staffer has.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from staffer.config._agents import DEFAULT_AGENT, NAME_PATTERN, AgentProfile, AgentsConfig, Binding
from staffer.config._load import _bad, _describe, _read, _table
from staffer.config._model import AgentConfig, AgentSettings, BindingSettings, Config
from staffer.errors import ConfigError

_NAME_FIX = "use letters, digits, - and _ (at most 64), starting with a letter or digit"
_MAX_DESCRIPTION = 200
#: the [agent] limits an [agents.NAME] table may override: the settings both classes have
_LIMITS = tuple(
    f.name
    for f in dataclasses.fields(AgentSettings)
    if f.name in {g.name for g in dataclasses.fields(AgentConfig)}
)


def read_agents(data: dict[str, Any], where: str) -> AgentsConfig:
    """The agents and bindings in parsed TOML `data`; `main` is always there, first."""
    fix = "write each as an [agents.NAME] table, e.g. [agents.research]"
    tables = _table(data.get("agents", {}), "agents", where, fix)
    profiles = {DEFAULT_AGENT: AgentProfile(DEFAULT_AGENT)}
    folded = {DEFAULT_AGENT: DEFAULT_AGENT}
    for name, table in tables.items():
        key = f"agents.{name}"
        if not NAME_PATTERN.match(name):
            _bad(key, f"{name!r} is not a valid agent name", f"{_NAME_FIX}, e.g. [agents.research]")
        # Names become folders, and some file systems ignore case.
        twin = folded.setdefault(name.lower(), name)
        if twin != name:
            _bad(key, f"differs from agent {twin!r} only in case", "give each agent its own name")
        settings = _read(key, AgentSettings, _table(table, key, where, fix), where)
        profiles[name] = _profile(name, settings)
    return AgentsConfig(profiles, _bindings(data.get("bindings", []), profiles, where))


def _profile(name: str, s: AgentSettings) -> AgentProfile:
    key = f"agents.{name}"
    description = s.description.strip()
    if "\n" in description:
        _bad(f"{key}.description", "is more than one line", "say what the agent is for in one line")
    if len(description) > _MAX_DESCRIPTION:
        _bad(
            f"{key}.description",
            f"is {len(description)} characters long",
            f"keep it to {_MAX_DESCRIPTION}; it is sent to other agents with every call",
        )
    for i, tool in enumerate(s.tools):
        if tool in s.tools[:i]:
            _bad(f"{key}.tools[{i}]", f"{tool!r} is listed twice", "list each tool once")
    team = s.team.strip()
    if team and not NAME_PATTERN.match(team):
        _bad(f"{key}.team", f"{team!r} is not a valid team name", _NAME_FIX)
    limits: list[tuple[str, int | float]] = []
    for limit in _LIMITS:
        value = getattr(s, limit)
        if value is None:
            continue
        if value <= 0:
            _bad(f"{key}.{limit}", f"{value} is not positive", "use a number above 0, or remove it")
        limits.append((limit, value))
    return AgentProfile(
        name=name,
        description=description,
        model=s.model.strip(),
        workspace=s.workspace.strip(),
        tools=s.tools,
        team=team,
        limits=tuple(limits),
    )


def _bindings(raw: object, profiles: dict[str, AgentProfile], where: str) -> tuple[Binding, ...]:
    fix = "write each binding under a [[bindings]] header"
    if not isinstance(raw, list):
        raise ConfigError(
            f"must be an array of tables{where}, got {_describe(raw)}", key="bindings", fix=fix
        )
    bindings: list[Binding] = []
    catch_all: int | None = None
    for i, item in enumerate(raw):
        key = f"bindings[{i}]"
        b = _read(key, BindingSettings, _table(item, key, where, fix), where)
        agent = b.agent.strip()
        if not agent:
            _bad(f"{key}.agent", "is missing", f'name the agent, e.g. agent = "{DEFAULT_AGENT}"')
        if agent not in profiles:
            close = _close(agent, list(profiles))
            hint = f"did you mean {close[0]!r}? " if close else ""
            _bad(
                f"{key}.agent",
                f"no agent named {agent!r}; known: {', '.join(profiles)}",
                f"{hint}add an [agents.{agent}] table or correct the name",
            )
        if catch_all is not None:
            _bad(
                key,
                f"can never match: bindings[{catch_all}] before it matches every conversation",
                "move the binding without channel, account and conversation to the end",
            )
        binding = Binding(agent, b.channel.strip(), b.account.strip(), b.conversation.strip())
        if not (binding.channel or binding.account or binding.conversation):
            catch_all = i
        bindings.append(binding)
    return tuple(bindings)


def check_agents(config: Config) -> None:
    """Check each agent's model and tools against the rest of `config`."""
    routes = model_routes(config)
    for name, profile in config.agents.profiles.items():
        key = f"agents.{name}"
        if profile.model and profile.model not in routes:
            if not routes:
                _bad(
                    f"{key}.model",
                    f"names {profile.model!r}, but no [aliases.NAME] or [deployments.NAME] "
                    "tables are configured",
                    "add that alias or deployment, or remove model to use the default model",
                )
            close = _close(profile.model, routes)
            hint = f"did you mean {close[0]!r}? " if close else ""
            _bad(
                f"{key}.model",
                f"no alias or deployment named {profile.model!r}",
                f"{hint}use one of {', '.join(routes)}, or remove model for the default model",
            )
        if profile.tools:
            _check_tools(key, profile)


def _check_tools(key: str, profile: AgentProfile) -> None:
    # Imported only when an allow-list is set: the tools are not needed to read the file.
    from staffer.tools._builtin import BUILTIN_TOOL_NAMES
    from staffer.tools.blackboard import BLACKBOARD_TOOL_NAMES
    from staffer.tools.delegate import DELEGATION_TOOL_NAMES

    tools = (*BUILTIN_TOOL_NAMES, *BLACKBOARD_TOOL_NAMES, *DELEGATION_TOOL_NAMES)
    for i, tool in enumerate(profile.tools):
        if tool not in tools:
            close = _close(tool, tools)
            hint = f"did you mean {close[0]!r}? " if close else ""
            fix = f"{hint}use some of {', '.join(tools)}"
            _bad(f"{key}.tools[{i}]", f"unknown tool {tool!r}", fix)
        if tool in BLACKBOARD_TOOL_NAMES and not profile.team:
            _bad(
                f"{key}.tools[{i}]",
                f"{tool} needs a blackboard, and the agent has no team",
                'set team = "NAME" for the agent, or remove the tool from the list',
            )


def model_routes(config: Config) -> list[str]:
    """What an agent's `model` may name: the aliases and deployments the gateway's router
    serves (with ``model`` for a "provider:model" in [model]) and the tiering alias."""
    rc = config.router
    if not rc.deployments and not rc.aliases:
        return []
    routes = [*rc.aliases, *rc.deployments]
    # gateway_router_config adds a "provider:model" in [model] as the deployment "model".
    if ":" in config.model.name and "model" not in routes:
        routes.append("model")
    tiers = config.traffic.tiers
    if tiers is not None and tiers.alias not in routes:
        routes.append(tiers.alias)
    return routes


def _close(name: str, known: list[str] | tuple[str, ...]) -> list[str]:
    import difflib  # here, like in _load.py, for a fast CLI start

    return difflib.get_close_matches(name, known, n=1, cutoff=0.6)
