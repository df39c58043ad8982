"""The `exec` tool: one shell command in the workspace, through the sandbox."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Any

from staffer.errors import ToolError
from staffer.sandbox import CommandResult, minimal_env, run_command
from staffer.tools._base import Impact, Tool, ToolContext

_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string"},
        "timeout": {"type": "number", "description": "seconds"},
    },
    "required": ["command"],
    "additionalProperties": False,
}


class ExecTool(Tool):
    """`exec`: run a shell command in the workspace with a minimal environment.

    The command gets `minimal_env` (HOME is the workspace) plus whatever the
    caller put in `ToolContext.env`, never the runtime's own environment. Its
    timeout is the model's request capped by `max_timeout` and `ctx.timeout`.
    A non-zero exit is a normal result for the model to read, not an error.
    """

    name = "exec"
    description = (
        "Run a shell command (/bin/sh) in the workspace. Returns the exit code and "
        "combined stdout/stderr."
    )
    parameters = _PARAMETERS
    impact = Impact.EXTERNAL

    def __init__(
        self, workspace: Path, *, max_timeout: float = 60.0, max_output_chars: int = 16000
    ) -> None:
        self.workspace = workspace
        self.max_timeout = max_timeout
        self.max_output_chars = max_output_chars

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Run the command and report ``exit code N`` followed by its output."""
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("argument 'command' must be a non-empty string")
        limit = min(self.max_timeout, ctx.timeout)
        requested = args.get("timeout")
        if requested is None:
            timeout = limit
        elif isinstance(requested, bool) or not isinstance(requested, int | float):
            raise ToolError("argument 'timeout' must be a number of seconds")
        elif requested <= 0:
            raise ToolError("argument 'timeout' must be more than 0 seconds")
        else:
            timeout = min(float(requested), limit)
        result = await run_command(
            command,
            cwd=self.workspace,
            timeout=timeout,
            max_output_chars=self.max_output_chars,
            env=minimal_env(ctx.env, home=self.workspace),
        )
        return format_result(result, timeout)


def format_result(result: CommandResult, timeout: float) -> str:
    """Render a `CommandResult` as the text the model reads."""
    status = f"exit code {result.exit_code}"
    if result.exit_code < 0 and not result.timed_out:
        with contextlib.suppress(ValueError):
            status += f" (killed by {signal.Signals(-result.exit_code).name})"
    parts = [status, result.output.rstrip("\n") or "[no output]"]
    if result.truncated:
        parts.append(
            "[output truncated: the middle was left out; redirect to a file and grep it "
            "or read it with read_file]"
        )
    if result.timed_out:
        parts.append(f"[timed out after {timeout:g} s; process killed]")
    return "\n".join(parts)
