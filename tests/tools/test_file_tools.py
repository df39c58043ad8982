"""The file tools, called through the built-in toolset on real files."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from staffer.errors import PathEscapeError, ToolError
from staffer.tools import Impact, ListDirTool, ToolContext, Toolset, builtin_tools


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret\n")
    return root


@pytest.fixture
def tools(ws: Path) -> Toolset:
    return builtin_tools(ws, max_read_chars=100)


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return ToolContext(ws, session_id="s", run_id="r", call_id="c", idempotency_key="k")


def test_builtin_toolset_has_compact_specs(tools: Toolset) -> None:
    names = [t.name for t in tools.tools()]
    assert names == ["read_file", "write_file", "edit_file", "list_dir", "exec"]
    impacts = {t.name: t.impact for t in tools.tools()}
    assert impacts["write_file"] is Impact.REVERSIBLE
    assert impacts["edit_file"] is Impact.REVERSIBLE
    assert impacts["exec"] is Impact.EXTERNAL
    assert impacts["read_file"] is impacts["list_dir"] is Impact.READ_ONLY
    wire = [
        {"name": s.name, "description": s.description, "parameters": s.parameters}
        for s in tools.specs()
    ]
    assert len(json.dumps(wire)) < 2000  # paid on every turn


# read_file


async def test_read_file(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    (ws / "notes.txt").write_text("one\ntwo\nthree\n")
    assert await tools.call("read_file", {"path": "notes.txt"}, ctx) == "one\ntwo\nthree"
    window = await tools.call("read_file", {"path": "notes.txt", "offset": 2, "limit": 1}, ctx)
    assert window == "two\n[lines 2-2 of 3; use offset=3 to read more]"
    tail = await tools.call("read_file", {"path": "notes.txt", "offset": 3}, ctx)
    assert tail == "three\n[lines 3-3 of 3]"


async def test_read_file_truncates_with_a_note(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    lines = [f"line {i:03d} " + "x" * 20 for i in range(1, 21)]  # 29 chars + newline each
    (ws / "long.txt").write_text("\n".join(lines) + "\n")
    page = await tools.call("read_file", {"path": "long.txt"}, ctx)
    assert (
        page
        == "\n".join(lines[:3])
        + "\n[truncated: showing 90 of 600 chars; use offset=4 to read more]"
    )
    page2 = await tools.call("read_file", {"path": "long.txt", "offset": 4}, ctx)
    assert page2.startswith("line 004 ")
    assert page2.endswith("use offset=7 to read more]")


async def test_read_file_cuts_a_single_huge_line(
    ws: Path, tools: Toolset, ctx: ToolContext
) -> None:
    (ws / "min.js").write_text("y" * 500 + "\nnext\n")
    page = await tools.call("read_file", {"path": "min.js"}, ctx)
    assert page == "y" * 100 + "\n[truncated: showing 100 of 506 chars; use offset=2 to read more]"


async def test_read_file_errors(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    (ws / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (ws / "dir").mkdir()
    (ws / "empty.txt").write_text("one line\n")
    with pytest.raises(ToolError, match=r"^no such file: missing\.txt$"):
        await tools.call("read_file", {"path": "missing.txt"}, ctx)
    with pytest.raises(ToolError, match=r"image\.png is a binary file"):
        await tools.call("read_file", {"path": "image.png"}, ctx)
    with pytest.raises(ToolError, match="is a directory; use list_dir"):
        await tools.call("read_file", {"path": "dir"}, ctx)
    with pytest.raises(ToolError, match="past the end"):
        await tools.call("read_file", {"path": "empty.txt", "offset": 99}, ctx)
    with pytest.raises(ToolError, match="'offset' must be a whole number"):
        await tools.call("read_file", {"path": "empty.txt", "offset": 0}, ctx)
    (ws / "empty.txt").write_text("")
    assert await tools.call("read_file", {"path": "empty.txt"}, ctx) == "[empty file]"


async def test_read_file_shows_latin1_text_with_replacements(
    ws: Path, tools: Toolset, ctx: ToolContext
) -> None:
    (ws / "legacy.txt").write_bytes("café\n".encode("latin-1"))
    assert await tools.call("read_file", {"path": "legacy.txt"}, ctx) == "caf\ufffd"


# write_file


async def test_write_file_creates_parents(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    result = await tools.call("write_file", {"path": "a/b/c.txt", "content": "héllo"}, ctx)
    assert result == "wrote 6 bytes to a/b/c.txt"
    assert (ws / "a/b/c.txt").read_text() == "héllo"


async def test_write_file_is_atomic(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    target = ws / "run.sh"
    target.write_text("old contents\n")
    target.chmod(0o750)
    with target.open() as before:
        await tools.call("write_file", {"path": "run.sh", "content": "new\n"}, ctx)
        # The open handle still sees the old file whole: the new one replaced
        # it by rename instead of being written over it.
        assert before.read() == "old contents\n"
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert sorted(os.listdir(ws)) == ["run.sh"]  # no temporary file left behind


async def test_write_file_refusals(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    (ws / "dir").mkdir()
    (ws / "file").write_text("x")
    with pytest.raises(ToolError, match="is a directory"):
        await tools.call("write_file", {"path": "dir", "content": "x"}, ctx)
    with pytest.raises(ToolError, match="a file is in the way"):
        await tools.call("write_file", {"path": "file/child.txt", "content": "x"}, ctx)
    with pytest.raises(ToolError, match="'content' must be a string"):
        await tools.call("write_file", {"path": "x.txt"}, ctx)


# edit_file


async def test_edit_file(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    (ws / "app.py").write_text("def f():\n    return 1\n")
    args = {"path": "app.py", "old_text": "return 1", "new_text": "return 2"}
    assert await tools.call("edit_file", args, ctx) == "replaced 1 match in app.py"
    assert (ws / "app.py").read_text() == "def f():\n    return 2\n"


async def test_edit_file_no_match(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    (ws / "app.py").write_text("x = 1\n")
    args = {"path": "app.py", "old_text": "x = 2", "new_text": "x = 3"}
    with pytest.raises(ToolError, match=r"not found in app\.py; read the file and copy"):
        await tools.call("edit_file", args, ctx)
    assert (ws / "app.py").read_text() == "x = 1\n"


async def test_edit_file_two_matches(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    (ws / "app.py").write_text("x = 1\ny = 1\n")
    args = {"path": "app.py", "old_text": " = 1", "new_text": " = 2"}
    with pytest.raises(ToolError, match=r"matches 2 places in app\.py; include more surrounding"):
        await tools.call("edit_file", args, ctx)
    assert (ws / "app.py").read_text() == "x = 1\ny = 1\n"


async def test_edit_file_keeps_windows_line_endings(
    ws: Path, tools: Toolset, ctx: ToolContext
) -> None:
    (ws / "win.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    args = {"path": "win.txt", "old_text": "a\nb", "new_text": "a\nB\nb"}
    await tools.call("edit_file", args, ctx)
    assert (ws / "win.txt").read_bytes() == b"a\r\nB\r\nb\r\nc\r\n"


async def test_edit_file_refuses_binary_and_missing(
    ws: Path, tools: Toolset, ctx: ToolContext
) -> None:
    (ws / "blob").write_bytes(b"abc\x00def")
    with pytest.raises(ToolError, match="binary"):
        await tools.call("edit_file", {"path": "blob", "old_text": "abc", "new_text": "x"}, ctx)
    with pytest.raises(ToolError, match="no such file: nope"):
        await tools.call("edit_file", {"path": "nope", "old_text": "a", "new_text": "b"}, ctx)


# list_dir


async def test_list_dir(ws: Path, tools: Toolset, ctx: ToolContext) -> None:
    (ws / "src").mkdir()
    (ws / "b.txt").write_text("12345")
    (ws / "a-link").symlink_to("b.txt")
    (ws / "src" / "m.py").write_text("")
    listing = await tools.call("list_dir", {}, ctx)
    assert listing == "link a-link -> b.txt\nfile b.txt  5 bytes\ndir  src/"
    assert await tools.call("list_dir", {"path": "src"}, ctx) == "file m.py  0 bytes"
    (ws / "void").mkdir()
    assert await tools.call("list_dir", {"path": "void"}, ctx) == "[empty directory]"
    with pytest.raises(ToolError, match="is a file, not a directory"):
        await tools.call("list_dir", {"path": "b.txt"}, ctx)
    with pytest.raises(ToolError, match="no such directory: gone"):
        await tools.call("list_dir", {"path": "gone"}, ctx)


async def test_list_dir_caps_entries(ws: Path, ctx: ToolContext) -> None:
    for i in range(5):
        (ws / f"f{i}").write_text("")
    listing = await ListDirTool(ws, max_entries=3).call({"path": "."}, ctx)
    assert listing.splitlines() == [
        "file f0  0 bytes",
        "file f1  0 bytes",
        "file f2  0 bytes",
        "[showing 3 of 5 entries]",
    ]


# confinement, through every file tool


async def test_every_file_tool_refuses_escapes(
    ws: Path, tmp_path: Path, tools: Toolset, ctx: ToolContext
) -> None:
    (ws / "etc").symlink_to("/etc")
    (ws / "out").symlink_to(tmp_path / "outside")
    (ws / "dangle").symlink_to(tmp_path / "outside" / "planted.txt")
    calls: list[tuple[str, dict[str, object]]] = [
        ("read_file", {"path": "../outside/secret.txt"}),
        ("read_file", {"path": str(tmp_path / "outside" / "secret.txt")}),
        ("read_file", {"path": "etc/passwd"}),
        ("read_file", {"path": "out/secret.txt"}),
        ("write_file", {"path": "etc/planted", "content": "x"}),
        ("write_file", {"path": "out/planted.txt", "content": "x"}),
        ("write_file", {"path": "out/new/dir/planted.txt", "content": "x"}),
        ("write_file", {"path": "dangle", "content": "x"}),
        ("edit_file", {"path": "out/secret.txt", "old_text": "secret", "new_text": "x"}),
        ("list_dir", {"path": "etc"}),
        ("list_dir", {"path": "out"}),
        ("list_dir", {"path": ".."}),
    ]
    for name, args in calls:
        with pytest.raises(PathEscapeError, match="resolves outside the workspace"):
            await tools.call(name, dict(args), ctx)
    assert sorted(os.listdir(tmp_path / "outside")) == ["secret.txt"]
    assert (tmp_path / "outside" / "secret.txt").read_text() == "secret\n"


async def test_symlinks_and_absolute_paths_inside_are_fine(
    ws: Path, tools: Toolset, ctx: ToolContext
) -> None:
    (ws / "real").mkdir()
    (ws / "alias").symlink_to(ws / "real")
    await tools.call("write_file", {"path": "alias/f.txt", "content": "via link"}, ctx)
    assert (ws / "real" / "f.txt").read_text() == "via link"
    absolute = str(ws / "real" / "f.txt")
    assert await tools.call("read_file", {"path": absolute}, ctx) == "via link"
    assert await tools.call("list_dir", {"path": "alias"}, ctx) == "file f.txt  8 bytes"


async def test_file_io_stays_off_the_event_loop(
    ws: Path, tools: Toolset, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spy on the blocking calls (they still run for real) and note their thread.
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen[name] = threading.get_ident()
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(os, "fsync", spy("fsync", os.fsync))
    monkeypatch.setattr(os, "scandir", spy("scandir", os.scandir))
    monkeypatch.setattr(Path, "read_bytes", spy("read_bytes", Path.read_bytes))
    monkeypatch.setattr(Path, "resolve", spy("resolve", Path.resolve))
    await tools.call("write_file", {"path": "f.txt", "content": "a\n"}, ctx)
    await tools.call("read_file", {"path": "f.txt"}, ctx)
    await tools.call("edit_file", {"path": "f.txt", "old_text": "a", "new_text": "b"}, ctx)
    await tools.call("list_dir", {}, ctx)
    assert set(seen) == {"fsync", "scandir", "read_bytes", "resolve"}
    assert loop_thread not in seen.values()
