"""Context assembly: the system prompt from the workspace files, and the session history.

Every character here is paid for on every model call, so the preamble is one
sentence, empty files are skipped and each file is capped with a visible notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from staffer.models import Message

#: Workspace files read into every chat turn, in this order. HEARTBEAT.md is for heartbeat runs.
CONTEXT_FILES = ("AGENTS.md", "SOUL.md", "USER.md", "TOOLS.md", "MEMORY.md")

PREAMBLE = (
    "You are Staffer, an AI assistant working for the user. Your workspace is {workspace}; "
    "file tools take paths relative to it. Use tools when they help, then answer briefly."
)


@dataclass(slots=True, frozen=True)
class SystemPrompt:
    text: str
    notices: tuple[str, ...]


def read_system_prompt(workspace: Path, max_chars_per_file: int) -> SystemPrompt:
    """Build the system prompt from the workspace files (blocking: call it in a thread).

    A file longer than `max_chars_per_file` is cut and both the model and the
    user are told so; a missing or empty file is skipped.
    """
    parts = [PREAMBLE.format(workspace=workspace)]
    notices: list[str] = []
    for name in CONTEXT_FILES:
        path = workspace / name
        try:
            size = path.stat().st_size
            # Never read more than the cap can use: UTF-8 is at most 4 bytes a character.
            with path.open("rb") as file:
                raw = file.read(max_chars_per_file * 4 + 4)
        except FileNotFoundError:
            continue
        except OSError as exc:
            notices.append(f"{name} was skipped: {exc.strerror}; check the file's permissions")
            continue
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        if len(text) > max_chars_per_file or size > len(raw):
            note = f"{name} truncated: showing {max_chars_per_file} characters of {size} bytes"
            text = f"{text[:max_chars_per_file]}\n[{note}]"
            notices.append(f"{note} (raise agent.workspace_file_max_chars or shorten the file)")
        parts.append(f"## {name}\n{text}")
    return SystemPrompt("\n\n".join(parts), tuple(notices))


def repair_history(messages: Sequence[Message], *, keep_open: bool = False) -> list[Message]:
    """Answer tool calls that never got a result (a crash mid-tool leaves them behind).

    Providers reject a history in which an assistant's tool call has no tool
    result, so each missing one gets an error result saying it was interrupted.
    With `keep_open`, the calls of the last message are left open: the run being
    resumed will execute them.
    """
    repaired: list[Message] = []
    pending: list[Message] = []
    for message in messages:
        if message.role == "tool":
            pending = [p for p in pending if p.tool_call_id != message.tool_call_id]
        else:
            repaired.extend(pending)
            pending = []
        repaired.append(message)
        if message.role == "assistant" and message.tool_calls:
            pending = [
                Message(
                    role="tool",
                    content="Error: interrupted before it finished (Staffer was restarted); "
                    "check its effects before running it again",
                    tool_call_id=call.id,
                    name=call.name,
                    is_error=True,
                )
                for call in message.tool_calls
            ]
    if not keep_open:
        repaired.extend(pending)
    return repaired


def trim_history(messages: Sequence[Message], max_messages: int) -> list[Message]:
    """The last `max_messages` messages, never starting inside a tool exchange.

    A history that begins with a tool result (or an assistant message answering
    a tool) would be rejected by providers, so the cut moves forward to the next
    user message.
    """
    if len(messages) <= max_messages:
        return list(messages)
    tail = messages[-max_messages:]
    for i, message in enumerate(tail):
        if message.role == "user":
            return list(tail[i:])
    return []
