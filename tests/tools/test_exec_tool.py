"""The `exec` tool through the built-in toolset, with real shell commands."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from staffer.errors import ToolError
from staffer.tools import ToolContext, Toolset, builtin_tools


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def tools(ws: Path) -> Toolset:
    return builtin_tools(ws, exec_timeout=0.5, exec_max_output_chars=200)


@pytest.fixture
def ctx(ws: Path) -> ToolContext:
    return ToolContext(ws, session_id="s", run_id="r", call_id="c", idempotency_key="k")


async def test_exit_codes_are_results(tools: Toolset, ctx: ToolContext) -> None:
    assert await tools.call("exec", {"command": "echo hi"}, ctx) == "exit code 0\nhi"
    assert await tools.call("exec", {"command": "echo bad >&2; exit 2"}, ctx) == "exit code 2\nbad"
    assert await tools.call("exec", {"command": "true"}, ctx) == "exit code 0\n[no output]"
    killed = await tools.call("exec", {"command": "kill -9 $$"}, ctx)
    assert killed == "exit code -9 (killed by SIGKILL)\n[no output]"


async def test_runs_in_the_workspace_with_a_clean_env(
    ws: Path, ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-leak")
    monkeypatch.setenv("STAFFER_SECRET", "hush")
    tools = builtin_tools(ws)
    out = await tools.call("exec", {"command": "pwd; env"}, ctx)
    lines = out.splitlines()
    assert lines[1] == str(ws)
    assert f"HOME={ws}" in lines
    assert not [line for line in lines if "OPENAI" in line or "STAFFER" in line]


async def test_context_env_is_passed_on(ws: Path, tools: Toolset) -> None:
    ctx = ToolContext(
        ws, session_id="s", run_id="r", call_id="c", idempotency_key="k", env={"GREETING": "hej"}
    )
    assert await tools.call("exec", {"command": "echo $GREETING"}, ctx) == "exit code 0\nhej"


async def test_timeout_is_capped_and_reported(tools: Toolset, ctx: ToolContext) -> None:
    started = time.monotonic()
    out = await tools.call("exec", {"command": "echo start; sleep 100", "timeout": 300}, ctx)
    assert time.monotonic() - started < 2.5
    assert out.startswith("exit code -15\nstart\n")
    assert out.endswith("[timed out after 0.5 s; process killed]")
    short = await tools.call("exec", {"command": "sleep 100", "timeout": 0.2}, ctx)
    assert short.endswith("[timed out after 0.2 s; process killed]")


async def test_output_truncation_note(tools: Toolset, ctx: ToolContext) -> None:
    out = await tools.call("exec", {"command": "seq 1 10000"}, ctx)
    assert out.startswith("exit code 0\n1\n2\n")
    assert "[... output truncated: 48894 bytes in total ...]" in out
    assert "\n10000\n[output truncated: the middle was left out;" in out


async def test_bad_arguments(tools: Toolset, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="'command' must be a non-empty string"):
        await tools.call("exec", {"command": "  "}, ctx)
    with pytest.raises(ToolError, match="'timeout' must be more than 0"):
        await tools.call("exec", {"command": "true", "timeout": 0}, ctx)
    with pytest.raises(ToolError, match="'timeout' must be a number"):
        await tools.call("exec", {"command": "true", "timeout": "5"}, ctx)
