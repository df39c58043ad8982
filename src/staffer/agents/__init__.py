"""Many agents: one `Agent` per ``[agents.NAME]``, and bindings that pick the agent of a
conversation by channel, account and conversation."""

from staffer.agents._bindings import binding_matches, resolve_binding
from staffer.agents._build import agent_toolset, agent_workspace, build_agents, tool_names
from staffer.agents._routed import RoutedModel, routed_models

__all__ = [
    "RoutedModel",
    "agent_toolset",
    "agent_workspace",
    "binding_matches",
    "build_agents",
    "resolve_binding",
    "routed_models",
    "tool_names",
]
