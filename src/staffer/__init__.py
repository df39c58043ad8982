"""Staffer: a self-hosted runtime that turns an LLM into an AI employee."""

import logging

__version__ = "0.1.0"

# Logs go where the application (the CLI's `serve`) configures them, never to stderr by default.
logging.getLogger("staffer").addHandler(logging.NullHandler())
__all__ = ["__version__"]
