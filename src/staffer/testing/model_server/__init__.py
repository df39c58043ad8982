"""A scripted, OpenAI- and Anthropic-compatible model server for tests and benchmarks.

It listens on loopback, answers ``POST /v1/chat/completions`` and
``POST /v1/messages`` (streamed or not) from a scenario of scripted replies and
tool calls, with configurable latency and injected faults. See
``docs/model-server.md``.
"""

from staffer.testing.model_server._app import RecordedRequest, ScriptedApp
from staffer.testing.model_server._scenario import (
    Fault,
    FaultRate,
    Scenario,
    ScenarioError,
    Script,
    ScriptedToolCall,
    Step,
    load_scenario,
    parse_scenario,
)
from staffer.testing.model_server._server import ScriptedModelServer

__all__ = [
    "Fault",
    "FaultRate",
    "RecordedRequest",
    "Scenario",
    "ScenarioError",
    "Script",
    "ScriptedApp",
    "ScriptedModelServer",
    "ScriptedToolCall",
    "Step",
    "load_scenario",
    "parse_scenario",
]
