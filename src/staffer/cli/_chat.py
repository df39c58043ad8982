"""`staffer chat`: a one-shot question or an interactive session against a running gateway."""

from __future__ import annotations

import contextlib
import ipaddress
import sys
from typing import TYPE_CHECKING

from staffer.cli._client import GatewayClient, GatewayError, GatewayUnreachable
from staffer.cli._output import console, fail
from staffer.cli._render import TurnPrinter

if TYPE_CHECKING:
    from rich.console import Console

    from staffer.config import Config

_REPL_HELP = (
    "Type a message. Ctrl-C or /cancel stops a run, /new starts a new session, "
    "/exit or Ctrl-D leaves."
)


def gateway_url(config: Config) -> str:
    """The URL a client on this machine uses to reach the configured gateway."""
    host = config.gateway.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:
        # Bound to every interface: loopback is one of them.
        host = "::1" if address.version == 6 else "127.0.0.1"
        address = ipaddress.ip_address(host)
    if address is not None and address.version == 6:
        host = f"[{host}]"
    return f"http://{host}:{config.gateway.port}"


def run_turn(client: GatewayClient, session_id: str, text: str, err: Console) -> int:
    """Send `text`, print the streamed run; return 0 when it is done, 1 when it failed.

    Ctrl-C cancels the run in the gateway (it ends at its next step boundary) and
    returns 130.
    """
    printer = TurnPrinter(sys.stdout, err, session_id=session_id)
    try:
        for event in client.send(session_id, text):
            printer.event(event)
    except KeyboardInterrupt:
        cancel(client, session_id, err)
        return 130
    status = printer.finished.get("status") if printer.finished else None
    return 0 if status == "done" else 1


def cancel(client: GatewayClient, session_id: str, err: Console) -> None:
    """Ask the gateway to stop the session's run and say what happened."""
    try:
        answer = client.cancel(session_id)
    except GatewayError as exc:
        err.print(f"\n[red]  could not cancel: {exc.message}[/]")
        return
    if answer.get("cancelled"):
        err.print("\n[yellow]  cancelled[/]")
    else:
        err.print("\n[dim]  nothing was running[/]")


def one_shot(client: GatewayClient, message: str, session_id: str | None) -> int:
    """Ask one question; the answer goes to stdout. Return the exit code."""
    err = console(stderr=True)
    try:
        session_id = session_id or client.create_session(title=message[:60])
        return run_turn(client, session_id, message, err)
    except GatewayError as exc:
        fail(exc.message, fix=exc.fix, code=exc.exit_code)


def repl(client: GatewayClient, session_id: str | None) -> int:
    """Chat until Ctrl-D or /exit. Return the exit code."""
    with contextlib.suppress(ImportError):  # line editing and history for input()
        import readline  # noqa: F401
    from rich.markup import escape

    err = console(stderr=True)
    try:
        status = client.status()
    except GatewayError as exc:
        fail(exc.message, fix=exc.fix, code=exc.exit_code)
    model = status.get("model") or {}
    if not model.get("configured"):
        fail("no model is connected to the gateway", fix=str(model.get("help") or ""))
    name = escape(str(model.get("name")))
    err.print(f"[dim]staffer {status.get('version', '')} · {name} · {_REPL_HELP}[/]")
    while True:
        try:
            text = input("› ").strip()
        except EOFError:
            err.print()
            return 0
        except KeyboardInterrupt:
            err.print()
            continue
        if not text:
            continue
        if text in ("/exit", "/quit"):
            return 0
        if text == "/cancel":
            if session_id:
                cancel(client, session_id, err)
            else:
                err.print("[dim]  nothing was running[/]")
            continue
        if text == "/new":
            session_id = None
            err.print("[dim]  new session[/]")
            continue
        if text.startswith("/"):
            err.print(f"[yellow]  unknown command {escape(text.split()[0])}. {_REPL_HELP}[/]")
            continue
        try:
            session_id = session_id or client.create_session(title=text[:60])
            run_turn(client, session_id, text, err)
        except GatewayUnreachable as exc:
            fail(exc.message, fix=exc.fix, code=exc.exit_code)
        except GatewayError as exc:
            err.print(f"[red]  error: {escape(exc.message)}[/]")
            if exc.fix:
                err.print(f"  fix: {escape(exc.fix)}")
        except KeyboardInterrupt:  # between the send and the first event
            if session_id:
                cancel(client, session_id, err)
