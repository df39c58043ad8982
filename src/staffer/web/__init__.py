"""The browser chat: a static shell (HTML, CSS, ES modules) the gateway serves as-is.

There is no build step. The gateway answers ``GET /`` with ``static/index.html`` and
``/static/*`` from `STATIC_DIR`; everything the page shows comes from the HTTP API,
so the files themselves hold no data and need no auth.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"

__all__ = ["STATIC_DIR"]
