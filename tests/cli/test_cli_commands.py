"""The `staffer` commands, run in-process with CliRunner against a temporary STAFFER_HOME."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from staffer import __version__
from staffer.cli import app
from staffer.config import Home, render_config_docs


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def run(home: Home, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"STAFFER_HOME": str(home.root)})


def test_init_then_init_again(home: Home) -> None:
    result = run(home, "init")
    assert result.exit_code == 0, result.output
    assert str(home.token_file) in result.stdout
    assert "staffer start" in result.stdout
    assert "connect a model" in result.stdout
    assert home.token_file.exists()

    again = run(home, "init")
    assert again.exit_code == 0
    assert "already set up" in again.stdout


def test_config_check_ok(home: Home) -> None:
    run(home, "init")
    result = run(home, "config", "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"config OK: {home.config_file}\n")
    assert "http://127.0.0.1:8765" in result.stdout


def test_config_check_without_a_file_uses_defaults(home: Home) -> None:
    result = run(home, "config", "check")
    assert result.exit_code == 0
    assert "every setting at its default" in result.stdout


def test_config_check_bad_key(home: Home) -> None:
    run(home, "init")
    home.config_file.write_text("[gateway]\nprot = 80\n")
    result = run(home, "config", "check")
    assert result.exit_code == 2
    assert "gateway.prot" in result.stderr
    assert "did you mean `port`" in result.stderr
    assert "Traceback" not in result.output


def test_config_check_bad_syntax(home: Home) -> None:
    run(home, "init")
    home.config_file.write_text("[gateway\n")
    result = run(home, "config", "check")
    assert result.exit_code == 2
    assert "line 1, column" in result.stderr


def test_start_refuses_a_bad_port_before_serving(home: Home) -> None:
    result = run(home, "start", "--port", "0")
    assert result.exit_code == 2
    assert "gateway.port" in result.stderr
    assert home.token_file.exists(), "start sets up the home first"


def test_config_path_and_docs(home: Home) -> None:
    assert run(home, "config", "path").stdout == f"{home.config_file}\n"
    assert run(home, "config", "docs").stdout == render_config_docs()


def test_version(home: Home) -> None:
    assert run(home, "version").stdout == f"staffer {__version__}\n"


def test_help_lists_commands_without_heavy_imports() -> None:
    # `staffer --help` must stay fast: no rich, httpx, web framework or gateway at startup.
    code = (
        "import sys\n"
        "from staffer.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('rich', 'httpx', 'fastapi', 'starlette', 'uvicorn', 'staffer.gateway')\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for command in ("init", "start", "chat", "config", "version"):
        assert f"  {command} " in out
    assert "LOADED []" in out


def test_config_check_reports_a_missing_api_key(home: Home) -> None:
    home.root.mkdir()
    home.config_file.write_text(
        '[model]\nname = "anthropic:claude-sonnet-4-5"\napi_key_env = "STAFFER_TEST_NO_SUCH_KEY"\n'
    )
    result = run(home, "config", "check")
    assert result.exit_code == 2
    assert "model.api_key_env" in result.stderr
    assert "STAFFER_TEST_NO_SUCH_KEY" in result.stderr


def test_config_check_with_a_local_model(home: Home) -> None:
    home.root.mkdir()
    home.config_file.write_text('[model]\nname = "ollama:llama3.1"\n')
    result = run(home, "config", "check")
    assert result.exit_code == 0, result.output
    assert "ollama:llama3.1" in result.stdout


ROUTED = """
[model]
name = "smart"

[deployments.hosted]
provider = "openai"
model = "gpt-4o-mini"
api_key_env = "STAFFER_TEST_MISSING_KEY"

[deployments.local]
provider = "ollama"
model = "llama3.1"

[aliases.smart]
deployments = ["hosted", "local"]
"""


def test_config_check_understands_aliases_and_warns_of_disabled_deployments(home: Home) -> None:
    run(home, "init")
    home.config_file.write_text(ROUTED)
    result = run(home, "config", "check")
    assert result.exit_code == 0, result.output
    assert "router" in result.stdout
    assert "deployment hosted is disabled" in result.stdout
    assert "STAFFER_TEST_MISSING_KEY" in result.stdout


def test_config_check_fails_when_no_deployment_can_serve(home: Home) -> None:
    run(home, "init")
    only_hosted = (
        ROUTED.split("[deployments.local]")[0] + '[aliases.smart]\ndeployments = ["hosted"]\n'
    )
    home.config_file.write_text(only_hosted)
    result = run(home, "config", "check")
    assert result.exit_code == 2
    assert "STAFFER_TEST_MISSING_KEY" in result.output
