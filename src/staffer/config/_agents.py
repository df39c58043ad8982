"""The typed result of ``[agents.NAME]`` and ``[[bindings]]``: `Config.agents`.

The settings registry for these tables (types, defaults, help) is `AgentSettings` and
`BindingSettings` in ``_model.py``; ``_agent_tables.py`` reads the file into these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from staffer.config._model import AgentConfig

#: the agent every home has, built from ``[agent]``; also where unbound conversations go
DEFAULT_AGENT = "main"

#: what an agent or team name may be: it names a folder and appears in URLs
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """One configured agent: who it is, which model, folder, tools and team it gets.

    Empty `model`, `workspace` and `tools` mean the defaults (the gateway's default model,
    ``<home>/agents/NAME/workspace`` or the home's workspace for ``main``, every built-in
    tool). `limits` are the ``[agent]`` settings this agent overrides.
    """

    name: str
    description: str = ""
    model: str = ""
    workspace: str = ""
    tools: tuple[str, ...] = ()
    team: str = ""
    limits: tuple[tuple[str, int | float], ...] = ()

    def agent_config(self, base: AgentConfig) -> AgentConfig:
        """`base` (the ``[agent]`` section) with this agent's overrides applied."""
        overrides: dict[str, Any] = dict(self.limits)
        return replace(base, **overrides) if overrides else base


@dataclass(frozen=True, slots=True)
class Binding:
    """Routes conversations to `agent`; an empty match field matches anything."""

    agent: str
    channel: str = ""
    account: str = ""
    conversation: str = ""


def _only_main() -> dict[str, AgentProfile]:
    return {DEFAULT_AGENT: AgentProfile(DEFAULT_AGENT)}


@dataclass(frozen=True, slots=True)
class AgentsConfig:
    """Every agent by name (always with ``main``, first) and the bindings in file order."""

    profiles: dict[str, AgentProfile] = field(default_factory=_only_main)
    bindings: tuple[Binding, ...] = ()
