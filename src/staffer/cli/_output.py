"""Terminal output shared by the commands: consoles and the standard error report."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from staffer.errors import ConfigError


def console(*, stderr: bool = False, soft_wrap: bool = True) -> Console:
    """A rich console on stdout or stderr; rich is imported on first use, not at startup.

    Soft wrap (the terminal wraps, rich never cuts) suits lines; boxes such as panels
    need ``soft_wrap=False``.
    """
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap)


def fail(
    problem: str, *, key: str | None = None, fix: str | None = None, code: int = 2
) -> NoReturn:
    """Print an error (what, then what to do) in red on stderr and exit with `code`."""
    from rich.text import Text

    err = console(stderr=True)
    line = Text("error: ", style="bold red")
    line.append(f"{key}: {problem}" if key else problem, style="red")
    err.print(line)
    if fix and "\n" in fix.strip():
        err.print(Text("  fix:", style="bold"))
        err.print(Text(textwrap.indent(fix.strip(), "    ")))
    elif fix:
        err.print(Text("  fix: ", style="bold") + Text(fix))
    raise typer.Exit(code)


def fail_config(exc: ConfigError) -> NoReturn:
    """Report a `ConfigError` by its key, problem and fix, and exit 2."""
    fail(exc.problem, key=exc.key, fix=exc.fix, code=2)
