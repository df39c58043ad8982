"""`staffer chat`: SSE decoding, turn printing and error mapping against httpx.MockTransport,
and the unreachable-gateway error through the real command."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from staffer.cli import app
from staffer.cli._chat import gateway_url, one_shot
from staffer.cli._client import GatewayClient, iter_sse
from staffer.config import Config, GatewayConfig, Home, init_home


def sse(*events: dict[str, Any]) -> bytes:
    chunks = [": ping\n\n"]
    for seq, event in enumerate(events, 1):
        payload = {"seq": seq, "session_id": "s1", "run_id": "r1", **event}
        chunks.append(f"id: {seq}\nevent: {event['type']}\ndata: {json.dumps(payload)}\n\n")
    return "".join(chunks).encode()


USAGE = {"input_tokens": 1200, "output_tokens": 34, "cached_input_tokens": 1000}


def tool(call_id: str, name: str, args: str, ms: int, error: str | None) -> list[dict[str, Any]]:
    return [
        {"type": "tool_call_started", "call_id": call_id, "name": name, "arguments": args},
        {
            "type": "tool_call_finished",
            "call_id": call_id,
            "name": name,
            "result": None if error else "ok",
            "error": error,
            "duration_ms": ms,
        },
    ]


TURN = [
    {"type": "run_started", "model": "openai:scripted"},
    {"type": "text_delta", "text": "Let me "},
    {"type": "text_delta", "text": "look."},
    *tool("c1", "read_file", '{"path": "a.md"}', 12, None),
    *tool("c2", "shell", '{"cmd": "false"}', 2300, "exit 1"),
    {"type": "notice", "text": "MEMORY.md was cut"},
    {"type": "text_delta", "text": "It says hi."},
    {"type": "usage", **USAGE},
]


def gateway(
    events: list[dict[str, Any]], *, status: int = 200, error: dict[str, Any] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok"
        if request.url.path == "/api/sessions":
            return httpx.Response(201, json={"id": "s1", "title": "t"})
        if error is not None:
            return httpx.Response(status, json={"error": error})
        assert request.url.params["stream"] == "true"
        assert json.loads(request.content) == {"text": "hello"}
        return httpx.Response(200, content=sse(*events))

    return handle


def client(handler: Callable[[httpx.Request], httpx.Response]) -> GatewayClient:
    transport = httpx.MockTransport(handler)
    return GatewayClient("http://gw", "tok", token_file=Path("/h/token"), transport=transport)


def test_iter_sse_joins_data_lines_and_skips_comments() -> None:
    lines = [": ping", "", "event: notice", 'data: {"text":', 'data: "x"}', "", "data: [1]", ""]
    assert list(iter_sse(lines)) == [{"text": "x", "type": "notice"}]


def test_one_shot_streams_the_answer_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    done = {
        "type": "run_finished",
        "status": "done",
        "error": None,
        "text": "It says hi.",
        "usage": USAGE,
    }
    with client(gateway([*TURN, done])) as c:
        assert one_shot(c, "hello", None) == 0
    out, err = capsys.readouterr()
    assert out == "Let me look.\n\nIt says hi.\n"
    assert '✓ read_file(path="a.md") · 12 ms' in err
    assert '✗ shell(cmd="false") · 2.3 s · exit 1' in err
    assert "! MEMORY.md was cut" in err
    assert "openai:scripted · 1,200 in (1,000 cached) · 34 out" in err
    assert "session s1" in err


def test_one_shot_failed_run_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    failed = {
        "type": "run_finished",
        "status": "failed",
        "error": "model down",
        "text": "",
        "usage": None,
    }
    with client(gateway([failed])) as c:
        assert one_shot(c, "hello", "s1") == 1
    assert "run failed: model down" in capsys.readouterr().err


def test_no_model_prints_message_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    error = {"code": "no_model", "message": "no model is configured", "fix": "add [model] name"}
    with client(gateway([], status=503, error=error)) as c, pytest.raises(typer.Exit) as info:
        one_shot(c, "hello", None)
    assert info.value.exit_code == 2
    err = capsys.readouterr().err
    assert "no model is configured" in err
    assert "fix: add [model] name" in err


def test_rejected_token(capsys: pytest.CaptureFixture[str]) -> None:
    error = {"code": "invalid_token", "message": "wrong token"}
    with client(gateway([], status=401, error=error)) as c, pytest.raises(typer.Exit) as info:
        one_shot(c, "hello", None)
    assert info.value.exit_code == 2
    assert "the gateway rejected the token in /h/token" in capsys.readouterr().err


def test_stream_that_stops_early(capsys: pytest.CaptureFixture[str]) -> None:
    with client(gateway(TURN[:2])) as c, pytest.raises(typer.Exit) as info:
        one_shot(c, "hello", None)
    assert info.value.exit_code == 2
    assert "ended the stream before the run finished" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9"),
        ("0.0.0.0", "http://127.0.0.1:9"),
        ("::", "http://[::1]:9"),
        ("::1", "http://[::1]:9"),
        ("box.lan", "http://box.lan:9"),
    ],
)
def test_gateway_url(host: str, url: str) -> None:
    assert gateway_url(Config(gateway=GatewayConfig(host=host, port=9))) == url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_chat_with_no_gateway_running(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    init_home(home)
    port = free_port()
    home.config_file.write_text(f"[gateway]\nport = {port}\n")
    result = CliRunner().invoke(app, ["chat", "-m", "hello"], env={"STAFFER_HOME": str(home.root)})
    assert result.exit_code == 2
    assert f"cannot reach the gateway at http://127.0.0.1:{port}" in result.stderr
    assert "is `staffer start` running?" in result.stderr


def test_chat_without_a_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["chat", "-m", "hello"], env={"STAFFER_HOME": str(tmp_path / "none")}
    )
    assert result.exit_code == 2
    assert "no access token at" in result.stderr
    assert "staffer init" in result.stderr


def test_terminal_control_sequences_are_stripped() -> None:
    from staffer.cli._render import strip_controls

    hostile = "ok\x1b]52;c;ZXZpbA==\x07 \x1b[2Jdone\n\tnext\x9b31m"
    assert strip_controls(hostile) == "ok]52;c;ZXZpbA== [2Jdone\n\tnext31m"
