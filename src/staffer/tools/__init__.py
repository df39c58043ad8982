"""Tools: the `Tool`/`Toolset` interfaces and the built-in tools."""

from staffer.tools._base import Impact, Tool, ToolContext, Toolset
from staffer.tools._builtin import builtin_tools
from staffer.tools._paths import resolve_in_workspace
from staffer.tools.exec import ExecTool
from staffer.tools.files import EditFileTool, ListDirTool, ReadFileTool, WriteFileTool

__all__ = [
    "EditFileTool",
    "ExecTool",
    "Impact",
    "ListDirTool",
    "ReadFileTool",
    "Tool",
    "ToolContext",
    "Toolset",
    "WriteFileTool",
    "builtin_tools",
    "resolve_in_workspace",
]
