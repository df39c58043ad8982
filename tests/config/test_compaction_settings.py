"""The compaction settings of [agent]: defaults, checks, and the context window they imply."""

from __future__ import annotations

from pathlib import Path

import pytest

from staffer.agent._compact import model_context_window
from staffer.config import AgentConfig, Config, load_config
from staffer.errors import ConfigError

ROUTED = """
[model]
name = "main"

[deployments.big]
provider = "openai"
model = "gpt-4o"
context_window = 128000

[deployments.small]
provider = "openai"
model = "gpt-4o-mini"
context_window = 16000

[deployments.unsized]
provider = "openai"
model = "other"

[aliases.main]
deployments = ["big", "small"]

[aliases.cheap]
deployments = ["small"]
"""


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_defaults() -> None:
    agent = AgentConfig()
    assert agent.compact_at == 0.8
    assert agent.context_window == 128_000
    assert agent.compaction_model == ""
    assert agent.keep_recent_messages == 8


@pytest.mark.parametrize("value", ["0", "-0.5", "1.01", "80"])
def test_compact_at_is_a_share_of_the_window(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f"[agent]\ncompact_at = {value}\n")
    assert info.value.key == "agent.compact_at"
    assert info.value.fix


def test_compact_at_one_is_allowed(tmp_path: Path) -> None:
    assert load(tmp_path, "[agent]\ncompact_at = 1\n").agent.compact_at == 1.0


def test_compaction_model_must_be_a_route_when_there_are_routes(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTED + '\n[agent]\ncompaction_model = "cheap"\n')
    assert config.agent.compaction_model == "cheap"
    with pytest.raises(ConfigError) as info:
        load(tmp_path, ROUTED + '\n[agent]\ncompaction_model = "cheep"\n')
    assert info.value.key == "agent.compaction_model"
    assert "cheap" in (info.value.fix or "")


def test_with_a_plain_model_the_compaction_model_is_a_model_id(tmp_path: Path) -> None:
    text = '[model]\nname = "openai:gpt-4o"\n\n[agent]\ncompaction_model = "gpt-4o-mini"\n'
    assert load(tmp_path, text).agent.compaction_model == "gpt-4o-mini"


def test_the_window_is_the_smallest_of_the_alias(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTED)
    assert model_context_window(config) == 16_000  # the default route: model.name = "main"
    assert model_context_window(config, "main") == 16_000
    assert model_context_window(config, "cheap") == 16_000


def test_the_window_of_a_deployment_or_none(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTED)
    assert model_context_window(config, "big") == 128_000
    assert model_context_window(config, "unsized") is None
    assert model_context_window(config, "nope") is None
    assert model_context_window(load(tmp_path, '[model]\nname = "openai:gpt-4o"\n')) is None
