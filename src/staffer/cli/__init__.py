"""The `staffer` command line: init, start, config, chat, version.

Only this package (and provider constructors) read the environment and files; the commands
import the gateway and HTTP client lazily so `staffer --help` stays fast.
"""

from staffer.cli._app import app, main

__all__ = ["app", "main"]
