"""The `Tool` and `Toolset` interfaces and the context a tool call runs in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from staffer.errors import ConfigError, ToolError
from staffer.models import ToolSpec


class Impact(StrEnum):
    """What a tool can do to the world, for the policy to weigh."""

    READ_ONLY = "read_only"
    REVERSIBLE = "reversible"  # writes inside the workspace
    EXTERNAL = "external"  # leaves the machine or cannot be undone


@dataclass(slots=True, frozen=True)
class ToolContext:
    """What a tool call may know about where it runs.

    `idempotency_key` is stable across a retry of the same step, so a tool that
    talks to an outside system can pass it on and avoid doing the work twice.
    """

    workspace: Path
    session_id: str
    run_id: str
    call_id: str
    idempotency_key: str
    timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)


class Tool(ABC):
    """One tool: a name, a description, a JSON schema for its arguments and `call`.

    `call` returns the text the model sees. Raise `ToolError` for a failure the
    model should read (a missing file, a refused path); the loop turns it into an
    error result instead of ending the run.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    impact: Impact = Impact.READ_ONLY
    #: True when running the same call twice (same `ToolContext.idempotency_key`) has
    #: the effect of running it once. After a crash mid-call such a tool is simply run
    #: again; any other tool that is not read-only is reported "interrupted" instead.
    honours_idempotency_key: bool = False
    #: Seconds the loop lets one call take; None: the agent's tool_timeout.
    max_seconds: float | None = None

    @property
    def rerun_safe(self) -> bool:
        """May the loop run this call again after a crash cut it off?"""
        return self.impact is Impact.READ_ONLY or self.honours_idempotency_key

    @abstractmethod
    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Run the tool with validated-by-schema `args`."""

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)


class Toolset:
    """A named collection of tools. Registries, MCP servers and governed sets are toolsets."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ConfigError(
                f"two tools are named {tool.name!r}",
                key="tools",
                fix="rename or remove one of them",
            )
        self._tools[tool.name] = tool

    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def specs(self) -> list[ToolSpec]:
        return [t.spec() for t in self._tools.values()]

    def find(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ToolError(f"unknown tool {name!r}; available tools: {known}") from None

    async def call(self, name: str, args: dict[str, Any], ctx: ToolContext) -> str:
        return await self.get(name).call(args, ctx)
