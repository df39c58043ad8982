"""The blackboard tools: `blackboard_read` and `blackboard_write` on a team's shared board.

A blackboard is key → value notes that the agents of one team read and write (plans,
claims, findings), each entry with who wrote it, when and its version. The tools get
the store, the team and the agent's name from their constructor; an agent only has them
when it is configured with a ``team``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from staffer.errors import ToolError, VersionConflictError
from staffer.tools._base import Impact, Tool, ToolContext

if TYPE_CHECKING:
    from staffer.store import BlackboardEntry, Store

#: the names of the tools an agent with a team gets (see `blackboard_tools`)
BLACKBOARD_TOOL_NAMES = ("blackboard_read", "blackboard_write")

MAX_KEY_CHARS = 200
MAX_VALUE_CHARS = 8_000
MAX_LISTED = 100
_PREVIEW_CHARS = 80

_READ_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "key": {"type": "string", "description": "the entry to read"},
        "prefix": {"type": "string", "description": "without key: list keys starting with this"},
    },
    "additionalProperties": False,
}

_WRITE_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "key": {"type": "string"},
        "value": {"type": "string"},
        "expected_version": {
            "type": "integer",
            "minimum": 0,
            "description": "write only if the entry is still at this version (0: is new)",
        },
    },
    "required": ["key", "value"],
    "additionalProperties": False,
}


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _about(entry: BlackboardEntry) -> str:
    return f"version {entry.version}, written by {entry.written_by} at {_when(entry.updated_at)}"


def _string(args: dict[str, Any], name: str, *, default: str | None = None) -> str:
    value = args.get(name, default)
    if not isinstance(value, str):
        raise ToolError(f"argument {name!r} must be a string")
    return value


def _key(args: dict[str, Any]) -> str:
    key = _string(args, "key")
    if not key.strip():
        raise ToolError("the key is empty; name the entry, e.g. 'plan' or 'tasks/1'")
    if len(key) > MAX_KEY_CHARS:
        raise ToolError(f"the key is {len(key)} characters; use at most {MAX_KEY_CHARS}")
    if any(not ch.isprintable() for ch in key):
        raise ToolError("the key has line breaks or control characters; use one plain line")
    return key


class BlackboardReadTool(Tool):
    """`blackboard_read`: one entry with who wrote it and when, or the keys under a prefix."""

    name = "blackboard_read"
    description = (
        "Read your team's shared blackboard: the entry under `key` (its value, version, "
        "who wrote it and when), or without `key` the keys starting with `prefix`."
    )
    parameters = _READ_PARAMETERS
    impact = Impact.READ_ONLY

    def __init__(self, store: Store, *, team: str, max_listed: int = MAX_LISTED) -> None:
        self.store = store
        self.team = team
        self.max_listed = max_listed

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Return the entry, or a list of keys with a preview of each value."""
        if "key" in args:
            key = _key(args)
            entry = await self.store.blackboard_read(self.team, key)
            if entry is None:
                return (
                    f"nothing under {key!r} on the {self.team} blackboard; "
                    "call blackboard_read without key to list what is there"
                )
            return f"{key} ({_about(entry)}):\n{entry.value}"
        prefix = _string(args, "prefix", default="")
        entries = await self.store.blackboard_list(self.team, prefix)
        under = f" starting with {prefix!r}" if prefix else ""
        if not entries:
            return f"no keys{under} on the {self.team} blackboard"
        lines = [f"{len(entries)} keys{under} on the {self.team} blackboard:"]
        for entry in entries[: self.max_listed]:
            preview = " ".join(entry.value.split())
            if len(preview) > _PREVIEW_CHARS:
                preview = preview[: _PREVIEW_CHARS - 1] + "…"
            lines.append(f"- {entry.key} ({_about(entry)}): {preview}")
        if len(entries) > self.max_listed:
            lines.append(
                f"[{len(entries) - self.max_listed} more not shown; narrow it with a prefix]"
            )
        return "\n".join(lines)


class BlackboardWriteTool(Tool):
    """`blackboard_write`: set an entry, optionally only if it is still at a version."""

    name = "blackboard_write"
    description = (
        "Write `value` under `key` on your team's shared blackboard (replacing it). With "
        "`expected_version` (from blackboard_read; 0 for a new key) the write is refused if "
        "someone else wrote it since, so a claim or an update is never lost."
    )
    parameters = _WRITE_PARAMETERS
    impact = Impact.REVERSIBLE
    # A rerun finds its own write (same agent, run and value) and reports it, not twice.
    honours_idempotency_key = True

    def __init__(
        self, store: Store, *, team: str, agent: str, max_value_chars: int = MAX_VALUE_CHARS
    ) -> None:
        self.store = store
        self.team = team
        self.agent = agent
        self.max_value_chars = max_value_chars

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        """Write the entry and say which version it is now, by whom and when."""
        key, value = _key(args), _string(args, "value")
        expected = args.get("expected_version")
        if expected is not None and (
            isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
        ):
            raise ToolError("expected_version must be a whole number, 0 or more")
        if len(value) > self.max_value_chars:
            raise ToolError(
                f"the value is {len(value)} characters; the blackboard takes at most "
                f"{self.max_value_chars} per key. Write a summary, or split it over several "
                f"keys (e.g. {key}/1, {key}/2)"
            )
        current = await self.store.blackboard_read(self.team, key)
        if (
            current is not None
            and self._is_own(current, value, ctx)
            and (expected is None or expected + 1 == current.version)
        ):
            return self._written(current)
        try:
            entry = await self.store.blackboard_write(
                self.team,
                key,
                value,
                written_by=self.agent,
                run_id=ctx.run_id,
                expected_version=expected,
            )
        except VersionConflictError:
            raise ToolError(await self._conflict(key, expected)) from None
        return self._written(entry)

    def _is_own(self, entry: BlackboardEntry, value: str, ctx: ToolContext) -> bool:
        return (entry.value, entry.written_by, entry.run_id) == (value, self.agent, ctx.run_id)

    def _written(self, entry: BlackboardEntry) -> str:
        return f"wrote {entry.key!r} on the {self.team} blackboard ({_about(entry)})"

    async def _conflict(self, key: str, expected: int | None) -> str:
        now = await self.store.blackboard_read(self.team, key)
        if now is None:
            return (
                f"not written: {key!r} does not exist (you expected version {expected}); "
                "write with expected_version 0 to create it"
            )
        return (
            f"not written: {key!r} changed since you read it; it is at {_about(now)}"
            f" (you expected version {expected}). Read it with blackboard_read, then "
            f"write again with expected_version {now.version} if your change still applies"
        )


def blackboard_tools(store: Store, *, team: str, agent: str) -> list[Tool]:
    """The blackboard tools of `agent`, a member of `team`."""
    return [
        BlackboardReadTool(store, team=team),
        BlackboardWriteTool(store, team=team, agent=agent),
    ]
