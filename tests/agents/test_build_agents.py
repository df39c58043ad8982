"""build_agents: one Agent per configured agent, each with its folder, tools, limits and
model; the models are views of one router, asking for the agent's alias."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from staffer.agents import RoutedModel, agent_workspace, build_agents, routed_models, tool_names
from staffer.config import (
    WORKSPACE_FILES,
    AgentConfig,
    AgentProfile,
    Config,
    Home,
    init_home,
    load_config,
)
from staffer.errors import ConfigError
from staffer.models import Message, ModelRequest
from staffer.router import Router, gateway_router_config
from staffer.store import SQLiteStore, Store
from staffer.testing.model_server import ScriptedModelServer
from staffer.tools import BlackboardWriteTool, ToolContext

ALL_BUILTIN = ["read_file", "write_file", "edit_file", "list_dir", "exec"]


def scenario(text: str) -> dict[str, object]:
    return {"scripts": [{"match": "", "steps": [{"text": text}]}]}


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedModelServer, ScriptedModelServer]]:
    with (
        ScriptedModelServer(scenario("from big")) as big,
        ScriptedModelServer(scenario("from small")) as small,
    ):
        yield big, small


@pytest.fixture
def home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home")
    init_home(home)
    return home


@pytest.fixture
async def store(home: Home) -> AsyncIterator[Store]:
    async with SQLiteStore(home.db_file) as opened:
        yield opened


def configure(home: Home, text: str) -> Config:
    home.config_file.write_text(text, encoding="utf-8")
    return load_config(home.config_file)


def team_config(home: Home, big: ScriptedModelServer, small: ScriptedModelServer) -> Config:
    return configure(
        home,
        f"""
[deployments.big]
provider = "openai"
model = "m-big"
base_url = "{big.openai_base_url}"

[deployments.small]
provider = "openai"
model = "m-small"
base_url = "{small.openai_base_url}"

[aliases.smart]
deployments = ["big"]

[aliases.cheap]
deployments = ["small"]

[router]
default_alias = "smart"

[agent]
max_iterations = 7
tool_timeout = 30

[agents.main]
team = "research"

[agents.scout]
description = "finds sources"
model = "cheap"
tools = ["read_file", "list_dir"]
team = "research"
max_iterations = 3

[agents.ops]
workspace = "elsewhere/ops"
tool_timeout = 5
""",
    )


async def test_each_agent_gets_its_own_everything(
    home: Home, store: Store, servers: tuple[ScriptedModelServer, ScriptedModelServer]
) -> None:
    config = team_config(home, *servers)
    router = Router(gateway_router_config(config), env={})  # type: ignore[arg-type]
    async with router:
        agents = build_agents(config, home, model_for=routed_models(router), store=store)
        assert list(agents) == ["main", "scout", "ops"]
        main, scout, ops = agents.values()
        assert [a.name for a in agents.values()] == ["main", "scout", "ops"]

        # Workspaces: main keeps the home's; the others get theirs, with the templates.
        assert main.workspace == home.workspace
        assert scout.workspace == home.root / "agents" / "scout" / "workspace"
        assert ops.workspace == home.root / "elsewhere" / "ops"
        for agent in (scout, ops):
            assert sorted(p.name for p in agent.workspace.iterdir()) == sorted(WORKSPACE_FILES)
            assert (agent.workspace / "AGENTS.md").read_text() == (
                home.workspace / "AGENTS.md"
            ).read_text()
            assert oct(agent.workspace.stat().st_mode & 0o777) == oct(0o700)

        # Tools: the allow-list, and the blackboard only with a team.
        assert [t.name for t in main.tools.tools()] == [
            *ALL_BUILTIN,
            "blackboard_read",
            "blackboard_write",
        ]
        assert [t.name for t in scout.tools.tools()] == [
            "read_file",
            "list_dir",
            "blackboard_read",
            "blackboard_write",
        ]
        assert [t.name for t in ops.tools.tools()] == ALL_BUILTIN
        # File tools are confined to the agent's own folder.
        read = scout.tools.get("read_file")
        assert getattr(read, "workspace", None) == scout.workspace

        # Limits: [agent] with each agent's overrides.
        assert main.config == config.agent
        assert scout.config == AgentConfig(max_iterations=3, tool_timeout=30.0)
        assert (ops.config.max_iterations, ops.config.tool_timeout) == (7, 5.0)
        assert ops.tools.get("exec").max_timeout == 5.0  # type: ignore[attr-defined]

        # Models: main uses the router's default, scout a view asking for "cheap".
        assert main.model is router
        assert isinstance(scout.model, RoutedModel)
        assert scout.model.name == "router:cheap"
        question = ModelRequest(messages=[Message(role="user", content="hi")])
        assert (await scout.model.complete(question)).text == "from small"
        assert (await main.model.complete(question)).text == "from big"
        big, small = servers
        assert [r.body["model"] for r in small.requests] == ["m-small"]
        assert [r.body["model"] for r in big.requests] == ["m-big"]
        # Closing an agent's model leaves the shared router open.
        await scout.model.aclose()
        assert (await main.model.complete(question)).text == "from big"


async def test_agents_of_a_team_share_the_board(
    home: Home, store: Store, servers: tuple[ScriptedModelServer, ScriptedModelServer]
) -> None:
    config = team_config(home, *servers)
    router = Router(gateway_router_config(config), env={})  # type: ignore[arg-type]
    async with router:
        agents = build_agents(config, home, model_for=routed_models(router), store=store)
    ctx = ToolContext(home.workspace, session_id="s", run_id="r1", call_id="c", idempotency_key="k")
    await agents["scout"].tools.call("blackboard_write", {"key": "k", "value": "v"}, ctx)
    said = await agents["main"].tools.call("blackboard_read", {"key": "k"}, ctx)
    assert said.startswith("k (version 1, written by scout at ")
    write = agents["main"].tools.get("blackboard_write")
    assert isinstance(write, BlackboardWriteTool)
    assert (write.team, write.agent) == ("research", "main")


async def test_the_default_config_builds_main_alone(home: Home, store: Store) -> None:
    config = Config()
    model = object()
    seen: list[str] = []

    def model_for(route: str) -> object:
        seen.append(route)
        return model

    agents = build_agents(config, home, model_for=model_for, store=store)  # type: ignore[arg-type]
    assert list(agents) == ["main"]
    assert seen == [""]
    assert agents["main"].model is model
    assert agents["main"].workspace == home.workspace
    assert [t.name for t in agents["main"].tools.tools()] == ALL_BUILTIN


async def test_existing_workspace_files_are_kept(home: Home, store: Store) -> None:
    config = configure(home, "[agents.scout]\n")
    folder = home.root / "agents" / "scout" / "workspace"
    folder.mkdir(parents=True)
    (folder / "SOUL.md").write_text("I am the scout.")
    build_agents(config, home, model_for=lambda _: object(), store=store)  # type: ignore[arg-type,return-value]
    assert (folder / "SOUL.md").read_text() == "I am the scout."
    assert (folder / "MEMORY.md").exists()


async def test_a_workspace_that_cannot_be_made_names_its_key(
    home: Home, store: Store, tmp_path: Path
) -> None:
    locked = tmp_path / "a-file"
    locked.write_text("not a folder")
    config = configure(home, f'[agents.ops]\nworkspace = "{locked / "ws"}"\n')
    with pytest.raises(ConfigError) as info:
        build_agents(config, home, model_for=lambda _: object(), store=store)  # type: ignore[arg-type,return-value]
    assert info.value.key == "agents.ops.workspace"


def test_workspace_paths(tmp_path: Path) -> None:
    home = Home(tmp_path)
    assert agent_workspace(home, AgentProfile("main")) == tmp_path / "workspace"
    assert agent_workspace(home, AgentProfile("a")) == tmp_path / "agents" / "a" / "workspace"
    assert agent_workspace(home, AgentProfile("a", workspace="x/y")) == tmp_path / "x" / "y"
    assert agent_workspace(home, AgentProfile("a", workspace="/abs")) == Path("/abs")
    assert agent_workspace(home, AgentProfile("main", workspace="w")) == tmp_path / "w"
    assert agent_workspace(home, AgentProfile("a", workspace="~/w")) == Path("~/w").expanduser()


@pytest.mark.parametrize(
    ("tools", "team", "names"),
    [
        ((), "", ALL_BUILTIN),
        ((), "t", [*ALL_BUILTIN, "blackboard_read", "blackboard_write"]),
        (("exec",), "", ["exec"]),
        (("exec",), "t", ["exec", "blackboard_read", "blackboard_write"]),
        (("exec", "blackboard_read"), "t", ["exec", "blackboard_read"]),
        (("blackboard_write",), "t", ["blackboard_write"]),
    ],
)
def test_tool_names(tools: tuple[str, ...], team: str, names: list[str]) -> None:
    assert tool_names(AgentProfile("a", tools=tools, team=team)) == names


def test_routed_models_share_one_view_per_route() -> None:
    shared = object()
    model_for = routed_models(shared)  # type: ignore[arg-type]
    assert model_for("") is shared
    assert model_for("cheap") is model_for("cheap")
    assert model_for("cheap") is not model_for("smart")
