"""The agent loop, written as explicit steps so a durable engine can journal each one.

    start ─► assemble_context ─► take_steering ─► call_model ─┬─► (no tool calls) ─► finish
                                       ▲                      └─► run_tools ──┐
                                       └──────────────────────────────────────┘

Each step takes the turn's state and returns what it produced; the only side
effects are the store writes and the events it emits. Between steps the loop reads its
`RunControl`: a stop request ends the run, steering messages join the context.
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

from staffer.agent._context import read_system_prompt, repair_history, trim_history
from staffer.config import AgentConfig
from staffer.errors import ProviderError, RunError, ToolError
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
from staffer.store import RunStatus, Store, ToolCallRecord
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


@dataclass(slots=True)
class RunControl:
    """How the outside talks to a running turn: `inbox` holds user messages to add before
    the next model call; `stopped` (final status, error) is set before the run's task is
    cancelled, or makes the loop end at its next step boundary."""

    inbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    stopped: tuple[RunStatus, str] | None = None

    def stop(self, status: RunStatus, reason: str) -> None:
        if self.stopped is None:
            self.stopped = (status, reason)


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
    ) -> None:
        self.name = name
        self.model = model
        self.tools = tools
        self.store = store
        self.workspace = workspace
        self.config = config
        self.max_tokens = max_tokens
        self._specs = tools.specs()

    async def start_run(self, session_id: str, text: str) -> str:
        """Record the user's message and a new run; return the run id."""
        run = await self.store.create_run(session_id, model=self.model.name)
        await self.store.append_messages(
            session_id, [Message(role="user", content=text)], run_id=run.id
        )
        return run.id

    async def run_turn(
        self, session_id: str, run_id: str, emit: Emit, *, control: RunControl | None = None
    ) -> TurnResult:
        """Execute the run created by `start_run` to the end, emitting events as it goes.

        Cancelling the task ends the run as `control.stopped` says (default: cancelled by
        the user), recorded before the CancelledError propagates."""
        control = control or RunControl()
        state = TurnState(session_id=session_id, run_id=run_id)
        emit({"type": "run_started", "model": self.model.name})
        try:
            await self.assemble_context(state, emit)
            while True:
                if control.stopped is not None:
                    raise RunStopped(control.stopped[1])
                await self.take_steering(state, control, emit)
                if state.iterations >= self.config.max_iterations:
                    raise RunError(
                        f"stopped after {state.iterations} model calls without a final answer; "
                        "split the task or raise agent.max_iterations"
                    )
                response = await self.call_model(state, emit)
                if response.finish_reason in _CUT_SHORT:
                    emit({"type": "notice", "text": _CUT_SHORT[response.finish_reason]})
                if not response.tool_calls:
                    if not control.inbox.empty():
                        continue  # steered while answering: answer the new message too
                    state.text = response.text
                    return await self._end(state, "done", None, emit)
                await self.run_tools(state, response.tool_calls, emit)
        except RunStopped:
            return await self._end(state, *(control.stopped or ("cancelled", _CANCELLED)), emit)
        except (ProviderError, RunError) as exc:
            return await self._end(state, *(control.stopped or ("failed", str(exc))), emit)
        except asyncio.CancelledError:
            status, reason = control.stopped or ("cancelled", _CANCELLED)
            await self._end(state, status, reason, emit)
            raise
        except Exception as exc:  # a bug must end the run visibly, not wedge the session
            logger.exception("run %s crashed", run_id)
            return await self._end(state, "failed", f"internal error: {exc!r}", emit)

    # --- steps -------------------------------------------------------------

    async def assemble_context(self, state: TurnState, emit: Emit) -> None:
        """Step 1: system prompt from the workspace files plus the session's history."""
        prompt = await asyncio.to_thread(
            read_system_prompt, self.workspace, self.config.workspace_file_max_chars
        )
        for notice in prompt.notices:
            emit({"type": "notice", "text": notice})
        history = [r.message for r in await self.store.list_messages(state.session_id)]
        state.messages = [
            Message(role="system", content=prompt.text),
            *trim_history(repair_history(history), self.config.history_max_messages),
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

    async def call_model(self, state: TurnState, emit: Emit) -> ModelResponse:
        """Step 2: one streaming model call; the answer is appended and stored."""
        state.iterations += 1
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
        await self.store.append_messages(state.session_id, [message], run_id=state.run_id)
        return response

    async def run_tools(self, state: TurnState, calls: list[ToolCall], emit: Emit) -> None:
        """Step 3: run the requested tools in order; their results are appended and stored."""
        for call in calls:
            self._check_repetition(state, call)
            result = await self._run_tool(state, call, emit)
            state.messages.append(result)
            await self.store.append_messages(state.session_id, [result], run_id=state.run_id)

    async def finish(
        self, state: TurnState, status: RunStatus, error: str | None, emit: Emit
    ) -> TurnResult:
        """Step 4: close the run in the store and tell the listeners."""
        await self._close_open_calls(state, error or status)
        await self.store.finish_run(state.run_id, status=status, usage=state.usage, error=error)
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
        if missing:
            state.messages.extend(missing)
            await self.store.append_messages(state.session_id, missing, run_id=state.run_id)

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

    async def _run_tool(self, state: TurnState, call: ToolCall, emit: Emit) -> Message:
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
            async with asyncio.timeout(self.config.tool_timeout + TOOL_GRACE_SECONDS):
                result = await tool.call(args, ctx)
        except ToolError as exc:
            error = str(exc)
        except TimeoutError:
            error = (
                f"{call.name} did not finish within {self.config.tool_timeout:g} s and was stopped"
            )
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
        await self.store.record_tool_call(
            ToolCallRecord(
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
        )
        return Message(
            role="tool",
            content=f"Error: {error}" if error is not None else (result or ""),
            tool_call_id=call.id,
            name=call.name,
            is_error=error is not None,
        )


_CUT_SHORT = {
    "length": "the answer was cut off at the model's output limit (raise model.max_tokens)",
    "content_filter": "the provider's content filter stopped the answer",
    "error": "the provider reported an error at the end of the answer",
}

#: Extra seconds a tool gets past its timeout to stop itself (exec kills its process
#: group and reports partial output) before the loop cancels it.
TOOL_GRACE_SECONDS = 5.0


_CANCELLED = "cancelled by the user"


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
