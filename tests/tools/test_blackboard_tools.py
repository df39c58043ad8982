"""The blackboard tools, called through a toolset on a real SQLite store."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from staffer.errors import ToolError
from staffer.store import SQLiteStore, Store
from staffer.tools import (
    BlackboardReadTool,
    BlackboardWriteTool,
    Impact,
    ToolContext,
    Toolset,
    blackboard_tools,
)
from staffer.tools.blackboard import BLACKBOARD_TOOL_NAMES

WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with SQLiteStore(tmp_path / "staffer.db") as opened:
        yield opened


def member(store: Store, agent: str, team: str = "research") -> Toolset:
    return Toolset(blackboard_tools(store, team=team, agent=agent))


def ctx(tmp_path: Path, run_id: str = "run1", call_id: str = "c1") -> ToolContext:
    return ToolContext(
        tmp_path, session_id="s", run_id=run_id, call_id=call_id, idempotency_key=f"{run_id}:c"
    )


def test_names_impacts_and_small_specs(store: Store) -> None:
    tools = member(store, "scout").tools()
    assert tuple(t.name for t in tools) == BLACKBOARD_TOOL_NAMES
    read, write = tools
    assert read.impact is Impact.READ_ONLY
    assert write.impact is Impact.REVERSIBLE
    assert write.rerun_safe
    wire = [{"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in tools]  # fmt: skip
    assert len(json.dumps(wire)) < 1200  # paid on every model call


async def test_write_then_read_says_who_and_when(store: Store, tmp_path: Path) -> None:
    scout, writer = member(store, "scout"), member(store, "writer")
    said = await scout.call("blackboard_write", {"key": "plan", "value": "read it"}, ctx(tmp_path))
    assert re.fullmatch(
        rf"wrote 'plan' on the research blackboard \(version 1, written by scout at {WHEN}\)",
        said,
    )
    read = await writer.call("blackboard_read", {"key": "plan"}, ctx(tmp_path))
    assert re.fullmatch(rf"plan \(version 1, written by scout at {WHEN}\):\nread it", read)
    entry = await store.blackboard_read("research", "plan")
    assert entry is not None
    assert (entry.written_by, entry.run_id) == ("scout", "run1")
    missing = await writer.call("blackboard_read", {"key": "nope"}, ctx(tmp_path))
    assert missing.startswith("nothing under 'nope' on the research blackboard")


async def test_list_by_prefix_with_previews(store: Store, tmp_path: Path) -> None:
    tools = member(store, "scout")
    long = "word " * 50
    for key, value in (("tasks/1", "fetch"), ("tasks/2", long), ("notes", "x")):
        await tools.call("blackboard_write", {"key": key, "value": value}, ctx(tmp_path))
    listed = await tools.call("blackboard_read", {"prefix": "tasks/"}, ctx(tmp_path))
    lines = listed.splitlines()
    assert lines[0] == "2 keys starting with 'tasks/' on the research blackboard:"
    assert re.fullmatch(rf"- tasks/1 \(version 1, written by scout at {WHEN}\): fetch", lines[1])
    assert lines[2].endswith("…")
    assert len(lines[2]) < 200
    everything = await tools.call("blackboard_read", {}, ctx(tmp_path))
    assert everything.startswith("3 keys on the research blackboard:")
    none = await tools.call("blackboard_read", {"prefix": "zzz"}, ctx(tmp_path))
    assert none == "no keys starting with 'zzz' on the research blackboard"


async def test_long_lists_are_cut(store: Store, tmp_path: Path) -> None:
    for i in range(5):
        await store.blackboard_write("research", f"k{i}", "v", written_by="scout")
    read = BlackboardReadTool(store, team="research", max_listed=3)
    listed = await read.call({}, ctx(tmp_path))
    assert listed.splitlines()[-1] == "[2 more not shown; narrow it with a prefix]"


async def test_teams_do_not_see_each_other(store: Store, tmp_path: Path) -> None:
    await member(store, "a", "red").call(
        "blackboard_write", {"key": "secret", "value": "x"}, ctx(tmp_path)
    )
    blue = member(store, "b", "blue")
    assert (await blue.call("blackboard_read", {}, ctx(tmp_path))).startswith("no keys")


async def test_value_size_is_capped(store: Store, tmp_path: Path) -> None:
    write = BlackboardWriteTool(store, team="research", agent="scout", max_value_chars=10)
    with pytest.raises(ToolError, match=r"11 characters; the blackboard takes at most 10") as info:
        await write.call({"key": "report", "value": "x" * 11}, ctx(tmp_path))
    assert "report/1" in str(info.value)
    assert await store.blackboard_read("research", "report") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"key": " ", "value": "v"}, "the key is empty"),
        ({"key": "a\nb", "value": "v"}, "line breaks"),
        ({"key": "k" * 201, "value": "v"}, "at most 200"),
        ({"key": 5, "value": "v"}, "'key' must be a string"),
        ({"key": "k", "value": "v", "expected_version": -1}, "0 or more"),
        ({"key": "k", "value": "v", "expected_version": True}, "whole number"),
    ],
)
async def test_bad_arguments(
    store: Store, tmp_path: Path, args: dict[str, object], message: str
) -> None:
    with pytest.raises(ToolError, match=message):
        await member(store, "scout").call("blackboard_write", args, ctx(tmp_path))


async def test_compare_and_set_conflict_tells_who_changed_it(store: Store, tmp_path: Path) -> None:
    scout, writer = member(store, "scout"), member(store, "writer")
    claim = {"key": "claim", "value": "scout", "expected_version": 0}
    await scout.call("blackboard_write", claim, ctx(tmp_path))
    late = {"key": "claim", "value": "writer", "expected_version": 0}
    with pytest.raises(ToolError) as info:
        await writer.call("blackboard_write", late, ctx(tmp_path, run_id="run2"))
    message = str(info.value)
    assert re.search(rf"it is at version 1, written by scout at {WHEN}", message)
    assert "expected_version 1" in message
    update = {"key": "claim", "value": "writer now", "expected_version": 1}
    done = await writer.call("blackboard_write", update, ctx(tmp_path, run_id="run2"))
    assert "version 2, written by writer" in done
    with pytest.raises(ToolError, match="does not exist"):
        await writer.call(
            "blackboard_write", {"key": "ghost", "value": "v", "expected_version": 4}, ctx(tmp_path)
        )


async def test_rerun_after_a_crash_writes_once(store: Store, tmp_path: Path) -> None:
    scout = member(store, "scout")
    args = {"key": "claim", "value": "mine", "expected_version": 0}
    first = await scout.call("blackboard_write", args, ctx(tmp_path))
    # The same call replayed (same run, same value) reports the write it already made.
    again = await scout.call("blackboard_write", args, ctx(tmp_path))
    assert again == first
    plain = {"key": "note", "value": "hello"}
    await scout.call("blackboard_write", plain, ctx(tmp_path))
    await scout.call("blackboard_write", plain, ctx(tmp_path))
    note = await store.blackboard_read("research", "note")
    assert note is not None
    assert note.version == 1
    # Another run writing the same value is a new write.
    await scout.call("blackboard_write", plain, ctx(tmp_path, run_id="run2"))
    note = await store.blackboard_read("research", "note")
    assert note is not None
    assert note.version == 2
