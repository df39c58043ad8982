"""Bindings: the first match wins, empty fields match anything, globs work, main is the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from staffer.agents import resolve_binding
from staffer.config import Config, load_config

BINDINGS = """
[agents.ops]
[agents.scout]
[agents.support]

[[bindings]]
agent = "ops"
channel = "telegram"
account = "alice"

[[bindings]]
agent = "scout"
channel = "api"
conversation = "research-*"

[[bindings]]
agent = "support"
channel = "tele*"

[[bindings]]
agent = "scout"
account = "bob"
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(BINDINGS, encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize(
    ("channel", "account", "conversation", "agent"),
    [
        ("telegram", "alice", None, "ops"),  # the first match wins over the glob below
        ("telegram", "carol", "c1", "support"),  # channel glob
        ("telegramx", None, None, "support"),
        ("api", None, "research-42", "scout"),
        ("api", None, "research", "main"),  # the glob needs its dash
        ("api", None, None, "main"),  # a set field needs a value
        ("web", "bob", None, "scout"),  # an empty channel matches any channel
        ("web", "Bob", None, "main"),  # names are case-sensitive
        ("web", None, None, "main"),
    ],
)
def test_resolve_binding(
    config: Config, channel: str, account: str | None, conversation: str | None, agent: str
) -> None:
    assert (
        resolve_binding(config, channel=channel, account=account, conversation=conversation)
        == agent
    )


def test_without_bindings_everything_goes_to_main() -> None:
    assert resolve_binding(Config(), channel="web") == "main"
    assert resolve_binding(Config(), channel="telegram", account="a", conversation="b") == "main"


def test_a_catch_all_binding_takes_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[agents.front]\n[[bindings]]\nagent = "front"\n', encoding="utf-8")
    assert resolve_binding(load_config(path), channel="web") == "front"
