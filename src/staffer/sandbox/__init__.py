"""Running commands for tools: a minimal environment and a killable process group."""

from staffer.sandbox._env import SAFE_PATH, minimal_env
from staffer.sandbox._process import CommandResult, run_command

__all__ = ["SAFE_PATH", "CommandResult", "minimal_env", "run_command"]
