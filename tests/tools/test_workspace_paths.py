"""Workspace confinement, on real directories and symlinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from staffer.errors import PathEscapeError, ToolError
from staffer.tools import resolve_in_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (tmp_path / "outside").mkdir()
    return root


def test_relative_path_resolves_inside(ws: Path) -> None:
    assert resolve_in_workspace(ws, "sub/../a.txt") == (ws / "a.txt").resolve()
    assert resolve_in_workspace(ws, ".") == ws.resolve()
    assert resolve_in_workspace(ws, "new/dir/file.txt") == ws.resolve() / "new/dir/file.txt"


def test_dotdot_escape_is_refused_with_a_clear_message(ws: Path) -> None:
    with pytest.raises(PathEscapeError) as info:
        resolve_in_workspace(ws, "../x")
    assert str(info.value) == (
        f"'../x' resolves outside the workspace ({ws.resolve()}); "
        "file tools can only use paths inside it"
    )
    with pytest.raises(PathEscapeError):
        resolve_in_workspace(ws, "sub/../../outside")


def test_absolute_paths(ws: Path) -> None:
    assert resolve_in_workspace(ws, str(ws / "a.txt")) == (ws / "a.txt").resolve()
    with pytest.raises(PathEscapeError):
        resolve_in_workspace(ws, "/etc/passwd")
    # A sibling whose name merely starts with the workspace's is still outside.
    with pytest.raises(PathEscapeError):
        resolve_in_workspace(ws, str(ws) + "-evil/x")


def test_symlink_out_of_the_workspace_is_refused(ws: Path) -> None:
    (ws / "etc").symlink_to("/etc")
    (ws / "passwd").symlink_to("/etc/passwd")
    for path in ("etc", "etc/passwd", "passwd", "etc/new-file"):
        with pytest.raises(PathEscapeError):
            resolve_in_workspace(ws, path)


def test_dangling_symlink_pointing_outside_is_refused(ws: Path, tmp_path: Path) -> None:
    (ws / "dangle").symlink_to(tmp_path / "outside" / "not-yet")
    with pytest.raises(PathEscapeError):
        resolve_in_workspace(ws, "dangle")


def test_symlink_within_the_workspace_is_fine(ws: Path) -> None:
    (ws / "link").symlink_to(ws / "sub")
    (ws / "rel-link").symlink_to("a.txt")
    assert resolve_in_workspace(ws, "link/x") == (ws / "sub" / "x").resolve()
    assert resolve_in_workspace(ws, "rel-link") == (ws / "a.txt").resolve()


def test_workspace_given_through_a_symlink(tmp_path: Path, ws: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(ws)
    assert resolve_in_workspace(alias, str(alias / "a.txt")) == (ws / "a.txt").resolve()
    assert resolve_in_workspace(alias, "a.txt") == (ws / "a.txt").resolve()


def test_symlink_loop_and_nul_byte_are_tool_errors(ws: Path) -> None:
    (ws / "loop").symlink_to(ws / "loop")
    with pytest.raises(ToolError):
        resolve_in_workspace(ws, "loop")
    with pytest.raises(ToolError):
        resolve_in_workspace(ws, "a\x00b")
