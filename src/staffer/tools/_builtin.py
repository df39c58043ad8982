"""The built-in toolset, assembled through the same `Toolset.add` any plugin uses."""

from __future__ import annotations

from pathlib import Path

from staffer.tools._base import Toolset
from staffer.tools.exec import ExecTool
from staffer.tools.files import EditFileTool, ListDirTool, ReadFileTool, WriteFileTool

#: the names of the tools `builtin_tools` makes, for checking allow-lists in the config
BUILTIN_TOOL_NAMES = ("read_file", "write_file", "edit_file", "list_dir", "exec")


def builtin_tools(
    workspace: Path,
    *,
    max_read_chars: int = 16000,
    exec_timeout: float = 60.0,
    exec_max_output_chars: int = 16000,
) -> Toolset:
    """A new toolset with `read_file`, `write_file`, `edit_file`, `list_dir` and `exec`.

    Every tool is confined to `workspace`. `max_read_chars` caps one
    `read_file` page, `exec_timeout` is the longest a command may run (the model
    may ask for less) and `exec_max_output_chars` caps what a command returns.
    """
    toolset = Toolset()
    toolset.add(ReadFileTool(workspace, max_chars=max_read_chars))
    toolset.add(WriteFileTool(workspace))
    toolset.add(EditFileTool(workspace))
    toolset.add(ListDirTool(workspace))
    toolset.add(
        ExecTool(workspace, max_timeout=exec_timeout, max_output_chars=exec_max_output_chars)
    )
    return toolset
