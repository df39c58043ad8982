"""`run_command` and `minimal_env` with real subprocesses."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from staffer.errors import ToolError
from staffer.sandbox import SAFE_PATH, CommandResult, minimal_env, run_command


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for a reaper counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def wait_gone(pid: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def read_text(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


async def wait_for_file(path: Path, within: float = 2.0) -> str:
    deadline = time.monotonic() + within
    while not (text := read_text(path)):
        assert time.monotonic() < deadline, f"{path} never appeared"
        await asyncio.sleep(0.01)
    return text


async def run(command: str, cwd: Path, **kw: float) -> CommandResult:
    options: dict[str, float] = {"timeout": 5.0, "max_output_chars": 1000} | kw
    return await run_command(
        command,
        cwd=cwd,
        timeout=options["timeout"],
        max_output_chars=int(options["max_output_chars"]),
        env=minimal_env(home=cwd),
        kill_grace=options.get("kill_grace", 0.5),
    )


def test_minimal_env_holds_only_the_fixed_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-leak")
    monkeypatch.setenv("STAFFER_TOKEN", "secret")
    env = minimal_env(home=tmp_path)
    assert set(env) == {"PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR"}
    assert env["PATH"] == SAFE_PATH
    assert env["HOME"] == str(tmp_path)
    assert env["LANG"] == env["LC_ALL"] == "C.UTF-8"
    assert env["TERM"] == "dumb"
    assert minimal_env({"GIT_AUTHOR_NAME": "Ann", "TERM": "xterm"})["TERM"] == "xterm"
    assert "HOME" not in minimal_env()


async def test_exit_code_and_interleaved_output(tmp_path: Path) -> None:
    result = await run("echo out; echo err >&2; echo out2; exit 3", tmp_path)
    assert result.exit_code == 3
    assert result.output == "out\nerr\nout2\n"
    assert not result.truncated
    assert not result.timed_out
    assert result.duration_ms < 2000


async def test_runs_in_cwd_with_stdin_closed(tmp_path: Path) -> None:
    result = await run("pwd; cat; echo done", tmp_path)
    assert result.output == f"{tmp_path}\ndone\n"


async def test_env_is_exactly_what_was_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-leak")
    result = await run("env", tmp_path)
    assert "sk-leak" not in result.output
    assert f"HOME={tmp_path}\n" in result.output


async def test_output_cap_keeps_head_and_tail(tmp_path: Path) -> None:
    result = await run(
        "echo FIRST; head -c 3000000 /dev/zero | tr '\\0' a; echo; echo LAST", tmp_path
    )
    assert result.exit_code == 0
    assert result.truncated
    assert result.output.startswith("FIRST\naaa")
    assert result.output.endswith("aaa\nLAST\n")
    assert "[... output truncated: 3000012 bytes in total ...]" in result.output
    assert len(result.output) < 1100


async def test_output_just_under_the_cap_is_whole(tmp_path: Path) -> None:
    result = await run("printf 'é%.0s' $(seq 1000)", tmp_path)  # 1000 chars, 2000 bytes
    assert result.output == "é" * 1000
    assert not result.truncated


async def test_timeout_kills_child_and_grandchild(tmp_path: Path) -> None:
    script = "sh -c 'echo $$ > child.pid; sleep 100 & echo $! > grandchild.pid; wait'; echo never"
    started = time.monotonic()
    result = await run(script, tmp_path, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert result.timed_out
    assert result.exit_code < 0
    assert "never" not in result.output
    for name in ("child.pid", "grandchild.pid"):
        assert await wait_gone(int((tmp_path / name).read_text())), name


async def test_timeout_escalates_to_sigkill(tmp_path: Path) -> None:
    result = await run(
        "trap '' TERM; echo $$ > sh.pid; sleep 100", tmp_path, timeout=0.3, kill_grace=0.2
    )
    assert result.timed_out
    assert await wait_gone(int((tmp_path / "sh.pid").read_text()))


async def test_background_child_holding_the_pipe_does_not_hang(tmp_path: Path) -> None:
    started = time.monotonic()
    result = await run("sleep 100 & echo $!", tmp_path)
    assert time.monotonic() - started < 2.0
    assert result.exit_code == 0
    assert not result.timed_out
    assert await wait_gone(int(result.output))


async def test_cancellation_kills_the_process_group(tmp_path: Path) -> None:
    task = asyncio.create_task(
        run("echo $$ > sh.pid; sleep 100 & echo $! > bg.pid; wait", tmp_path, timeout=30)
    )
    await wait_for_file(tmp_path / "bg.pid")
    shell = int(await wait_for_file(tmp_path / "sh.pid"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(shell)
    assert await wait_gone(int((tmp_path / "bg.pid").read_text()))


async def test_missing_cwd_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="could not start /bin/sh"):
        await run("true", tmp_path / "missing")
