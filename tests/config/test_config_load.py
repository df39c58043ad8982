"""load_config: a good file, the defaults, and one test per kind of mistake (key, problem, fix)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from staffer.config import (
    AgentConfig,
    Config,
    GatewayConfig,
    ModelConfig,
    check_config,
    load_config,
    render_config_template,
)
from staffer.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    err = info.value
    # Every config error names the key, says the problem and the fix.
    assert err.key
    assert err.problem
    assert err.fix
    return err


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "nope.toml") == Config()


def test_good_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[gateway]
host = "127.0.0.1"
port = 9000
max_body_bytes = 2048
auth = true

[model]
name = "openai:llama3.1"
base_url = "http://127.0.0.1:11434/v1"
api_key_env = "GROQ_API_KEY"
timeout = 30          # an int where a float is expected is fine
max_tokens = 1000

[agent]
max_iterations = 5
tool_timeout = 1.5
""",
    )
    config = load_config(path)
    assert config.gateway == GatewayConfig(port=9000, max_body_bytes=2048)
    assert config.model == ModelConfig(
        name="openai:llama3.1",
        base_url="http://127.0.0.1:11434/v1",
        api_key_env="GROQ_API_KEY",
        timeout=30.0,
        max_tokens=1000,
    )
    assert isinstance(config.model.timeout, float)
    assert config.agent == AgentConfig(max_iterations=5, tool_timeout=1.5)


def test_template_loads_as_defaults_commented_and_uncommented(tmp_path: Path) -> None:
    template = render_config_template()
    assert load_config(write(tmp_path, template)) == Config()
    # Uncommenting every `# key = default` line must still give the defaults: the template's
    # keys, sections and default values are the registry's.
    uncommented = re.sub(r"(?m)^# (\w+ = .*)$", r"\1", template)
    assert uncommented.count("\n[") == 5  # gateway, model, agent, store, runs
    assert load_config(write(tmp_path, uncommented)) == Config()


def test_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    err = error_for(tmp_path, '[gateway]\nport = 8765\nhost = 127.0.0.1"\n')
    assert err.key == str(tmp_path / "config.toml")
    assert "line 3, column" in err.problem
    assert "invalid TOML" in err.problem


def test_syntax_error_at_end_of_file(tmp_path: Path) -> None:
    err = error_for(tmp_path, "[gateway]\nport = ")
    assert "end of the file" in err.problem


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[model]\nname = "\xff"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    err = error_for(tmp_path, "[gateway]\nprot = 80\n")
    assert err.key == "gateway.prot"
    assert "unknown key" in err.problem
    assert err.fix is not None
    assert "did you mean `port`" in err.fix
    assert "host, port, max_body_bytes, auth" in err.fix


def test_unknown_key_without_a_close_match_lists_valid_keys(tmp_path: Path) -> None:
    err = error_for(tmp_path, "[agent]\nzzz = 1\n")
    assert err.key == "agent.zzz"
    assert err.fix is not None
    assert "did you mean" not in err.fix
    assert "max_iterations" in err.fix


def test_unknown_section(tmp_path: Path) -> None:
    err = error_for(tmp_path, "[gatway]\nport = 80\n")
    assert err.key == "gatway"
    assert "unknown section" in err.problem
    assert err.fix is not None
    assert "did you mean `gateway`" in err.fix


def test_setting_outside_its_section(tmp_path: Path) -> None:
    err = error_for(tmp_path, "port = 80\n")
    assert err.key == "port"
    assert err.fix is not None
    assert "gateway.port" in err.fix


def test_api_key_in_the_file_points_to_api_key_env(tmp_path: Path) -> None:
    err = error_for(tmp_path, '[model]\napi_key = "sk-123"\n')
    assert err.key == "model.api_key"
    assert err.fix is not None
    assert "api_key_env" in err.fix


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    err = error_for(tmp_path, "model = 3\n")
    assert err.key == "model"
    assert "table" in err.problem


@pytest.mark.parametrize(
    ("text", "key", "expected", "got"),
    [
        ('[gateway]\nport = "8765"\n', "gateway.port", "an integer", "'8765'"),
        ("[gateway]\nport = true\n", "gateway.port", "an integer", "True"),
        ("[gateway]\nport = 80.5\n", "gateway.port", "an integer", "80.5"),
        ("[gateway]\nauth = 1\n", "gateway.auth", "a boolean", "1"),
        ("[model]\nname = 3\n", "model.name", "a string", "3"),
        ('[model]\ntimeout = "slow"\n', "model.timeout", "a number", "'slow'"),
    ],
)
def test_wrong_type(tmp_path: Path, text: str, key: str, expected: str, got: str) -> None:
    err = error_for(tmp_path, text)
    assert err.key == key
    assert f"expected {expected}" in err.problem
    assert got in err.problem
    assert err.fix is not None
    assert err.fix.startswith(f"write it as {expected}")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[gateway]\nport = 0\n", "gateway.port", "not a TCP port"),
        ("[gateway]\nport = 70000\n", "gateway.port", "not a TCP port"),
        ("[gateway]\nmax_body_bytes = 100\n", "gateway.max_body_bytes", "minimum of 1024"),
        ('[gateway]\nhost = "0.0.0.0"\nauth = false\n', "gateway.auth", "auth is off"),
        ('[model]\nname = "gpt-4o"\n', "model.name", "does not say which provider"),
        ('[model]\nname = "openai:"\n', "model.name", "names no model"),
        ('[model]\nname = "foo:bar"\n', "model.name", 'unknown provider "foo"'),
        ('[model]\napi_key_env = "sk-abc123"\n', "model.api_key_env", "the key itself"),
        ("[model]\ntimeout = -1\n", "model.timeout", "not positive"),
        ("[agent]\nmax_iterations = 0\n", "agent.max_iterations", "not positive"),
    ],
)
def test_values_that_cannot_work(tmp_path: Path, text: str, key: str, problem: str) -> None:
    err = error_for(tmp_path, text)
    assert err.key == key
    assert problem in err.problem


def test_auth_off_on_loopback_is_allowed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[gateway]\nhost = "localhost"\nauth = false\n'))
    assert config.gateway.auth is False


def test_check_config_catches_overrides() -> None:
    config = Config(gateway=GatewayConfig(port=99999))
    with pytest.raises(ConfigError) as info:
        check_config(config)
    assert info.value.key == "gateway.port"


def test_error_message_reads_key_problem_fix(tmp_path: Path) -> None:
    err = error_for(tmp_path, "[gateway]\nprot = 80\n")
    assert str(err).startswith("gateway.prot: unknown key")
    assert "\nFix: did you mean" in str(err)
