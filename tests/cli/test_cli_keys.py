"""`staffer keys`: create, list and revoke API keys, and use one with the openai client."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
from tests.conftest import LiveGateway
from typer.testing import CliRunner, Result

from staffer.cli import app
from staffer.config import Home

KEY = re.compile(r"^sk-staffer-[A-Za-z0-9_-]{43}$")


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def run(home: Home, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"STAFFER_HOME": str(home.root)})


def test_create_prints_the_key_once_on_stdout(home: Home) -> None:
    result = run(home, "keys", "create", "--user", "alice", "--name", "laptop")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert KEY.match(key)
    assert "not shown again" in result.stderr

    listed = run(home, "keys", "list")
    assert listed.exit_code == 0
    assert key not in listed.stdout
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "USER", "NAME", "KEY", "CREATED", "STATUS"]
    assert row.split()[1:4] == ["alice", "laptop", f"{key[:15]}…"]
    assert row.endswith("active")
    assert home.db_file.exists()


def test_list_filters_by_user_and_says_when_empty(home: Home) -> None:
    assert "No API keys yet" in run(home, "keys", "list").stdout
    run(home, "keys", "create", "--user", "alice")
    run(home, "keys", "create", "--user", "bob")
    lines = run(home, "keys", "list", "--user", "bob").stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].split()[1] == "bob"


def test_revoke(home: Home) -> None:
    run(home, "keys", "create", "--user", "alice")
    key_id = run(home, "keys", "list").stdout.splitlines()[1].split()[0]
    result = run(home, "keys", "revoke", key_id)
    assert result.exit_code == 0, result.output
    assert f"Revoked key {key_id} (alice" in result.stdout
    assert "revoked" in run(home, "keys", "list").stdout.splitlines()[1]

    missing = run(home, "keys", "revoke", "nope")
    assert missing.exit_code == 2
    assert "no API key with id 'nope'" in missing.stderr
    assert "staffer keys list" in missing.stderr


def test_create_needs_a_user(home: Home) -> None:
    assert run(home, "keys", "create").exit_code == 2
    blank = run(home, "keys", "create", "--user", " ")
    assert blank.exit_code == 2
    assert "--user" in blank.stderr


def test_a_created_key_works_with_the_openai_client(
    live_gateway: Callable[..., LiveGateway],
) -> None:
    gw = live_gateway({"scripts": [{"match": "", "steps": [{"text": "Hi Alice."}]}]})
    key = run(gw.home, "keys", "create", "--user", "alice").stdout.strip()
    api = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    answer = api.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content == "Hi Alice."

    key_id = run(gw.home, "keys", "list").stdout.splitlines()[1].split()[0]
    assert run(gw.home, "keys", "revoke", key_id).exit_code == 0
    gw.restart()  # a fresh key cache; a running gateway notices within its 5 s ttl
    api = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        api.models.list()
