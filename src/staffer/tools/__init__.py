"""Tools: the `Tool`/`Toolset` interfaces, the built-in tools and the blackboard tools."""

from staffer.tools._base import Impact, Tool, ToolContext, Toolset
from staffer.tools._builtin import builtin_tools
from staffer.tools._paths import resolve_in_workspace
from staffer.tools.blackboard import BlackboardReadTool, BlackboardWriteTool, blackboard_tools
from staffer.tools.exec import ExecTool
from staffer.tools.files import EditFileTool, ListDirTool, ReadFileTool, WriteFileTool

__all__ = [
    "BlackboardReadTool",
    "BlackboardWriteTool",
    "EditFileTool",
    "ExecTool",
    "Impact",
    "ListDirTool",
    "ReadFileTool",
    "Tool",
    "ToolContext",
    "Toolset",
    "WriteFileTool",
    "blackboard_tools",
    "builtin_tools",
    "resolve_in_workspace",
]
