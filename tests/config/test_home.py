"""The home folder: paths, init_home (files, modes, idempotence) and the token."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from staffer.config import WORKSPACE_FILES, Home, init_home, load_config
from staffer.config._home import workspace_template
from staffer.errors import ConfigError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_from_env() -> None:
    assert Home.from_env({"STAFFER_HOME": "/srv/staffer"}).root == Path("/srv/staffer")
    assert Home.from_env({}).root == Path.home() / ".staffer"
    assert Home.from_env({"STAFFER_HOME": "~/x"}).root == Path.home() / "x"


def test_paths() -> None:
    home = Home(Path("/h"))
    assert home.config_file == Path("/h/config.toml")
    assert home.token_file == Path("/h/token")
    assert home.db_file == Path("/h/staffer.db")
    assert home.workspace == Path("/h/workspace")


def test_init_home_creates_everything(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    created = init_home(home)
    expected = [home.root, home.config_file, home.token_file, home.workspace]
    expected += [home.workspace / name for name in WORKSPACE_FILES]
    assert created == expected
    assert mode(home.root) == 0o700
    assert mode(home.token_file) == 0o600
    assert mode(home.config_file) == 0o600
    token = home.read_token()
    assert len(token) >= 40
    assert home.token_file.read_text() == token + "\n"
    assert load_config(home.config_file).model.name == ""
    for name in WORKSPACE_FILES:
        assert (home.workspace / name).read_text() == workspace_template(name)


def test_init_home_is_idempotent_and_keeps_user_files(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    init_home(home)
    token = home.read_token()
    (home.workspace / "SOUL.md").write_text("# Me\nTerse.\n")
    home.config_file.write_text('[model]\nname = "openai:x"\n')
    (home.workspace / "USER.md").unlink()

    assert init_home(home) == [home.workspace / "USER.md"]
    assert init_home(home) == []
    assert home.read_token() == token
    assert (home.workspace / "SOUL.md").read_text() == "# Me\nTerse.\n"
    assert load_config(home.config_file).model.name == "openai:x"


def test_workspace_templates_are_small() -> None:
    # They go into the model's context on every turn.
    sizes = {name: len(workspace_template(name)) for name in WORKSPACE_FILES}
    assert sum(sizes.values()) < 2000, sizes
    assert all(size <= 400 for size in sizes.values()), sizes


def test_read_token_without_token(tmp_path: Path) -> None:
    home = Home(tmp_path)
    with pytest.raises(ConfigError) as info:
        home.read_token()
    assert "no access token at" in info.value.problem
    assert str(home.token_file) in info.value.problem
    assert info.value.fix == "run `staffer init`"


def test_init_home_in_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as info:
        init_home(Home(blocker / "home"))
    assert info.value.key == "STAFFER_HOME"
