"""The environment a sandboxed command starts with: a handful of fixed variables."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def minimal_env(
    extra: Mapping[str, str] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Build a fresh environment for a command; nothing is inherited from ours.

    It holds PATH (a fixed system default), HOME (`home`, normally the
    workspace; left unset when None), LANG and LC_ALL (C.UTF-8), TERM (dumb)
    and TMPDIR. Provider keys, ``STAFFER_*`` secrets and everything else in the
    runtime's own environment stay out. `extra` is added last and may override
    any of these; pass only what the command is meant to see.
    """
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "TMPDIR": tempfile.gettempdir(),
    }
    if home is not None:
        env["HOME"] = os.fspath(home)
    if extra:
        env.update(extra)
    return env
