"""Provider-neutral messages, requests and stream events, and the `Model` interface.

Every provider adapter turns a `ModelRequest` into its wire format and its
streamed answer back into `ModelEvent`s. Everything above the adapters (the
router, the agent loop, the gateway) only sees these types.
"""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    """A tool call requested by the model. `arguments` is the raw JSON text it sent."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises ValueError with a readable reason if they are not."""
        if not self.arguments.strip():
            return {}
        try:
            value = json.loads(self.arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments are not valid JSON ({exc.msg} at {exc.pos})") from exc
        if not isinstance(value, dict):
            raise ValueError("arguments must be a JSON object")
        return value


@dataclass(slots=True)
class Message:
    """One message of a conversation, in the shape every provider can be mapped to.

    A `tool` message answers the assistant's tool call `tool_call_id`; `name` is
    the tool's name (Anthropic does not need it, some OpenAI-compatible servers do).
    """

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False


@dataclass(slots=True, frozen=True)
class ToolSpec:
    """What the model is told about a tool: its name, description and JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ModelRequest:
    """One call to a model. `model` overrides the adapter's default model name."""

    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def with_model(self, model: str | None) -> ModelRequest:
        """This request with another `model`: one constructor call, a fraction of what
        `dataclasses.replace` costs on the router's every request."""
        return ModelRequest(
            self.messages, self.tools, model, self.max_tokens, self.temperature, self.metadata
        )


# --- stream events ---------------------------------------------------------


@dataclass(slots=True, frozen=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    """A fragment of tool call number `index`: `id` and `name` arrive first, then argument text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    type: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(slots=True, frozen=True)
class Usage:
    """Token counts for one model call (cached input tokens are included in input_tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    type: Literal["usage"] = "usage"

    def counts(self) -> dict[str, int]:
        """The three token counts as a JSON-ready dict (the shape the API and events use)."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
        }

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )


FinishReason = Literal["stop", "tool_calls", "length", "content_filter", "error"]


@dataclass(slots=True, frozen=True)
class Finish:
    """The stream ended normally; `reason` is normalised across providers."""

    reason: FinishReason
    type: Literal["finish"] = "finish"


ModelEvent = TextDelta | ToolCallDelta | Usage | Finish


@dataclass(slots=True)
class ModelResponse:
    """A whole answer, assembled from a stream by `ResponseBuilder`."""

    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    finish_reason: FinishReason

    def to_message(self) -> Message:
        return Message(role="assistant", content=self.text, tool_calls=list(self.tool_calls))


class ResponseBuilder:
    """Accumulates stream events into a `ModelResponse`."""

    __slots__ = ("_calls", "_finish", "_text", "_usage")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, list[str]] = {}
        self._usage = Usage()
        self._finish: FinishReason | None = None

    def add(self, event: ModelEvent) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            slot = self._calls.setdefault(event.index, ["", "", ""])
            if event.id:
                slot[0] = event.id
            if event.name:
                slot[1] += event.name
            slot[2] += event.arguments
        elif isinstance(event, Usage):
            self._usage = self._usage + event
        else:
            self._finish = event.reason

    def build(self) -> ModelResponse:
        # A provider that sends no call id gets a unique one: ids must not repeat in a history.
        calls = [
            ToolCall(id=cid or f"call_{secrets.token_hex(6)}", name=name, arguments=args)
            for _, (cid, name, args) in sorted(self._calls.items())
        ]
        finish = self._finish or ("tool_calls" if calls else "stop")
        return ModelResponse("".join(self._text), calls, self._usage, finish)


class Model(ABC):
    """A model that streams answers. Adapters, the router and wrappers all implement this.

    Use as an async context manager (or call `aclose`) so connection pools are released.
    """

    #: a stable, human-readable name such as ``openai:gpt-4o-mini``
    name: str

    @abstractmethod
    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Stream the answer to `request`; raises a `ProviderError` subclass on failure."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run `stream` to the end and return the assembled answer."""
        builder = ResponseBuilder()
        async for event in self.stream(request):
            builder.add(event)
        return builder.build()

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Release connections; the default has nothing to release."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
