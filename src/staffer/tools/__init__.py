"""Tools: the `Tool`/`Toolset` interfaces and the built-in tools."""

from staffer.tools._base import Impact, Tool, ToolContext, Toolset

__all__ = ["Impact", "Tool", "ToolContext", "Toolset"]
