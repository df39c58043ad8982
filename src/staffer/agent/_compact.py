"""Context compaction: near the context window, older turns become one summary message.

Before each model call the loop estimates the context's size. At `compact_at` of the
window, the messages before a safe cut are summarized by the compaction model and the
context becomes

    system prompt (the workspace files, untouched) ─► summary ─► messages after the cut

Nothing is deleted: the summary is a `CompactionRecord` saying which messages
(``seq <= upto_seq``) it stands for, and the next summary includes the previous one, so
they chain. The cut never separates a tool call from its result, never takes the current
turn, and leaves at least `keep_recent` messages as they were.

The summary goes to the model as a *user* message, not a second system message:
Anthropic takes one system prompt and wants the conversation to start with a user turn,
and several OpenAI-compatible servers (chat templates of local models) reject a system
message anywhere but first. The system prompt itself stays byte for byte what the
workspace files make, so provider prompt caches keep working.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from staffer.agent._context import repair_history, trim_history
from staffer.config import Config
from staffer.errors import ProtocolError
from staffer.models import Message, Model, ModelRequest, ResponseBuilder, ToolSpec, Usage
from staffer.store import CompactionRecord, MessageRecord, Store

logger = logging.getLogger("staffer.agent")

#: The usual rule of thumb for English text and code; no tokenizer is loaded.
CHARS_PER_TOKEN = 4
#: Tokens a provider adds per message for roles and separators (roughly).
MESSAGE_OVERHEAD_TOKENS = 4
#: Longest single message (or tool result) quoted in the summarization request.
TRANSCRIPT_ITEM_MAX_CHARS = 2_000
#: Share of the context window the summarization request's transcript may fill.
TRANSCRIPT_SHARE = 0.5
#: Most tokens a summary may take.
SUMMARY_MAX_TOKENS = 1_024

SUMMARY_SYSTEM = (
    "You write the running summary of a conversation between a user and an AI assistant "
    "that uses tools. The assistant continues the conversation from your summary alone, "
    "without the messages it replaces."
)
SUMMARY_REQUEST = (
    "Summarize the conversation below for the assistant that will continue it. Keep the "
    "user's goals, requests and preferences; facts and decisions established; files, "
    "commands and tool results that matter, with their names and values; what is done and "
    "what is still open. Leave out small talk. Plain text, at most about 400 words."
)
#: How the summary is introduced to the model in the context.
SUMMARY_HEADING = (
    "Summary of the earlier conversation (older messages were compacted to save context):"
)


@dataclass(slots=True, frozen=True)
class Compaction:
    """What one compaction did: the stored record and the context that replaces the old one."""

    record: CompactionRecord
    messages: list[Message]  # the new context, system prompt first
    compacted: int  # messages newly summarized (since the previous compaction)
    usage: Usage  # of the summarization call

    def event(self) -> dict[str, Any]:
        """The ``compacted`` run event (docs/http-api.md)."""
        r = self.record
        return {
            "type": "compacted",
            "upto_seq": r.upto_seq,
            "messages": self.compacted,
            "tokens_before": r.tokens_before,
            "tokens_after": r.tokens_after,
            "model": r.model,
        }


def estimate_tokens(messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
    """A rough token count of a request: characters / 4, tool calls and tool schemas included.

    Tool-call arguments count because they are sent back with every later request, and
    a long `write_file` call weighs as much as its text.
    """
    chars = 0
    for m in messages:
        chars += len(m.content)
        for call in m.tool_calls:
            chars += len(call.id) + len(call.name) + len(call.arguments)
        chars += len(m.tool_call_id or "") + len(m.name or "")
    for spec in tools:
        chars += len(spec.name) + len(spec.description) + len(json.dumps(spec.parameters))
    return chars // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS * len(messages)


def choose_cut(
    records: Sequence[MessageRecord],
    *,
    after_seq: int,
    keep_recent: int,
    run_id: str | None,
) -> int | None:
    """The `seq` up to which messages may be summarized, or None if nothing may be.

    The cut is the latest boundary such that: it is after `after_seq` (the previous
    compaction), at least `keep_recent` messages and the whole current run (from its first
    message on) stay after it, and no tool result after it answers a call made before it.
    """
    limit = len(records) - max(keep_recent, 0)
    for i, record in enumerate(records):
        if run_id is not None and record.run_id == run_id:
            limit = min(limit, i)
            break
    # A boundary i (records[:i] summarized) is unsafe inside a call → result span.
    unsafe: set[int] = set()
    called_at: dict[str, int] = {}
    for i, record in enumerate(records):
        message = record.message
        if message.role == "assistant":
            for call in message.tool_calls:
                called_at[call.id] = i
        elif message.role == "tool":
            unsafe.add(i)  # the kept part may never start with a tool result
            start = called_at.get(message.tool_call_id or "")
            if start is not None:
                unsafe.update(range(start + 1, i + 1))
    for i in range(min(limit, len(records)), 0, -1):
        if records[i - 1].seq <= after_seq:
            return None
        if i not in unsafe:
            return records[i - 1].seq
    return None


def summary_message(summary: str) -> Message:
    """The message standing for the summarized messages in the context (see module doc)."""
    return Message(role="user", content=f"{SUMMARY_HEADING}\n\n{summary}")


def history_after(
    records: Sequence[MessageRecord],
    compaction: CompactionRecord | None,
    max_messages: int,
    *,
    keep_open: bool = False,
) -> list[Message]:
    """The history the model sees: the latest summary, if any, then the messages after it.

    `keep_open` leaves the last message's tool calls unanswered (a resumed run runs them;
    see `repair_history`)."""
    if compaction is None:
        history = repair_history([r.message for r in records], keep_open=keep_open)
        return trim_history(history, max_messages)
    return _summarized(
        records, compaction.upto_seq, compaction.summary, max_messages, keep_open=keep_open
    )


def _summarized(
    records: Sequence[MessageRecord],
    upto_seq: int,
    summary: str,
    max_messages: int,
    *,
    keep_open: bool = False,
) -> list[Message]:
    kept = [r.message for r in records if r.seq > upto_seq]
    # The summary counts as one of the `max_messages`.
    return [
        summary_message(summary),
        *trim_history(repair_history(kept, keep_open=keep_open), max(max_messages - 1, 1)),
    ]


def transcript(messages: Sequence[Message], budget_chars: int) -> str:
    """The messages as plain text for the summarizer, each capped, the oldest dropped first
    when the whole would exceed `budget_chars`."""
    lines: list[str] = []
    for m in messages:
        if m.role == "user":
            lines.append(f"User: {_cap(m.content)}")
        elif m.role == "assistant":
            if m.content:
                lines.append(f"Assistant: {_cap(m.content)}")
            lines.extend(
                f"Assistant called {c.name} with {_cap(c.arguments)}" for c in m.tool_calls
            )
        elif m.role == "tool":
            outcome = "failed" if m.is_error else "returned"
            lines.append(f"Tool {m.name or 'tool'} {outcome}: {_cap(m.content)}")
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > budget_chars and kept:
            kept.append(f"[{len(lines) - len(kept)} older messages left out]")
            break
        kept.append(line)
    return "\n".join(reversed(kept))


def summary_request(
    messages: Sequence[Message], previous: str | None, *, budget_chars: int
) -> list[Message]:
    """The summarization request: an instruction, the earlier summary, the transcript."""
    parts = [SUMMARY_REQUEST]
    if previous:
        parts.append(f"<earlier-summary>\n{previous}\n</earlier-summary>")
    parts.append(f"<conversation>\n{transcript(messages, budget_chars)}\n</conversation>")
    return [
        Message(role="system", content=SUMMARY_SYSTEM),
        Message(role="user", content="\n\n".join(parts)),
    ]


@dataclass(slots=True)
class Compactor:
    """Decides when to compact a session's context and does it.

    `model` writes the summaries; `model_name`, when set, is sent as the request's model
    (an alias or deployment for the router, a model id for a bare adapter).
    """

    store: Store
    model: Model
    model_name: str | None
    context_window: int
    compact_at: float
    keep_recent: int
    history_max_messages: int
    max_tokens: int | None = None

    @property
    def threshold(self) -> int:
        """The estimated context size, in tokens, from which the context is compacted."""
        return int(self.context_window * self.compact_at)

    async def maybe_compact(
        self,
        *,
        session_id: str,
        run_id: str,
        messages: list[Message],
        tools: Sequence[ToolSpec],
        metadata: dict[str, str],
    ) -> Compaction | None:
        """Compact when `messages` (system prompt first) reach the threshold; None if it
        was not needed or nothing may be summarized yet. Raises `ProviderError` if the
        summarization call fails or returns no text."""
        before = estimate_tokens(messages, tools)
        if before < self.threshold:
            return None
        records = await self.store.list_messages(session_id)
        previous = await self.store.latest_compaction(session_id)
        after_seq = previous.upto_seq if previous else 0
        upto = choose_cut(records, after_seq=after_seq, keep_recent=self.keep_recent, run_id=run_id)
        if upto is None:
            return None
        chosen = [r.message for r in records if after_seq < r.seq <= upto]
        budget = int(self.context_window * TRANSCRIPT_SHARE) * CHARS_PER_TOKEN
        request = ModelRequest(
            messages=summary_request(
                chosen, previous.summary if previous else None, budget_chars=budget
            ),
            model=self.model_name,
            max_tokens=min(SUMMARY_MAX_TOKENS, self.max_tokens or SUMMARY_MAX_TOKENS),
            metadata={**metadata, "purpose": "compaction"},
        )
        builder = ResponseBuilder()
        async for event in self.model.stream(request):
            builder.add(event)
        response = builder.build()
        summary = response.text.strip()
        if not summary:
            raise ProtocolError(
                f"the compaction model {request.model or self.model.name} answered without "
                "a summary; check agent.compaction_model",
                provider=self.model.name,
            )
        new_context = [
            messages[0],
            *_summarized(records, upto, summary, self.history_max_messages),
        ]
        after = estimate_tokens(new_context, tools)
        record = await self.store.record_compaction(
            session_id,
            upto_seq=upto,
            summary=summary,
            run_id=run_id,
            model=self.model_name or self.model.name,
            tokens_before=before,
            tokens_after=after,
        )
        logger.info(
            "session %s: compacted %d messages up to seq %d (~%d → ~%d tokens)",
            *(session_id, len(chosen), upto, before, after),
        )
        return Compaction(record, new_context, len(chosen), response.usage)


def model_context_window(config: Config, route: str = "") -> int | None:
    """The context window, in tokens, of the model an agent asks for by `route`.

    `route` is an alias or deployment name; "" is the router's default. The smallest
    `context_window` its deployments state wins (a fallback may land on any of them).
    None when there is no router or none of them says: the agent then assumes
    `agent.context_window`. Fits `build_agents(context_window_for=...)`.
    """
    from staffer.router._build import gateway_router_config  # the router loads adapters

    router = gateway_router_config(config)
    name = route or (router.default_alias if router is not None else None)
    if router is None or not name:
        return None
    alias = router.aliases.get(name)
    names = alias.deployments if alias is not None else (name,)
    windows = [
        d.context_window
        for d in (router.deployments.get(n) for n in names)
        if d is not None and d.context_window
    ]
    return min(windows) if windows else None


def _cap(text: str) -> str:
    if len(text) <= TRANSCRIPT_ITEM_MAX_CHARS:
        return text
    left = len(text) - TRANSCRIPT_ITEM_MAX_CHARS
    return f"{text[:TRANSCRIPT_ITEM_MAX_CHARS]} [… {left} characters left out]"
