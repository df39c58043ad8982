"""Work between agents: `delegate`, `delegation_result` and `send_to_agent`.

`delegate` runs another agent on a sub-task as a run of its own, in a new session of that
agent, linked to the caller's run (`parent_run_id`: the UI shows it nested). In the
foreground it waits for the answer; with ``background`` it returns at once and the
caller collects the answer later with `delegation_result`. A failure comes back as a
structured result the caller can act on: retry, rephrase, or reassign to another agent.
`send_to_agent` hands a peer a message, without waiting (it becomes a run of the peer).

All three are durable: each passes its idempotency key on, so after a crash the same
call finds the sub-run it already started instead of starting another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from staffer.errors import ToolError
from staffer.tools._base import Impact, Tool, ToolContext

if TYPE_CHECKING:
    from staffer.store import RunRecord

#: the tools an agent gets when other agents are configured
DELEGATION_TOOL_NAMES = ("delegate", "delegation_result", "send_to_agent")

MAX_TASK_CHARS = 20_000


class RunBroker(Protocol):
    """What the delegation tools need from the run queue (see staffer.runs.RunBroker)."""

    async def submit(
        self, *, agent: str, text: str, title: str, parent_run_id: str | None, key: str
    ) -> RunRecord: ...

    async def wait(self, run_id: str, seconds: float) -> RunRecord:
        """The run once it has ended, or as it is after `seconds`."""

    async def answer(self, run: RunRecord) -> str: ...

    async def depth(self, run_id: str) -> int: ...

    async def get_by_key(self, key: str) -> RunRecord | None: ...

    async def get(self, run_id: str) -> RunRecord | None: ...

    async def active_children(self, run_id: str) -> int:
        """How many runs started on behalf of `run_id` are still queued or running."""


def _peers_help(peers: Mapping[str, str]) -> str:
    return "; ".join(f"{name}: {about}" if about else name for name, about in peers.items())


def _text(args: dict[str, Any], name: str, limit: int = MAX_TASK_CHARS) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"`{name}` must be a non-empty string")
    if len(value) > limit:
        raise ToolError(f"`{name}` is {len(value)} characters; the most is {limit}")
    return value


class _PeerTool(Tool):
    def __init__(self, broker: RunBroker, *, agent: str, peers: Mapping[str, str]) -> None:
        self.broker = broker
        self.agent = agent
        self.peers = dict(peers)

    def _peer(self, args: dict[str, Any]) -> str:
        name = args.get("agent")
        if name not in self.peers:
            raise ToolError(f"unknown agent {name!r}; choose one of: {', '.join(self.peers)}")
        return str(name)


class DelegateTool(_PeerTool):
    name = "delegate"
    impact = Impact.REVERSIBLE  # starts work inside Staffer
    honours_idempotency_key = True

    def __init__(
        self,
        broker: RunBroker,
        *,
        agent: str,
        peers: Mapping[str, str],
        max_depth: int,
        timeout: float,
        max_parallel: int = 4,
    ) -> None:
        super().__init__(broker, agent=agent, peers=peers)
        self.max_depth = max_depth
        self.max_parallel = max_parallel
        self.timeout = timeout
        self.max_seconds = timeout + 5.0  # the loop's limit for this tool
        self.description = (
            "Give a sub-task to another agent and get its answer. Agents: "
            f"{_peers_help(peers)}. With background=true it returns a run_id at once; "
            "collect the answer with delegation_result."
        )
        self.parameters = {
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": list(peers)},
                "task": {"type": "string", "description": "everything the agent needs to know"},
                "background": {"type": "boolean"},
            },
            "required": ["agent", "task"],
            "additionalProperties": False,
        }

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        peer = self._peer(args)
        task = _text(args, "task")
        depth = await self.broker.depth(ctx.run_id) + 1
        if depth > self.max_depth:
            return _failure(
                peer,
                None,
                f"delegation depth {depth} is over the limit of {self.max_depth}",
                "do the sub-task yourself",
            )
        busy = await self.broker.active_children(ctx.run_id)
        if busy >= self.max_parallel and await self.broker.get_by_key(ctx.idempotency_key) is None:
            return _failure(
                peer,
                None,
                f"{busy} delegations of this run are still working, the most at once is "
                f"{self.max_parallel}",
                "collect a background result with delegation_result first, or do it yourself",
            )
        run = await self.broker.submit(
            agent=peer,
            text=task,
            title=f"{self.agent} → {peer}: {' '.join(task.split())[:60]}",
            parent_run_id=ctx.run_id,
            key=ctx.idempotency_key,
        )
        if args.get("background"):
            return json.dumps(
                {"status": "started", "agent": peer, "run_id": run.id, "session_id": run.session_id}
            )
        return await _result(self.broker, run.id, self.timeout, list(self.peers))


class DelegationResultTool(Tool):
    name = "delegation_result"
    description = "The answer of a background delegation, waiting up to wait_seconds for it."

    def __init__(self, broker: RunBroker, *, peers: Mapping[str, str], max_wait: float) -> None:
        self.parameters = {
            "type": "object",
            "properties": {
                "run_id": {"type": "string"},
                "wait_seconds": {"type": "number", "minimum": 0},
            },
            "required": ["run_id"],
            "additionalProperties": False,
        }
        self.broker = broker
        self.peers = list(peers)
        self.max_wait = max_wait
        self.max_seconds = max_wait + 5.0

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        run_id = _text(args, "run_id", 64)
        run = await self.broker.get(run_id)
        if run is None or run.parent_run_id is None:
            raise ToolError(f"no delegation with run_id {run_id!r}")
        wait = float(args.get("wait_seconds") or 0.0)
        return await _result(self.broker, run_id, min(max(wait, 0.0), self.max_wait), self.peers)


class SendToAgentTool(_PeerTool):
    name = "send_to_agent"
    impact = Impact.REVERSIBLE
    honours_idempotency_key = True

    def __init__(self, broker: RunBroker, *, agent: str, peers: Mapping[str, str]) -> None:
        super().__init__(broker, agent=agent, peers=peers)
        self.description = (
            f"Send a message to another agent without waiting for it. Agents: {_peers_help(peers)}."
        )
        self.parameters = {
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": list(peers)},
                "message": {"type": "string"},
            },
            "required": ["agent", "message"],
            "additionalProperties": False,
        }

    async def call(self, args: dict[str, Any], ctx: ToolContext) -> str:
        peer = self._peer(args)
        message = _text(args, "message")
        run = await self.broker.submit(
            agent=peer,
            text=f"Message from agent {self.agent}:\n{message}",
            title=f"message from {self.agent}",
            parent_run_id=ctx.run_id,
            key=ctx.idempotency_key,
        )
        return json.dumps({"status": "sent", "agent": peer, "run_id": run.id})


async def _result(broker: RunBroker, run_id: str, seconds: float, peers: list[str]) -> str:
    run = await broker.wait(run_id, seconds)
    agent = run.agent or "main"
    if run.status == "done":
        answer = await broker.answer(run)
        done = {"status": "done", "agent": agent, "run_id": run.id, "session_id": run.session_id}
        return json.dumps({**done, "answer": answer})
    if run.status in ("queued", "running", "waiting"):
        return json.dumps(
            {
                "status": "running",
                "agent": agent,
                "run_id": run.id,
                "session_id": run.session_id,
                "hint": "still working; ask again with delegation_result, or go on without it",
            }
        )
    others = [p for p in peers if p != agent]
    hint = "retry with a clearer or smaller task"
    if others:
        hint += f", or reassign it to {' or '.join(others)}"
    return _failure(agent, run, run.error or run.status, hint)


def _failure(agent: str, run: RunRecord | None, error: str, hint: str) -> str:
    return json.dumps(
        {
            "status": "failed",
            "agent": agent,
            "run_id": run.id if run else None,
            "error": error,
            "hint": hint,
        }
    )


def delegation_tools(
    broker: RunBroker,
    *,
    agent: str,
    peers: Mapping[str, str],
    max_depth: int,
    timeout: float,
    max_parallel: int = 4,
) -> list[Tool]:
    """The tools for `agent` to work with `peers` (name → description)."""
    return [
        DelegateTool(
            broker,
            agent=agent,
            peers=peers,
            max_depth=max_depth,
            timeout=timeout,
            max_parallel=max_parallel,
        ),
        DelegationResultTool(broker, peers=peers, max_wait=timeout),
        SendToAgentTool(broker, agent=agent, peers=peers),
    ]
