"""The agent loop: assemble context, call the model, run tools, repeat."""

from staffer.agent._context import CONTEXT_FILES, read_system_prompt, trim_history
from staffer.agent._loop import Agent, Emit, RunControl, RunStopped, TurnResult, TurnState

__all__ = [
    "CONTEXT_FILES",
    "Agent",
    "Emit",
    "RunControl",
    "RunStopped",
    "TurnResult",
    "TurnState",
    "read_system_prompt",
    "trim_history",
]
