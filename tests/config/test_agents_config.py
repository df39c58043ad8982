"""config.toml's [agents.NAME] and [[bindings]]: loading, defaults and one test per mistake."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from staffer.config import (
    AgentConfig,
    AgentProfile,
    AgentsConfig,
    Binding,
    Config,
    load_config,
    render_config_docs,
)
from staffer.config._docs import AGENTS_EXAMPLE, ROUTING_EXAMPLE
from staffer.config._model import AgentSettings
from staffer.errors import ConfigError

ROUTES = """
[deployments.mini]
provider = "openai"
model = "gpt-4o-mini"

[aliases.cheap]
deployments = ["mini"]
"""


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def error_for(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    err = info.value
    assert err.key
    assert err.problem
    assert err.fix
    return err


def test_without_tables_there_is_only_main(tmp_path: Path) -> None:
    agents = load(tmp_path, "").agents
    assert agents == AgentsConfig() == Config().agents
    assert list(agents.profiles) == ["main"]
    assert agents.profiles["main"] == AgentProfile("main")
    assert agents.bindings == ()


def test_agents_and_bindings(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        ROUTES
        + """
[agent]
max_iterations = 30
tool_timeout = 10

[agents.scout]
description = "  Finds sources  "
model = "cheap"
workspace = "teams/scout"
tools = ["read_file", "list_dir"]
team = "research"
max_iterations = 5
tool_timeout = 2          # an int where a float is expected is fine

[agents.main]
team = "research"

[[bindings]]
agent = "scout"
channel = "telegram"
account = "alice"

[[bindings]]
agent = "main"
conversation = "c-*"
""",
    )
    profiles = config.agents.profiles
    assert list(profiles) == ["main", "scout"], "main stays first"
    scout = profiles["scout"]
    assert scout == AgentProfile(
        name="scout",
        description="Finds sources",
        model="cheap",
        workspace="teams/scout",
        tools=("read_file", "list_dir"),
        team="research",
        limits=(("max_iterations", 5), ("tool_timeout", 2.0)),
    )
    limits = scout.agent_config(config.agent)
    assert limits == AgentConfig(max_iterations=5, tool_timeout=2.0)
    assert isinstance(limits.tool_timeout, float)
    assert profiles["main"].team == "research"
    assert profiles["main"].agent_config(config.agent) is config.agent
    assert config.agents.bindings == (
        Binding("scout", channel="telegram", account="alice"),
        Binding("main", conversation="c-*"),
    )


def test_every_override_is_an_agent_setting() -> None:
    agent_keys = {f.name for f in dataclasses.fields(AgentConfig)}
    overrides = [f.name for f in dataclasses.fields(AgentSettings) if f.default is None]
    assert set(overrides) <= agent_keys
    assert {"max_iterations", "tool_timeout"} <= set(overrides)


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load(tmp_path, ROUTING_EXAMPLE + AGENTS_EXAMPLE)
    assert list(config.agents.profiles) == ["main", "scout", "ops"]
    assert AGENTS_EXAMPLE in render_config_docs()


def test_blackboard_tools_may_be_listed_with_a_team(tmp_path: Path) -> None:
    text = '[agents.a]\nteam = "t"\ntools = ["read_file", "blackboard_read"]\n'
    assert load(tmp_path, text).agents.profiles["a"].tools == ("read_file", "blackboard_read")


def test_agent_model_may_be_the_model_section_or_the_tier_alias(tmp_path: Path) -> None:
    text = (
        ROUTES
        + '[model]\nname = "openai:gpt-4o"\n[tiers]\nmid = "cheap"\n'
        + '[agents.a]\nmodel = "model"\n[agents.b]\nmodel = "auto"\n[agents.c]\nmodel = "mini"\n'
    )
    assert [p.model for p in load(tmp_path, text).agents.profiles.values()] == [
        "",
        "model",
        "auto",
        "mini",
    ]


@pytest.mark.parametrize(
    ("text", "key", "problem", "fix"),
    [
        ('agents = "x"\n', "agents", "must be a table", "[agents.NAME]"),
        ("[agents]\nscout = 1\n", "agents.scout", "must be a table", "[agents.NAME]"),
        ("[agents.scout]\nmodle = 'x'\n", "agents.scout.modle", "unknown key", "`model`"),
        ("[agents.scout]\ntools = 'read_file'\n", "agents.scout.tools", "expected an array", ""),
        ("[agents.scout]\nmax_iterations = 0\n", "agents.scout.max_iterations", "not positive", ""),
        ("[agents.scout]\ntool_timeout = -1\n", "agents.scout.tool_timeout", "not positive", ""),
        ('[agents."my agent"]\n', "agents.my agent", "not a valid agent name", "letters"),
        ("[agents.-x]\n", "agents.-x", "not a valid agent name", "letters"),
        ("[agents.Main]\n", "agents.Main", "only in case", "its own name"),
        ("[agents.a]\n[agents.A]\n", "agents.A", "only in case", "its own name"),
        ('[agents.a]\ndescription = "one\\ntwo"\n', "agents.a.description", "one line", ""),
        (f"[agents.a]\ndescription = '{'x' * 201}'\n", "agents.a.description", "201", "200"),
        ('[agents.a]\nteam = "the team"\n', "agents.a.team", "not a valid team name", ""),
        (
            '[agents.a]\ntools = ["read_file", "read_file"]\n',
            "agents.a.tools[1]",
            "listed twice",
            "",
        ),
        ('[agents.a]\ntools = ["read_fil"]\n', "agents.a.tools[0]", "unknown tool", "read_file"),
        ('[agents.a]\ntools = ["web"]\n', "agents.a.tools[0]", "unknown tool 'web'", "exec"),
        (
            '[agents.a]\ntools = ["blackboard_write"]\n',
            "agents.a.tools[0]",
            "no team",
            'team = "NAME"',
        ),
        (
            '[agents.a]\nmodel = "cheap"\n',
            "agents.a.model",
            "no [aliases.NAME] or [deployments.NAME]",
            "remove model",
        ),
        (
            ROUTES + '[agents.a]\nmodel = "chep"\n',
            "agents.a.model",
            "no alias or deployment named 'chep'",
            "did you mean 'cheap'",
        ),
        ('bindings = "x"\n', "bindings", "must be an array of tables", "[[bindings]]"),
        ("[bindings]\nagent = 'main'\n", "bindings", "must be an array of tables", ""),
        ("[[bindings]]\nchannel = 'web'\n", "bindings[0].agent", "is missing", ""),
        ("[[bindings]]\nagent = 'main'\nchanel = 'web'\n", "bindings[0].chanel", "unknown", ""),
        (
            "[agents.scout]\n[[bindings]]\nagent = 'scuot'\n",
            "bindings[0].agent",
            "no agent named 'scuot'; known: main, scout",
            "did you mean 'scout'",
        ),
        (
            "[[bindings]]\nagent = 'main'\n[[bindings]]\nagent = 'main'\nchannel = 'web'\n",
            "bindings[1]",
            "can never match: bindings[0]",
            "to the end",
        ),
    ],
)
def test_mistakes(tmp_path: Path, text: str, key: str, problem: str, fix: str) -> None:
    err = error_for(tmp_path, text)
    assert err.key == key
    assert problem in err.problem
    assert fix in (err.fix or "")


def test_unknown_top_level_section_still_lists_agents(tmp_path: Path) -> None:
    err = error_for(tmp_path, "[agentz.scout]\n")
    assert err.fix is not None
    assert "[agents], [bindings]" in err.fix
