"""Models: the `Model` interface, provider-neutral types and provider adapters."""

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

__all__ = [
    "Finish",
    "FinishReason",
    "Message",
    "Model",
    "ModelEvent",
    "ModelRequest",
    "ModelResponse",
    "ResponseBuilder",
    "Role",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
]
