"""Models: the `Model` interface, provider-neutral types and provider adapters.

The adapters (and httpx under them) load on first use, so code that only needs
the types, such as the store and the tools, does not pay for an HTTP client.
"""

from typing import TYPE_CHECKING, Any

from staffer.models._types import (
    Finish,
    FinishReason,
    Message,
    Model,
    ModelEvent,
    ModelRequest,
    ModelResponse,
    ResponseBuilder,
    Role,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

if TYPE_CHECKING:
    from staffer.models._build import build_model, parse_model_name
    from staffer.models.anthropic import AnthropicModel
    from staffer.models.openai import OpenAIChatModel

_LAZY = {
    "AnthropicModel": "staffer.models.anthropic",
    "OpenAIChatModel": "staffer.models.openai",
    "build_model": "staffer.models._build",
    "parse_model_name": "staffer.models._build",
}

__all__ = [
    "AnthropicModel",
    "Finish",
    "FinishReason",
    "Message",
    "Model",
    "ModelEvent",
    "ModelRequest",
    "ModelResponse",
    "OpenAIChatModel",
    "ResponseBuilder",
    "Role",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
    "build_model",
    "parse_model_name",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'staffer.models' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
