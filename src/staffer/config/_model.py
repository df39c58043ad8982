"""The typed configuration. Each field's metadata is the settings registry:
`help` is shown by `staffer config check` and written into docs/configuration.md.

Only the CLI reads files and the environment; everything else receives a `Config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

_T = TypeVar("_T")


def _setting(default: _T, help: str) -> _T:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    host: str = _setting(
        "127.0.0.1",
        "Address the gateway binds. A non-loopback address is refused unless auth is on.",
    )
    port: int = _setting(8765, "TCP port of the gateway (web UI and API).")
    max_body_bytes: int = _setting(
        1_048_576, "Largest request body accepted; larger bodies get 413."
    )
    auth: bool = _setting(
        True,
        "Require the bearer token on every route except /healthz. Never turn off on a network.",
    )


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str = _setting(
        "",
        'Model as "provider:model", e.g. "openai:gpt-4o-mini" (any OpenAI-compatible server) or '
        '"anthropic:claude-sonnet-4-5". '
        "Empty: no model yet, Staffer starts and explains how to add one.",
    )
    base_url: str = _setting(
        "",
        "Base URL of the provider's API, e.g. http://127.0.0.1:11434/v1 for Ollama. "
        "Empty: the provider's public endpoint.",
    )
    api_key_env: str = _setting(
        "",
        "Name of the environment variable that holds the API key (the key itself never goes in "
        "this file). Empty: OPENAI_API_KEY or ANTHROPIC_API_KEY by provider; "
        "local servers need none.",
    )
    timeout: float = _setting(120.0, "Seconds a model call may take in total before it fails.")
    max_tokens: int = _setting(4096, "Most tokens the model may write in one answer.")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    max_iterations: int = _setting(
        20, "Most model calls in one turn before the run stops with an explanation."
    )
    repeat_limit: int = _setting(
        3, "The same tool with the same arguments this many times in a row stops the run."
    )
    tool_timeout: float = _setting(60.0, "Seconds one tool call may take before it is cancelled.")
    max_tool_output_chars: int = _setting(
        16_000, "Longest tool result sent to the model; longer results are cut with a note."
    )
    workspace_file_max_chars: int = _setting(
        4_000,
        "Longest workspace file (AGENTS.md, SOUL.md …) put into the context; "
        "longer ones are cut with a notice.",
    )
    history_max_messages: int = _setting(200, "Most past messages of a session sent to the model.")


@dataclass(frozen=True, slots=True)
class Config:
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
