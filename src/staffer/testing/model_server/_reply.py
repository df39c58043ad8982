"""Turning a scenario step into a concrete, provider-neutral reply.

Each dialect reads its request into a `Prompt`; `plan_reply` picks the script
and step and cuts the text and tool arguments into chunks; the dialect then
writes the `Reply` in its own wire format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from staffer.models import FinishReason
from staffer.testing.model_server._scenario import Scenario, Step


@dataclass(slots=True)
class Prompt:
    """What the scripted model looks at in a request."""

    last_user: str
    #: assistant messages after the last user message; picks the step
    assistant_turns: int
    last_tool_result: str
    #: characters of all message text, for the default input token count
    chars: int


@dataclass(slots=True)
class PlannedCall:
    """A tool call with its final id and its arguments cut into chunks."""

    id: str
    name: str
    arguments: str
    pieces: list[str]


@dataclass(slots=True)
class Reply:
    """A whole answer, ready to be written in either wire format."""

    text: str
    text_pieces: list[str]
    calls: list[PlannedCall]
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    finish: FinishReason

    @property
    def chunk_count(self) -> int:
        """How many content chunks (text pieces and argument pieces) the reply streams."""
        return len(self.text_pieces) + sum(len(call.pieces) for call in self.calls)


class NoScriptMatched(LookupError):
    """No script's `match` is found in the last user message."""


def plan_reply(scenario: Scenario, prompt: Prompt, new_call_id: Callable[[], str]) -> Reply:
    """Pick the step answering `prompt` and cut it into chunks; raises `NoScriptMatched`."""
    script = scenario.script_for(prompt.last_user)
    if script is None:
        raise NoScriptMatched(prompt.last_user)
    step = script.step_for(prompt.assistant_turns)
    size = scenario.chunk_chars
    text = _render(step.text, prompt)
    calls = []
    for call in step.tool_calls:
        arguments = _arguments(call.arguments, prompt)
        calls.append(
            PlannedCall(call.id or new_call_id(), call.name, arguments, _cut(arguments, size))
        )
    reply = Reply(
        text=text,
        text_pieces=_cut(text, size),
        calls=calls,
        input_tokens=0,
        cached_input_tokens=step.cached_input_tokens,
        output_tokens=0,
        finish=_finish(step, calls),
    )
    reply.input_tokens = (
        step.input_tokens if step.input_tokens is not None else max(1, prompt.chars // 4)
    )
    reply.output_tokens = (
        step.output_tokens if step.output_tokens is not None else max(1, reply.chunk_count)
    )
    return reply


def _finish(step: Step, calls: list[PlannedCall]) -> FinishReason:
    if step.finish is not None:
        return step.finish
    return "tool_calls" if calls else "stop"


def _cut(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _render(text: str, prompt: Prompt) -> str:
    # str.replace, not str.format: scripted text is full of JSON braces.
    if "{last_" not in text:
        return text
    return text.replace("{last_user}", prompt.last_user).replace(
        "{last_tool_result}", prompt.last_tool_result
    )


def _arguments(arguments: Mapping[str, Any] | str, prompt: Prompt) -> str:
    if isinstance(arguments, str):
        return arguments  # raw text on purpose, maybe invalid JSON; never templated
    return json.dumps(_render_values(arguments, prompt), ensure_ascii=False)


def _render_values(value: Any, prompt: Prompt) -> Any:
    if isinstance(value, str):
        return _render(value, prompt)
    if isinstance(value, Mapping):
        return {key: _render_values(item, prompt) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_values(item, prompt) for item in value]
    return value


def content_text(content: Any) -> str:
    """The text of a message `content`: a string, or a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
