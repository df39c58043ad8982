"""Printing one run's events: the answer on stdout, everything about it on stderr.

Keeping the answer alone on stdout makes `staffer chat -m "…" > answer.txt` hold just the
answer; tool calls, notices and usage go to stderr as short dim lines.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from staffer.cli._client import Event


# C0 and C1 control characters except newline and tab: model text (which a prompt
# injection can steer) must not move the cursor, retitle the terminal or write the clipboard.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """Remove terminal control characters (ESC, BEL, CSI …), keeping newlines and tabs."""
    return _CONTROL.sub("", text)


def format_arguments(arguments: str, limit: int = 60) -> str:
    """Render a tool call's JSON arguments as ``key=value, …``, cut to `limit` characters."""
    try:
        parsed = json.loads(arguments) if arguments else {}
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in parsed.items())
    else:
        text = arguments
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_duration(ms: float) -> str:
    """``850 ms`` below a second, ``2.3 s`` above."""
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def format_usage(usage: dict[str, Any]) -> str:
    """``1,234 in (1,000 cached) · 56 out`` from a usage object."""
    text = f"{int(usage.get('input_tokens') or 0):,} in"
    cached = int(usage.get("cached_input_tokens") or 0)
    if cached:
        text += f" ({cached:,} cached)"
    return text + f" · {int(usage.get('output_tokens') or 0):,} out"


class TurnPrinter:
    """Feed it a run's events with `event`; `finished` holds the `run_finished` event."""

    def __init__(self, out: TextIO, err: Console, *, session_id: str = "") -> None:
        self._out = out
        self._err = err
        self._session_id = session_id
        self._started = time.monotonic()
        self._args: dict[str, str] = {}
        self._model = ""
        self._usage: dict[str, Any] = {}
        self._printed_text = False
        self._mid_line = False  # the answer on stdout does not end with a newline
        self._after_tool = False
        self.finished: Event | None = None

    def event(self, event: Event) -> None:
        """Print one event from the stream."""
        kind = event.get("type")
        if kind == "run_started":
            self._model = str(event.get("model") or "")
        elif kind == "text_delta":
            self._text(str(event.get("text") or ""))
        elif kind == "tool_call_started":
            self._args[str(event.get("call_id"))] = str(event.get("arguments") or "")
        elif kind == "tool_call_finished":
            self._tool_finished(event)
        elif kind == "notice":
            self._meta(f"! {event.get('text')}", "yellow")
        elif kind == "usage":
            self._usage = event
        elif kind == "run_finished":
            self._run_finished(event)

    def _text(self, text: str) -> None:
        if not text:
            return
        if self._after_tool and self._printed_text:
            # A new model step after tool calls: keep it from running into the last one.
            self._out.write("\n" if self._mid_line else "")
            self._out.write("\n")
        self._after_tool = False
        if self._out.isatty():
            text = strip_controls(text)
        self._out.write(text)
        self._out.flush()
        self._printed_text = True
        self._mid_line = not text.endswith("\n")

    def _meta(self, line: str, style: str = "dim") -> None:
        from rich.text import Text

        if self._mid_line and self._out.isatty():
            # Same terminal: start the note on its own line. A redirected stdout is left alone.
            self._out.write("\n")
            self._out.flush()
            self._mid_line = False
        self._err.print(Text("  " + strip_controls(line), style=style))

    def _tool_finished(self, event: Event) -> None:
        call_id = str(event.get("call_id"))
        args = format_arguments(self._args.pop(call_id, ""))
        duration = format_duration(float(event.get("duration_ms") or 0))
        error = event.get("error")
        if error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else "error"
            self._meta(f"✗ {event.get('name')}({args}) · {duration} · {first_line}", "red")
        else:
            self._meta(f"✓ {event.get('name')}({args}) · {duration}")
        self._after_tool = True

    def _run_finished(self, event: Event) -> None:
        self.finished = event
        if not self._printed_text and event.get("text"):
            self._text(str(event["text"]))
        if self._mid_line:
            self._out.write("\n")
            self._out.flush()
            self._mid_line = False
        status = event.get("status")
        if status == "failed":
            self._meta(f"✗ run failed: {event.get('error') or 'no reason given'}", "red")
        elif status == "cancelled":
            self._meta("run cancelled", "yellow")
        usage = event.get("usage") or self._usage
        parts = [self._model] if self._model else []
        if usage:
            parts.append(format_usage(usage))
        parts.append(format_duration((time.monotonic() - self._started) * 1000))
        if self._session_id:
            parts.append(f"session {self._session_id}")
        self._meta("── " + " · ".join(parts))
