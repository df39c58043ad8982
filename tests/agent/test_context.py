"""Context assembly from real workspace files, and history repair."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from staffer.agent import read_system_prompt
from staffer.agent._context import repair_history, trim_history
from staffer.models import Message, ToolCall


def test_empty_and_missing_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("Be brief.")
    (tmp_path / "SOUL.md").write_text("   \n")
    prompt = read_system_prompt(tmp_path, 100)
    assert "## AGENTS.md\nBe brief." in prompt.text
    assert "SOUL.md" not in prompt.text
    assert "USER.md" not in prompt.text
    assert prompt.notices == ()


def test_a_long_file_is_cut_with_a_notice_for_model_and_user(tmp_path: Path) -> None:
    (tmp_path / "MEMORY.md").write_text("x" * 5000)
    prompt = read_system_prompt(tmp_path, 1000)
    section = prompt.text.split("## MEMORY.md\n", 1)[1]
    assert section.startswith("x" * 1000 + "\n[MEMORY.md truncated: showing 1000 characters")
    assert "x" * 1001 not in section
    [notice] = prompt.notices
    assert "MEMORY.md truncated" in notice
    assert "workspace_file_max_chars" in notice


def test_a_huge_file_is_not_read_whole(tmp_path: Path) -> None:
    (tmp_path / "USER.md").write_bytes(b"y" * 50_000_000)
    prompt = read_system_prompt(tmp_path, 100)
    assert "50000000 bytes" in prompt.notices[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_an_unreadable_file_is_skipped_with_a_notice(tmp_path: Path) -> None:
    path = tmp_path / "TOOLS.md"
    path.write_text("secret")
    path.chmod(0)
    prompt = read_system_prompt(tmp_path, 100)
    assert "secret" not in prompt.text
    assert "TOOLS.md was skipped" in prompt.notices[0]


def _call(call_id: str) -> ToolCall:
    return ToolCall(id=call_id, name="exec", arguments='{"command": "x"}')


def test_repair_answers_calls_left_without_a_result() -> None:
    history = [
        Message(role="user", content="go"),
        Message(role="assistant", tool_calls=[_call("a"), _call("b")]),
        Message(role="tool", content="done", tool_call_id="a", name="exec"),
        Message(role="user", content="again"),
    ]
    repaired = repair_history(history)
    assert [(m.role, m.tool_call_id) for m in repaired] == [
        ("user", None),
        ("assistant", None),
        ("tool", "a"),
        ("tool", "b"),
        ("user", None),
    ]
    assert repaired[3].is_error
    assert "interrupted" in repaired[3].content


def test_repair_leaves_a_valid_history_alone() -> None:
    history = [
        Message(role="user", content="go"),
        Message(role="assistant", tool_calls=[_call("a")]),
        Message(role="tool", content="ok", tool_call_id="a"),
        Message(role="assistant", content="done"),
    ]
    assert repair_history(history) == history


def test_repair_answers_a_dangling_call_at_the_end() -> None:
    history = [
        Message(role="user", content="go"),
        Message(role="assistant", tool_calls=[_call("a")]),
    ]
    assert [m.role for m in repair_history(history)] == ["user", "assistant", "tool"]


def test_trim_never_starts_inside_a_tool_exchange() -> None:
    history = [
        Message(role="user", content="1"),
        Message(role="assistant", tool_calls=[_call("a")]),
        Message(role="tool", content="ok", tool_call_id="a"),
        Message(role="user", content="2"),
        Message(role="assistant", content="3"),
    ]
    assert [m.content for m in trim_history(history, 3)] == ["2", "3"]
    assert trim_history(history, 10) == history
