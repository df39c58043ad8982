"""The agent loop, written as explicit steps so a durable engine can journal each one.

    start ─► assemble_context ─► take_steering ─► call_model ─┬─► (no tool calls) ─► finish
                                       ▲                      └─► run_tools ──┐
                                       └──────────────────────────────────────┘

Each step takes the turn's state and returns what it produced; the only side
effects are the store writes and the events it emits. Between steps the loop reads its
`RunControl`: a stop request ends the run, steering messages join the context.

Durability: each model call and each tool call is a journaled step — its messages and
its `StepRecord` are written in one transaction (`Store.commit_step`), so a run cut off
by a crash resumes where it stopped (`run_turn` on the same run id): finished steps are
in the history and are not executed again; a model call in flight is made again; a tool
call in flight is run again with the same idempotency key if that is safe
(`Tool.rerun_safe`), and otherwise answered "interrupted" for the model to decide —
such tools get a `started` journal entry before they run, so the loop can tell.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from staffer.agent._compact import Compactor, history_after
from staffer.agent._context import read_system_prompt
from staffer.config import AgentConfig
from staffer.errors import LeaseLostError, ProviderError, RunError, ToolError
from staffer.models import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ResponseBuilder,
    TextDelta,
    ToolCall,
    Usage,
)
from staffer.store import RunStatus, StepRecord, Store, ToolCallRecord
from staffer.tools import ToolContext, Toolset

logger = logging.getLogger("staffer.agent")

#: Receives every event of a run as a JSON-ready dict (see docs/http-api.md).
Emit = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class TurnState:
    """Everything one turn knows; the steps read and extend it."""

    session_id: str
    run_id: str
    messages: list[Message] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    iterations: int = 0
    last_call: tuple[str, str] | None = None
    repeats: int = 0
    text: str = ""
    ending: asyncio.Future[TurnResult] | None = None
    owner: str | None = None  # the executor holding the run's lease (None: not fenced)
    step_no: int = 0  # the last journaled step
    interrupted: dict[str, StepRecord] = field(default_factory=dict)  # call id -> started
    pending: list[ToolCall] = field(default_factory=list)  # calls to run on resume
    final: str | None = None  # the answer, when it was stored before a crash


@dataclass(slots=True)
class RunControl:
    """How the outside talks to a running turn: `inbox` holds user messages to add before
    the next model call; `stopped` (final status, error) is set before the run's task is
    cancelled, or makes the loop end at its next step boundary."""

    inbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    stopped: tuple[RunStatus, str] | None = None
    detached: bool = False

    def stop(self, status: RunStatus, reason: str) -> None:
        if self.stopped is None:
            self.stopped = (status, reason)

    def detach(self) -> None:
        """The process is shutting down: a cancellation now leaves the run open in the
        store (to be resumed from its journal) instead of ending it."""
        self.detached = True


class RunStopped(Exception):
    """Raised at a step boundary when the run's `RunControl` asks it to stop."""


@dataclass(slots=True, frozen=True)
class TurnResult:
    run_id: str
    status: RunStatus
    text: str
    usage: Usage
    error: str | None = None


class Agent:
    """Runs turns: one user message in, tool calls as needed, one answer out."""

    def __init__(
        self,
        *,
        model: Model,
        tools: Toolset,
        store: Store,
        workspace: Path,
        config: AgentConfig,
        max_tokens: int | None = None,
        name: str = "main",
        compaction_model: Model | None = None,
        context_window: int | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.tools = tools
        self.store = store
        self.workspace = workspace
        self.config = config
        self.max_tokens = max_tokens
        self._specs = tools.specs()
        self._spent: tuple[float, float] | None = None  # (when read, USD in the last 24 h)
        # Context compaction (_compact.py); model_context_window() finds the window.
        self.compactor = Compactor(
            store=store,
            model=compaction_model or model,
            model_name=config.compaction_model or None,
            context_window=context_window or config.context_window,
            compact_at=config.compact_at,
            keep_recent=config.keep_recent_messages,
            history_max_messages=config.history_max_messages,
            max_tokens=max_tokens,
        )

    async def start_run(self, session_id: str, text: str) -> str:
        """Record the user's message and a new run; return the run id."""
        run = await self.store.create_run(session_id, model=self.model.name)
        await self.store.append_messages(
            session_id, [Message(role="user", content=text)], run_id=run.id
        )
        return run.id

    async def run_turn(
        self,
        session_id: str,
        run_id: str,
        emit: Emit,
        *,
        control: RunControl | None = None,
        owner: str | None = None,
    ) -> TurnResult:
        """Execute the run to the end, emitting events as it goes; a run cut off by a
        crash continues from its journal.

        `owner` is the executor that claimed the run: every write is fenced with it, and
        `LeaseLostError` propagates when another process took the run over. Cancelling
        the task ends the run as `control.stopped` says (default: cancelled by the user),
        recorded before the CancelledError propagates."""
        control = control or RunControl()
        state = TurnState(session_id=session_id, run_id=run_id, owner=owner)
        try:
            attempt = await self.load_journal(state)
            started: dict[str, Any] = {"type": "run_started", "model": self.model.name}
            if attempt > 1:
                started |= {"resumed": True, "attempt": attempt, "steps_done": state.step_no}
            emit(started)
            await self.assemble_context(state, emit)
            if state.final is not None:  # answered, then cut off before the run was closed
                state.text = state.final
                return await self._end(state, "done", None, emit)
            if state.pending:
                await self.run_tools(state, state.pending, emit)
            while True:
                if control.stopped is not None:
                    raise RunStopped(control.stopped[1])
                await self.take_steering(state, control, emit)
                if state.iterations >= self.config.max_iterations:
                    raise RunError(
                        f"stopped after {state.iterations} model calls without a final answer; "
                        "split the task or raise agent.max_iterations"
                    )
                await self.compact_if_needed(state, emit)
                response = await self.call_model(state, emit)
                if response.finish_reason in _CUT_SHORT:
                    emit({"type": "notice", "text": _CUT_SHORT[response.finish_reason]})
                if not response.tool_calls:
                    if not control.inbox.empty():
                        continue  # steered while answering: answer the new message too
                    state.text = response.text
                    return await self._end(state, "done", None, emit)
                await self.run_tools(state, response.tool_calls, emit)
        except LeaseLostError:
            raise  # another process runs it now: write nothing more
        except RunStopped:
            return await self._end(state, *(control.stopped or ("cancelled", _CANCELLED)), emit)
        except (ProviderError, RunError) as exc:
            return await self._end(state, *(control.stopped or ("failed", str(exc))), emit)
        except asyncio.CancelledError:
            if control.detached:
                raise
            status, reason = control.stopped or ("cancelled", _CANCELLED)
            await self._end(state, status, reason, emit)
            raise
        except Exception as exc:  # a bug must end the run visibly, not wedge the session
            logger.exception("run %s crashed", run_id)
            return await self._end(state, "failed", f"internal error: {exc!r}", emit)

    # --- steps -------------------------------------------------------------

    async def load_journal(self, state: TurnState) -> int:
        """Step 0: what the run already did (nothing, unless it is resumed); its attempt."""
        run = await self.store.get_run(state.run_id)
        if run is None:
            raise RunError(f"run {state.run_id!r} does not exist")
        steps = await self.store.load_steps(state.run_id)
        state.usage = run.usage
        state.step_no = max((step.step_no for step in steps), default=0)
        state.iterations = sum(step.kind == "model" for step in steps)
        state.interrupted = {
            step.call_id: step
            for step in steps
            if step.kind == "tool" and step.status == "started" and step.call_id
        }
        return run.attempt

    async def assemble_context(self, state: TurnState, emit: Emit) -> None:
        """Step 1: system prompt from the workspace files plus the session's history.

        When the history ends inside this run (a resume), note where: tool calls still
        without a result go to `state.pending`, a stored answer to `state.final`."""
        prompt = await asyncio.to_thread(
            read_system_prompt, self.workspace, self.config.workspace_file_max_chars
        )
        for notice in prompt.notices:
            emit({"type": "notice", "text": notice})
        records = await self.store.list_messages(state.session_id)
        if records and records[-1].run_id == state.run_id:
            state.final, state.pending = _resume_point([r.message for r in records])
        compaction = await self.store.latest_compaction(state.session_id)
        state.messages = [
            Message(role="system", content=prompt.text),
            *history_after(
                records,
                compaction,
                self.config.history_max_messages,
                keep_open=bool(state.pending),
            ),
        ]

    async def take_steering(self, state: TurnState, control: RunControl, emit: Emit) -> None:
        """Step 1b: messages sent while the run works join its context (and the history)."""
        steering: list[Message] = []
        while not control.inbox.empty():
            steering.append(Message(role="user", content=control.inbox.get_nowait()))
        if not steering:
            return
        state.messages.extend(steering)
        await self.store.append_messages(state.session_id, steering, run_id=state.run_id)
        for message in steering:
            emit({"type": "steered", "text": message.content})

    async def compact_if_needed(self, state: TurnState, emit: Emit) -> None:
        """Step 1c: near the context window, older turns become one summary (_compact.py).

        A failed summarization is reported and skipped: the model call may still fit."""
        try:
            done = await self.compactor.maybe_compact(
                session_id=state.session_id,
                run_id=state.run_id,
                messages=state.messages,
                tools=self._specs,
                metadata={"agent": self.name, "session": state.session_id, "run": state.run_id},
            )
        except ProviderError as exc:
            logger.warning("run %s: compaction failed: %s", state.run_id, exc)
            emit({"type": "notice", "text": f"could not summarize older messages: {exc}"})
            return
        if done is not None:
            state.messages = done.messages
            state.usage = state.usage + done.usage
            emit(done.event())

    async def call_model(self, state: TurnState, emit: Emit) -> ModelResponse:
        """Step 2: one streaming model call; the answer is appended and stored."""
        await self._check_budget()
        state.iterations += 1
        started = time.time()
        request = ModelRequest(
            messages=state.messages,
            tools=self._specs,
            max_tokens=self.max_tokens,
            metadata={"agent": self.name, "session": state.session_id, "run": state.run_id},
        )
        builder = ResponseBuilder()
        async for event in self.model.stream(request):
            builder.add(event)
            if isinstance(event, TextDelta) and event.text:
                emit({"type": "text_delta", "text": event.text})
        response = builder.build()
        state.usage = state.usage + response.usage
        emit({"type": "usage", **state.usage.counts()})
        message = response.to_message()
        state.messages.append(message)
        state.step_no += 1
        step = StepRecord(state.run_id, state.step_no, "model", "done", None, None, 1, started)
        await self._commit(state, step, message)
        return response

    async def run_tools(self, state: TurnState, calls: list[ToolCall], emit: Emit) -> None:
        """Step 3: run the requested tools in order; each result is a journaled step.

        A call cut off by a crash (a `started` journal entry) is run again only when that
        is safe; otherwise the model reads that it was interrupted."""
        for call in calls:
            self._check_repetition(state, call)
            key = f"{state.run_id}:{call.id}"
            tool = self.tools.find(call.name)
            earlier = state.interrupted.pop(call.id, None)
            if earlier is not None:
                step_no = earlier.step_no
            else:
                state.step_no += 1
                step_no = state.step_no
            started = time.time()
            step = StepRecord(state.run_id, step_no, "tool", "done", call.id, key, 1, started)
            if earlier is not None and (tool is None or not tool.rerun_safe):
                result, record = self._interrupted(state, call, emit)
                step = StepRecord(
                    state.run_id, step_no, "tool", "interrupted", call.id, key, 2, started
                )
            else:
                if tool is not None and not tool.rerun_safe:
                    marker = StepRecord(
                        state.run_id, step_no, "tool", "started", call.id, key, 1, started
                    )
                    await self.store.start_step(marker, owner=state.owner)
                result, record = await self._run_tool(state, call, emit)
            state.messages.append(result)
            await self._commit(state, step, result, record)

    async def finish(
        self, state: TurnState, status: RunStatus, error: str | None, emit: Emit
    ) -> TurnResult:
        """Step 4: close the run in the store and tell the listeners."""
        await self._close_open_calls(state, error or status)
        await self.store.finish_run(
            state.run_id, status=status, usage=state.usage, error=error, owner=state.owner
        )
        emit(
            {
                "type": "run_finished",
                "status": status,
                "error": error,
                "text": state.text,
                "usage": state.usage.counts(),
            }
        )
        return TurnResult(state.run_id, status, state.text, state.usage, error)

    # --- helpers -----------------------------------------------------------

    async def _check_budget(self) -> None:
        """Stop before a model call once the agent's 24-hour spend reached its budget.

        The spend is the store's cost records (flushed every half second), read at most
        every `BUDGET_REFRESH` seconds: runs in flight at once may go over by the calls
        they make meanwhile. Calls without a known price are not counted."""
        limit = self.config.budget_usd_per_day
        if limit is None:
            return
        now = time.monotonic()
        if self._spent is None or now - self._spent[0] > BUDGET_REFRESH:
            rows = await self.store.model_call_summary("agent", since=time.time() - 86_400)
            spent = next((row.cost_usd for row in rows if row.key == self.name), 0.0)
            self._spent = (now, spent)
        spent = self._spent[1]
        if spent >= limit:
            raise RunError(
                f"agent {self.name!r} has spent ${spent:.4f} on model calls in the last 24 "
                f"hours, its budget is ${limit:g}; raise budget_usd_per_day for it "
                "(agents.NAME or agent), or wait"
            )

    async def _commit(
        self,
        state: TurnState,
        step: StepRecord,
        message: Message,
        tool_call: ToolCallRecord | None = None,
    ) -> None:
        """Journal a finished step with its message, in one transaction."""
        done = StepRecord(
            step.run_id,
            step.step_no,
            step.kind,
            step.status,
            step.call_id,
            step.idempotency_key,
            step.attempt,
            step.created_at,
            time.time(),
        )
        await self.store.commit_step(
            done,
            session_id=state.session_id,
            messages=[message],
            usage=state.usage,
            owner=state.owner,
            tool_call=tool_call,
        )

    def _interrupted(
        self, state: TurnState, call: ToolCall, emit: Emit
    ) -> tuple[Message, ToolCallRecord]:
        error = (
            f"{call.name} was interrupted by a restart while it ran and was not run again, "
            "because running it twice could repeat its effects; check whether it took "
            "effect before calling it again"
        )
        emit(
            {
                "type": "tool_call_finished",
                "call_id": call.id,
                "name": call.name,
                "result": None,
                "error": error,
                "duration_ms": 0.0,
            }
        )
        return _tool_message(call, None, error), self._tool_record(state, call, None, error, 0.0)

    def _tool_record(
        self,
        state: TurnState,
        call: ToolCall,
        result: str | None,
        error: str | None,
        duration_ms: float,
    ) -> ToolCallRecord:
        return ToolCallRecord(
            run_id=state.run_id,
            session_id=state.session_id,
            call_id=call.id,
            name=call.name,
            arguments=call.arguments,
            result=result,
            error=error,
            duration_ms=duration_ms,
            created_at=time.time(),
        )

    async def _end(
        self, state: TurnState, status: RunStatus, error: str | None, emit: Emit
    ) -> TurnResult:
        """Run `finish` once and to completion; a cancellation meanwhile is raised after it,
        so the history is complete before the session's next run may start."""
        if state.ending is None:
            state.ending = asyncio.ensure_future(self.finish(state, status, error, emit))
        cancelled = False
        while not state.ending.done():
            try:
                await asyncio.shield(state.ending)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError
        return state.ending.result()

    async def _close_open_calls(self, state: TurnState, reason: str) -> None:
        """Answer tool calls left without a result, so the history stays valid for providers."""
        for index in range(len(state.messages) - 1, -1, -1):
            message = state.messages[index]
            if message.role == "assistant":
                break
        else:
            return
        answered = {m.tool_call_id for m in state.messages[index + 1 :] if m.role == "tool"}
        missing = [
            Message(
                role="tool",
                content=f"Error: not run ({reason})",
                tool_call_id=call.id,
                name=call.name,
                is_error=True,
            )
            for call in message.tool_calls
            if call.id not in answered
        ]
        if missing:  # journaled (and fenced) like any step
            state.messages.extend(missing)
            state.step_no += 1
            now = time.time()
            step = StepRecord(
                state.run_id, state.step_no, "tool", "interrupted", None, None, 1, now
            )
            await self.store.commit_step(
                step,
                session_id=state.session_id,
                messages=missing,
                usage=state.usage,
                owner=state.owner,
            )

    def _check_repetition(self, state: TurnState, call: ToolCall) -> None:
        key = (call.name, _canonical(call.arguments))
        state.repeats = state.repeats + 1 if key == state.last_call else 1
        state.last_call = key
        if state.repeats >= self.config.repeat_limit:
            raise RunError(
                f"stopped: the model called {call.name} with the same arguments "
                f"{state.repeats} times in a row, which looks like a loop; rephrase the request "
                "or give the agent more to go on"
            )

    async def _run_tool(
        self, state: TurnState, call: ToolCall, emit: Emit
    ) -> tuple[Message, ToolCallRecord]:
        emit(
            {
                "type": "tool_call_started",
                "call_id": call.id,
                "name": call.name,
                "arguments": call.arguments,
            }
        )
        ctx = ToolContext(
            workspace=self.workspace,
            session_id=state.session_id,
            run_id=state.run_id,
            call_id=call.id,
            idempotency_key=f"{state.run_id}:{call.id}",
            timeout=self.config.tool_timeout,
            env={"STAFFER_IDEMPOTENCY_KEY": f"{state.run_id}:{call.id}"},
        )
        started = time.perf_counter()
        result: str | None = None
        error: str | None = None
        try:
            tool = self.tools.get(call.name)
            try:
                args = call.parsed_arguments()
            except ValueError as exc:
                raise ToolError(f"{exc}; call {call.name} again with a JSON object") from exc
            _check_required(tool.parameters, args)
            limit = tool.max_seconds or self.config.tool_timeout
            async with asyncio.timeout(limit + TOOL_GRACE_SECONDS):
                result = await tool.call(args, ctx)
        except ToolError as exc:
            error = str(exc)
        except TimeoutError:
            limit = self.config.tool_timeout
            if (found := self.tools.find(call.name)) is not None and found.max_seconds:
                limit = found.max_seconds
            error = f"{call.name} did not finish within {limit:g} s and was stopped"
        except Exception as exc:
            logger.exception("tool %s failed", call.name)
            error = f"{call.name} failed: {type(exc).__name__}: {exc}"
        duration_ms = (time.perf_counter() - started) * 1000
        if result is not None:
            result = _cap(result, self.config.max_tool_output_chars)
        emit(
            {
                "type": "tool_call_finished",
                "call_id": call.id,
                "name": call.name,
                "result": result,
                "error": error,
                "duration_ms": round(duration_ms, 3),
            }
        )
        record = self._tool_record(state, call, result, error, duration_ms)
        return _tool_message(call, result, error), record


_CUT_SHORT = {
    "length": "the answer was cut off at the model's output limit (raise model.max_tokens)",
    "content_filter": "the provider's content filter stopped the answer",
    "error": "the provider reported an error at the end of the answer",
}

#: Seconds an agent's spend figure is reused before the store is asked again.
BUDGET_REFRESH = 2.0

#: Extra seconds a tool gets past its timeout to stop itself (exec kills its process
#: group and reports partial output) before the loop cancels it.
TOOL_GRACE_SECONDS = 5.0


_CANCELLED = "cancelled by the user"


def _tool_message(call: ToolCall, result: str | None, error: str | None) -> Message:
    return Message(
        role="tool",
        content=f"Error: {error}" if error is not None else (result or ""),
        tool_call_id=call.id,
        name=call.name,
        is_error=error is not None,
    )


def _resume_point(history: list[Message]) -> tuple[str | None, list[ToolCall]]:
    """Where a resumed run stands, from the end of its history: the answer it already
    gave (None if none), and the tool calls of its last model step still without a
    result."""
    for index in range(len(history) - 1, -1, -1):
        message = history[index]
        if message.role == "assistant":
            if not message.tool_calls:
                return (message.content, []) if index == len(history) - 1 else (None, [])
            answered = {m.tool_call_id for m in history[index + 1 :] if m.role == "tool"}
            return None, [call for call in message.tool_calls if call.id not in answered]
        if message.role == "user":
            return None, []
    return None, []


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments


def _check_required(schema: dict[str, Any], args: dict[str, Any]) -> None:
    missing = [name for name in schema.get("required", ()) if name not in args]
    if missing:
        raise ToolError(f"missing required argument(s): {', '.join(missing)}")


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[output truncated: showing {limit} of {len(text)} characters]"
