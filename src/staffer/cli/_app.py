"""The `staffer` commands. Heavy imports (rich, httpx, the gateway) happen inside commands.

Exit codes: 0 success, 1 a run failed or was cancelled, 2 something to fix (config, token,
connection) — reported as the key, the problem and the fix, never as a traceback.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from staffer.cli._keys import keys_app
from staffer.errors import ConfigError

if TYPE_CHECKING:
    from staffer.config import Config, Home

# rich_markup_mode=None keeps `--help` on click's plain formatter: rich's costs ~0.2 s.
app = typer.Typer(
    name="staffer",
    help="Staffer: a self-hosted runtime that turns an LLM into an AI employee.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(
    help="Check, locate and document the config file.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")


def main() -> None:
    """Entry point of the `staffer` console script."""
    app()


def _home() -> Home:
    # staffer.config is imported by the commands that need it: `--help` stays fast.
    from staffer.config import Home

    return Home.from_env(os.environ)


def _load(home: Home) -> Config:
    from staffer.cli._output import fail_config
    from staffer.config import load_config

    try:
        return load_config(home.config_file)
    except ConfigError as exc:
        fail_config(exc)


@app.command()
def init() -> None:
    """Set up the home folder.

    Creates config.toml, the access token and the workspace files; never overwrites.
    """
    from staffer.cli._output import console, fail_config
    from staffer.config import init_home, load_config

    home = _home()
    try:
        created = init_home(home)
    except ConfigError as exc:
        fail_config(exc)
    out = console()
    if created:
        out.print(f"Set up Staffer in {home.root}:")
        for path in created:
            out.print(f"  [green]+[/] {path}")
    else:
        out.print(f"Staffer is already set up in {home.root}; nothing changed.")
    out.print("\nNext:")
    try:
        has_model = bool(load_config(home.config_file).model.name)
    except ConfigError:
        has_model = False
        out.print("  - fix the config file: [bold]staffer config check[/] says what is wrong")
    if not has_model:
        out.print(f"  - connect a model in {home.config_file} ([bold]staffer config docs[/])")
    out.print("  - run [bold]staffer start[/] and open the URL it prints")
    out.print('  - or chat in the terminal: [bold]staffer chat -m "hello"[/]')


@app.command()
def start(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (overrides gateway.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (overrides gateway.port).")] = None,
) -> None:
    """Start the gateway: web UI, API and agent.

    Sets up the home folder on first run.
    """
    _serve(host, port, execute=True)


@app.command()
def gateway(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (overrides gateway.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (overrides gateway.port).")] = None,
) -> None:
    """Start a gateway that leaves runs to `staffer worker` processes.

    Needs store.url = postgresql://… shared with the workers.
    """
    _serve(host, port, execute=False)


@app.command()
def worker() -> None:
    """Start a worker: executes queued runs from the shared PostgreSQL store.

    Run any number, on any hosts, next to one or more `staffer gateway`s.
    """
    import asyncio
    import logging

    from staffer.cli._output import fail_config
    from staffer.config import init_home
    from staffer.gateway._serve import make_undumpable
    from staffer.runs._worker import run_worker

    home = _home()
    try:
        init_home(home)
        config = _load(home)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        make_undumpable()  # its exec commands must not read its environment (provider keys)
        # asyncio's own loop, not uvloop: under uvloop a worker resuming many runs at once
        # hung for good in create_subprocess_exec (tests/runs/test_crash_resume.py).
        asyncio.run(run_worker(config, home, os.environ))
    except ConfigError as exc:
        fail_config(exc)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _serve(host: str | None, port: int | None, *, execute: bool) -> None:
    from staffer.cli._output import console, fail_config
    from staffer.config import check_config, init_home, load_config

    home = _home()
    try:
        created = init_home(home)
        config = load_config(home.config_file)
        gateway = config.gateway
        config = replace(
            config,
            gateway=replace(
                gateway,
                host=gateway.host if host is None else host,
                port=gateway.port if port is None else port,
            ),
        )
        check_config(config)
    except ConfigError as exc:
        fail_config(exc)
    if created:
        console(stderr=True).print(f"[dim]Set up Staffer in {home.root}[/]")
    if not config.model.name:
        _print_model_help()

    from staffer.gateway import serve

    try:
        serve(config, home, execute=execute)
    except ConfigError as exc:
        fail_config(exc)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _print_model_help() -> None:
    from rich.panel import Panel
    from rich.text import Text

    from staffer.cli._output import console
    from staffer.config import MODEL_HELP

    panel = Panel(
        Text(MODEL_HELP.rstrip()),
        title="No model connected",
        title_align="left",
        border_style="yellow",
        expand=False,
    )
    console(stderr=True, soft_wrap=False).print(panel)


@config_app.command("check")
def config_check() -> None:
    """Validate config.toml and summarise it.

    A problem is printed as the key, what is wrong and the fix, with exit code 2.
    """
    from staffer.cli._output import console, fail_config

    home = _home()
    config = _load(home)
    g, m = config.gateway, config.model
    # Building the model as the gateway would checks what the file alone cannot: base URLs,
    # keys, aliases that name deployments.
    from staffer.router import build_gateway_model

    try:
        built = build_gateway_model(config, os.environ)
    except ConfigError as exc:
        fail_config(exc)
    warnings: list[str] = []
    if built is None:
        model = "none yet (see `staffer config docs`, section 'Connecting a model')"
    elif hasattr(built, "deployment_states"):
        states = built.deployment_states()
        model = f"router ({built.name}), {len(states)} deployment(s)"
        warnings = [
            f"deployment {s['name']} is disabled: {s['disabled_reason']}"
            for s in states
            if s.get("disabled_reason")
        ]
    else:
        model = m.name + (f" at {m.base_url}" if m.base_url else "")
    out = console()
    note = "" if home.config_file.exists() else " (no file yet: every setting at its default)"
    out.print(f"config OK: {home.config_file}{note}", markup=False)
    token = "present" if home.token_file.exists() else "missing (run `staffer init`)"
    rows = [
        ("gateway", f"http://{g.host}:{g.port}, auth {'on' if g.auth else 'OFF'}"),
        ("model", model),
        ("workspace", str(home.workspace)),
        ("token", f"{home.token_file}, {token}"),
    ]
    for label, value in rows:
        out.print(f"  {label:<10} {value}", markup=False)
    for warning in warnings:
        out.print(f"  warning: {warning}", style="yellow", markup=False)


@config_app.command("path")
def config_path() -> None:
    """Print where the config file is (or would be)."""
    typer.echo(str(_home().config_file))


@config_app.command("docs")
def config_docs() -> None:
    """Print the settings reference (Markdown).

    The output is docs/configuration.md: `staffer config docs > docs/configuration.md`.
    """
    from staffer.config import render_config_docs

    sys.stdout.write(render_config_docs())


@app.command()
def chat(
    message: Annotated[
        str | None,
        typer.Option("--message", "-m", help="Ask one question, print the answer and exit."),
    ] = None,
    session: Annotated[
        str | None, typer.Option(help="Continue this session (default: a new one).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="Gateway URL (default: from gateway.host and gateway.port)."),
    ] = None,
) -> None:
    """Chat with the agent through a running gateway (`staffer start`)."""
    from staffer.cli._chat import gateway_url, one_shot, repl
    from staffer.cli._client import GatewayClient
    from staffer.cli._output import fail_config

    home = _home()
    try:
        token = home.read_token()
    except ConfigError as exc:
        fail_config(exc)
    base = url or gateway_url(_load(home))
    with GatewayClient(base, token, token_file=home.token_file) as client:
        code = one_shot(client, message, session) if message is not None else repl(client, session)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print Staffer's version."""
    from staffer import __version__

    typer.echo(f"staffer {__version__}")
