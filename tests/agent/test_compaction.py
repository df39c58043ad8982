"""Context compaction, driven for real: the agent, a SQLite store, the OpenAI adapter and the
scripted model server, with a context window small enough that a few turns fill it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from staffer.agent import Agent
from staffer.agent._compact import SUMMARY_HEADING, choose_cut, estimate_tokens, history_after
from staffer.config import AgentConfig
from staffer.models import Message, OpenAIChatModel, ToolCall
from staffer.store import MessageRecord, SQLiteStore
from staffer.testing.model_server import RecordedRequest, ScriptedModelServer
from staffer.tools._builtin import builtin_tools

PINNED = "PINNED-RULE: answer every question in plain English."
SUMMARY = "SUMMARY: the user dictated notes; each was saved to notes.txt."
SUMMARIZE = "^Summarize the conversation below"
PADDING = " lorem ipsum dolor sit amet" * 30  # ~800 characters: a turn is a few hundred tokens

SCENARIO: dict[str, Any] = {
    "scripts": [
        # The summarizer is asked in a message of its own; it must come first.
        {"match": SUMMARIZE, "steps": [{"text": SUMMARY}]},
        {
            "match": "note",
            "steps": [
                {
                    # two calls in one answer: a compaction must keep both results with it
                    "tool_calls": [
                        {
                            "name": "write_file",
                            "arguments": {"path": "notes.txt", "content": "{last_user}"},
                        },
                        {"name": "list_dir", "arguments": {"path": "."}},
                    ]
                },
                {"text": "Saved: {last_user}"},
            ],
        },
    ],
}


@dataclass
class Harness:
    server: ScriptedModelServer
    store: SQLiteStore
    agent: Agent
    session_id: str
    events: list[dict[str, Any]] = field(default_factory=list)

    async def turn(self, text: str) -> None:
        run_id = await self.agent.start_run(self.session_id, text)
        result = await self.agent.run_turn(self.session_id, run_id, self.events.append)
        assert result.status == "done", result.error

    def requests(self, model: str) -> list[dict[str, Any]]:
        return [r.body for r in self.server.requests if _model(r) == model]


def _model(request: RecordedRequest) -> str:
    return str(request.body.get("model"))


@pytest.fixture
async def server() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer(SCENARIO) as running:
        yield running


@asynccontextmanager
async def harness(
    server: ScriptedModelServer, tmp_path: Path, *, summarizer: str = "", **kw: Any
) -> AsyncIterator[Harness]:
    """An agent whose context window fills after a few turns; `summarizer` is
    agent.compaction_model, `kw` go to `Agent` (e.g. a `compaction_model`)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "AGENTS.md").write_text(PINNED)
    config = AgentConfig(
        context_window=2_500,
        compact_at=0.6,
        keep_recent_messages=3,
        compaction_model=summarizer,
    )
    model = OpenAIChatModel("scripted", base_url=server.openai_base_url, api_key="sk-test")
    async with SQLiteStore(tmp_path / "staffer.db") as store, model:
        agent = Agent(
            model=model,
            tools=builtin_tools(workspace),
            store=store,
            workspace=workspace,
            config=config,
            **kw,
        )
        session = await store.create_session(title="notes")
        yield Harness(server, store, agent, session.id)


def note(i: int) -> str:
    return f"note {i}:{PADDING}"


def assert_tool_pairs_intact(messages: list[dict[str, Any]]) -> None:
    """Every tool result answers a call of the assistant message right before its results."""
    open_calls: set[str] = set()
    for m in messages:
        if m["role"] == "assistant":
            open_calls = {c["id"] for c in m.get("tool_calls") or []}
        elif m["role"] == "tool":
            assert m["tool_call_id"] in open_calls, f"tool result without its call: {m}"
            open_calls.discard(m["tool_call_id"])
        else:
            assert not open_calls, f"calls left without a result before {m}"
            open_calls = set()
    assert not open_calls


async def test_old_turns_are_summarized_and_nothing_is_lost(
    server: ScriptedModelServer, tmp_path: Path
) -> None:
    async with harness(server, tmp_path, summarizer="summarizer") as h:
        for i in range(1, 7):
            await h.turn(note(i))

        compacted = [e for e in h.events if e["type"] == "compacted"]
        assert len(compacted) >= 2, "the context should fill twice in six turns"
        for event in compacted:
            assert event["tokens_after"] < event["tokens_before"]
            assert event["messages"] > 0
            assert event["model"] == "summarizer"

        # Nothing was deleted: 6 turns of user, assistant (2 calls), 2 results, answer.
        records = await h.store.list_messages(h.session_id)
        assert [r.seq for r in records] == list(range(1, 31))
        assert [r.message.content for r in records if r.message.role == "user"] == [
            note(i) for i in range(1, 7)
        ]
        stored = await h.store.list_compactions(h.session_id)
        assert [c.upto_seq for c in stored] == [e["upto_seq"] for e in compacted]
        assert all(c.summary == SUMMARY and c.model == "summarizer" for c in stored)
        latest = stored[-1]
        assert latest.tokens_before > latest.tokens_after

        # The summaries were written by the compaction model, and they chain.
        summary_requests = h.requests("summarizer")
        assert len(summary_requests) == len(stored)
        first_ask = summary_requests[0]["messages"][-1]["content"]
        assert note(1) in first_ask
        assert "<earlier-summary>" not in first_ask
        if len(summary_requests) > 1:
            assert (
                f"<earlier-summary>\n{SUMMARY}\n</earlier-summary>"
                in (summary_requests[1]["messages"][-1]["content"])
            )

        main = h.requests("scripted")
        assert len(main) == 12  # two model calls per turn, none for the summaries
        after = 0
        for body in main:
            messages = body["messages"]
            # the workspace files stay pinned in the system prompt, always first
            assert messages[0]["role"] == "system"
            assert PINNED in messages[0]["content"]
            assert all(m["role"] != "system" for m in messages[1:])
            assert_tool_pairs_intact(messages[1:])
            if messages[1]["content"].startswith(SUMMARY_HEADING):
                after += 1
                assert messages[1]["role"] == "user"
                assert SUMMARY in messages[1]["content"]
                assert messages[2]["role"] != "tool"
        assert after > 0

        # The last request: the summary, then the recent messages verbatim, as stored.
        last = main[-1]["messages"]
        kept = [r for r in records if r.seq > latest.upto_seq]
        assert last[1]["content"] == f"{SUMMARY_HEADING}\n\n{SUMMARY}"
        assert [m["content"] or "" for m in last[2:]] == [r.message.content for r in kept[:-1]]
        assert len(kept) - 1 >= 3  # keep_recent_messages, the final answer not yet written
        # the current turn's question is never summarized
        assert [m["role"] for m in last[-4:]] == ["user", "assistant", "tool", "tool"]
        assert last[-4]["content"] == note(6)


async def test_a_separate_compaction_model_writes_the_summary(
    server: ScriptedModelServer, tmp_path: Path
) -> None:
    cheap = OpenAIChatModel("cheap", base_url=server.openai_base_url, api_key="sk-test")
    async with cheap, harness(server, tmp_path, compaction_model=cheap) as h:
        for i in range(1, 5):
            await h.turn(note(i))
        stored = await h.store.list_compactions(h.session_id)
        assert stored
        assert len(h.requests("cheap")) == len(stored)
        assert h.requests("summarizer") == []
        assert all(c.model == cheap.name for c in stored)


async def test_below_the_threshold_nothing_is_compacted(
    server: ScriptedModelServer, tmp_path: Path
) -> None:
    async with harness(server, tmp_path) as h:
        await h.turn("note: short")
        assert not [e for e in h.events if e["type"] == "compacted"]
        assert await h.store.list_compactions(h.session_id) == []
        assert all(_model(r) == "scripted" for r in h.server.requests)


async def test_a_failing_summary_is_reported_and_the_run_goes_on(
    server: ScriptedModelServer, tmp_path: Path
) -> None:
    # No script answers the summarizer: its request gets a 400, the turn still finishes.
    notes = {**SCENARIO["scripts"][1], "match": "^note"}
    server.set_scenario({"scripts": [notes]})
    async with harness(server, tmp_path) as h:
        for i in range(1, 5):
            await h.turn(note(i))
        notices = [e["text"] for e in h.events if e["type"] == "notice"]
        assert any("could not summarize older messages" in n for n in notices)
        assert await h.store.list_compactions(h.session_id) == []


async def test_an_empty_summary_is_not_stored(server: ScriptedModelServer, tmp_path: Path) -> None:
    mute = {"match": SUMMARIZE, "steps": [{"tool_calls": [{"name": "list_dir", "arguments": {}}]}]}
    server.set_scenario({"scripts": [mute, SCENARIO["scripts"][1]]})
    async with harness(server, tmp_path) as h:
        for i in range(1, 5):
            await h.turn(note(i))
        notices = [e["text"] for e in h.events if e["type"] == "notice"]
        assert any("answered without a summary" in n for n in notices)
        assert await h.store.list_compactions(h.session_id) == []


# --- the cut, on its own ---------------------------------------------------------------


def _records(*messages: Message, run_from: int = 0) -> list[MessageRecord]:
    return [
        MessageRecord("s", seq, "now" if seq >= run_from > 0 else "old", m, 0.0)
        for seq, m in enumerate(messages, start=1)
    ]


def _calls(*ids: str) -> Message:
    return Message(
        role="assistant", tool_calls=[ToolCall(id=i, name="exec", arguments="{}") for i in ids]
    )


def _result(call_id: str) -> Message:
    return Message(role="tool", content="ok", tool_call_id=call_id, name="exec")


U = Message(role="user", content="q")
A = Message(role="assistant", content="a")


def test_the_cut_never_separates_calls_from_their_results() -> None:
    records = _records(U, A, U, _calls("a", "b"), _result("a"), _result("b"), A, U, run_from=99)
    # keep 3 would start the kept part at result b, and 4 at result a: both move back.
    assert choose_cut(records, after_seq=0, keep_recent=3, run_id=None) == 3
    assert choose_cut(records, after_seq=0, keep_recent=4, run_id=None) == 3
    assert choose_cut(records, after_seq=0, keep_recent=2, run_id=None) == 6
    assert choose_cut(records, after_seq=0, keep_recent=1, run_id=None) == 7


def test_the_cut_keeps_the_current_run_and_needs_something_new() -> None:
    records = _records(U, A, U, A, U, _calls("a"), _result("a"), A, run_from=5)
    assert choose_cut(records, after_seq=0, keep_recent=1, run_id="now") == 4
    assert choose_cut(records, after_seq=2, keep_recent=1, run_id="now") == 4
    assert choose_cut(records, after_seq=4, keep_recent=1, run_id="now") is None
    assert choose_cut(records, after_seq=0, keep_recent=8, run_id="now") is None


def test_history_after_a_compaction_starts_with_the_summary() -> None:
    from staffer.store import CompactionRecord

    records = _records(U, A, U, _calls("a"), _result("a"), A)
    compaction = CompactionRecord(1, "s", None, 2, "what happened", None, 0, 0, 0.0)
    history = history_after(records, compaction, 200)
    assert history[0] == Message(role="user", content=f"{SUMMARY_HEADING}\n\nwhat happened")
    assert history[1:] == [r.message for r in records[2:]]
    assert history_after(records, None, 200) == [r.message for r in records]


def test_tool_call_arguments_count_towards_the_estimate() -> None:
    small = [Message(role="assistant", tool_calls=[ToolCall("c", "write_file", "{}")])]
    big = [
        Message(role="assistant", tool_calls=[ToolCall("c", "write_file", json.dumps("x" * 4000))])
    ]
    assert estimate_tokens(big) - estimate_tokens(small) >= 1000
