"""The file tools: `read_file`, `write_file`, `edit_file` and `list_dir`.

Every path goes through `resolve_in_workspace` first, and all file I/O runs in a
worker thread so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from staffer.errors import ToolError
from staffer.tools._base import Impact, Tool, ToolContext
from staffer.tools._paths import resolve_in_workspace

# Bigger files are for `exec` with head/grep/sed; reading them whole would only
# burn memory to show the model its first few thousand characters.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_LIST_ENTRIES = 500
_BINARY_SNIFF_BYTES = 8192

_PATH: dict[str, Any] = {"type": "string", "description": "relative to the workspace"}

_READ_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": _PATH,
        "offset": {"type": "integer", "minimum": 1, "description": "first line, 1-based"},
        "limit": {"type": "integer", "minimum": 1, "description": "number of lines"},
    },
    "required": ["path"],
    "additionalProperties": False,
}

_WRITE_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"path": _PATH, "content": {"type": "string"}},
    "required": ["path", "content"],
    "additionalProperties": False,
}

_EDIT_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": _PATH,
        "old_text": {"type": "string"},
        "new_text": {"type": "string"},
    },
    "required": ["path", "old_text", "new_text"],
    "additionalProperties": False,
}

_LIST_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"path": {"type": "string", "description": "default: workspace root"}},
    "additionalProperties": False,
}


def _str_arg(args: dict[str, Any], name: str, *, default: str | None = None) -> str:
    value = args.get(name, default)
    if not isinstance(value, str):
        raise ToolError(f"argument {name!r} must be a string")
    return value


def _int_arg(args: dict[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ToolError(f"argument {name!r} must be a whole number of at least 1")
    return value


def _read_bytes(path: Path, shown: str) -> bytes:
    """Read a regular file, turning the usual failures into messages for the model."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ToolError(f"no such file: {shown}") from None
    except OSError as exc:
        raise ToolError(f"cannot read {shown}: {exc.strerror}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ToolError(f"{shown} is a directory; use list_dir")
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block the thread forever
        raise ToolError(f"{shown} is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise ToolError(
            f"{shown} is {info.st_size} bytes, too large for this tool; "
            "use exec with head, tail, grep or sed"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ToolError(f"cannot read {shown}: {exc.strerror}") from exc
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        raise ToolError(
            f"{shown} is a binary file ({len(data)} bytes); only text files can be read"
        )
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never half.

    The data goes to a temporary file in the same directory, is flushed to disk
    and renamed over the target. An existing file keeps its permission bits.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class _FileTool(Tool):
    """Shared plumbing: a workspace root fixed at construction."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace

    def _resolve(self, path: str) -> Path:
        return resolve_in_workspace(self.workspace, path)


class ReadFileTool(_FileTool):
    """`read_file`: a text file, or a window of its lines, capped at `max_chars`."""

    name = "read_file"
    description = (
        "Read a text file in the workspace. Long files are truncated; "
        "page with offset/limit (in lines)."
    )
    parameters = _READ_PARAMETERS
    impact = Impact.READ_ONLY

    def __init__(self, workspace: Path, *, max_chars: int = 16000) -> None:
        super().__init__(workspace)
        self.max_chars = max_chars

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Return the requested lines with a note when more is left to read."""
        path = _str_arg(args, "path")
        offset = _int_arg(args, "offset") or 1
        limit = _int_arg(args, "limit")
        return await asyncio.to_thread(self._read, path, offset, limit)

    def _read(self, shown: str, offset: int, limit: int | None) -> str:
        text = _read_bytes(self._resolve(shown), shown).decode("utf-8", errors="replace")
        lines = text.splitlines(keepends=True)
        if not lines:
            return "[empty file]"
        if offset > len(lines):
            raise ToolError(f"offset {offset} is past the end of {shown} ({len(lines)} lines)")
        end = len(lines) if limit is None else min(len(lines), offset - 1 + limit)
        body = "".join(lines[offset - 1 : end])
        if len(body) > self.max_chars:
            # Cut at a line end so the next page starts cleanly; a single line
            # longer than the cap is cut mid-line and the next page skips it.
            cut = body.rfind("\n", 0, self.max_chars) + 1
            page = body[:cut] if cut else body[: self.max_chars] + "\n"
            next_line = offset + (page.count("\n") if cut else 1)
            return (
                f"{page}[truncated: showing {cut or self.max_chars} of {len(body)} chars; "
                f"use offset={next_line} to read more]"
            )
        if not body.endswith("\n"):
            body += "\n"
        if offset > 1 or end < len(lines):
            more = f"; use offset={end + 1} to read more" if end < len(lines) else ""
            body += f"[lines {offset}-{end} of {len(lines)}{more}]"
        return body.removesuffix("\n")


class WriteFileTool(_FileTool):
    """`write_file`: create or overwrite a file atomically, making parent folders."""

    name = "write_file"
    description = "Create or overwrite a file in the workspace; parent folders are created."
    parameters = _WRITE_PARAMETERS
    impact = Impact.REVERSIBLE
    honours_idempotency_key = True  # the same content written twice is written once

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Write `content` as UTF-8 and say how many bytes went where."""
        path = _str_arg(args, "path")
        content = _str_arg(args, "content")
        return await asyncio.to_thread(self._write, path, content)

    def _write(self, shown: str, content: str) -> str:
        target = self._resolve(shown)
        if target.is_dir():
            raise ToolError(f"{shown} is a directory")
        if target.exists() and not target.is_file():
            raise ToolError(f"{shown} is not a regular file")
        data = content.encode("utf-8")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, data)
        except (FileExistsError, NotADirectoryError):
            raise ToolError(f"cannot write {shown}: a file is in the way of its folder") from None
        except OSError as exc:
            raise ToolError(f"cannot write {shown}: {exc.strerror}") from exc
        return f"wrote {len(data)} bytes to {shown}"


class EditFileTool(_FileTool):
    """`edit_file`: replace one exact, unique occurrence of `old_text`."""

    name = "edit_file"
    description = "Replace old_text with new_text in a file; old_text must match exactly once."
    parameters = _EDIT_PARAMETERS
    impact = Impact.REVERSIBLE

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Apply the replacement, or explain why the match was not unique."""
        path = _str_arg(args, "path")
        old = _str_arg(args, "old_text")
        new = _str_arg(args, "new_text")
        if not old:
            raise ToolError("old_text is empty; give the exact text to replace")
        if old == new:
            raise ToolError("old_text and new_text are the same; nothing would change")
        return await asyncio.to_thread(self._edit, path, old, new)

    def _edit(self, shown: str, old: str, new: str) -> str:
        target = self._resolve(shown)
        try:
            text = _read_bytes(target, shown).decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(
                f"{shown} is not valid UTF-8; edit_file only edits UTF-8 text"
            ) from None
        count = text.count(old)
        if count == 0 and "\r\n" in text and "\r" not in old:
            # Models write "\n"; a Windows file says "\r\n". Match it the file's way.
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
            count = text.count(old)
        if count == 0:
            raise ToolError(
                f"old_text was not found in {shown}; read the file and copy the text "
                "exactly, including whitespace and indentation"
            )
        if count > 1:
            raise ToolError(
                f"old_text matches {count} places in {shown}; include more surrounding "
                "lines so it matches exactly one"
            )
        try:
            write_atomic(target, text.replace(old, new, 1).encode("utf-8"))
        except OSError as exc:
            raise ToolError(f"cannot write {shown}: {exc.strerror}") from exc
        return f"replaced 1 match in {shown}"


class ListDirTool(_FileTool):
    """`list_dir`: the entries of a directory, sorted by name, with type and size."""

    name = "list_dir"
    description = "List a directory in the workspace with each entry's type and size."
    parameters = _LIST_PARAMETERS
    impact = Impact.READ_ONLY

    def __init__(self, workspace: Path, *, max_entries: int = MAX_LIST_ENTRIES) -> None:
        super().__init__(workspace)
        self.max_entries = max_entries

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Return one line per entry: ``dir  name/``, ``file name  N bytes``, ``link a -> b``."""
        path = _str_arg(args, "path", default=".")
        return await asyncio.to_thread(self._list, path)

    def _list(self, shown: str) -> str:
        target = self._resolve(shown)
        try:
            with os.scandir(target) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            raise ToolError(f"no such directory: {shown}") from None
        except NotADirectoryError:
            raise ToolError(f"{shown} is a file, not a directory; use read_file") from None
        except OSError as exc:
            raise ToolError(f"cannot list {shown}: {exc.strerror}") from exc
        if not entries:
            return "[empty directory]"
        lines = [_describe(entry) for entry in entries[: self.max_entries]]
        if len(entries) > self.max_entries:
            lines.append(f"[showing {self.max_entries} of {len(entries)} entries]")
        return "\n".join(lines)


def _describe(entry: os.DirEntry[str]) -> str:
    # Never follow links here: listing must not stat what lies outside.
    try:
        if entry.is_symlink():
            return f"link {entry.name} -> {os.readlink(entry.path)}"
        if entry.is_dir(follow_symlinks=False):
            return f"dir  {entry.name}/"
        if entry.is_file(follow_symlinks=False):
            return f"file {entry.name}  {entry.stat(follow_symlinks=False).st_size} bytes"
    except OSError:  # vanished between scandir and stat
        return f"?    {entry.name}"
    return f"other {entry.name}"
