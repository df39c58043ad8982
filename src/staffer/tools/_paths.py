"""Workspace confinement: the one check every file tool runs before touching a path."""

from __future__ import annotations

import os
from pathlib import Path

from staffer.errors import PathEscapeError, ToolError


def resolve_in_workspace(workspace: Path, path: str | os.PathLike[str]) -> Path:
    """Resolve `path` against `workspace` and refuse it if it ends up outside.

    A relative path is taken relative to the workspace; an absolute path is
    accepted only when it lands inside it. `..` and symlinks (including a
    dangling last component) are resolved *before* the check, so a symlink in
    the workspace that points at ``/etc`` is refused while one that points at
    another place in the workspace is fine. Returns the resolved path; callers
    must use it rather than the original so that nothing is resolved twice.

    This blocks mistakes and prompt-injected paths through the file tools; it is
    not a defence against a process that swaps a symlink between the check and
    the use (the ``exec`` tool can run arbitrary commands anyway).
    """
    try:
        root = workspace.resolve()
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        # Path.resolve(strict=False) resolves symlinks on the longest existing
        # prefix and normalises `..` after them, the order the kernel uses.
        resolved = candidate.resolve(strict=False)
    except RuntimeError as exc:  # a symlink loop
        raise ToolError(f"{os.fspath(path)!r} is a symlink loop") from exc
    except (OSError, ValueError) as exc:  # e.g. an embedded NUL byte, EACCES
        raise ToolError(f"invalid path {os.fspath(path)!r}: {exc}") from exc
    if not resolved.is_relative_to(root):
        raise PathEscapeError(
            f"{os.fspath(path)!r} resolves outside the workspace ({root}); "
            "file tools can only use paths inside it"
        )
    return resolved
