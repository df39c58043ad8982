"""The home folder: where Staffer keeps its config, token, database and workspace.

    $STAFFER_HOME (default ~/.staffer)     mode 0700
    ├── config.toml     commented settings, all defaults until edited
    ├── token           the access token, mode 0600
    ├── staffer.db      the store
    └── workspace/      AGENTS.md, SOUL.md, USER.md, TOOLS.md, MEMORY.md, HEARTBEAT.md

`init_home` creates what is missing and never touches a file that already exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from staffer.errors import ConfigError

#: The files `init_home` puts into a new workspace, in the order the agent reads them.
WORKSPACE_FILES = ("AGENTS.md", "SOUL.md", "USER.md", "TOOLS.md", "MEMORY.md", "HEARTBEAT.md")


@dataclass(frozen=True, slots=True)
class Home:
    """A Staffer home folder. Only paths: nothing is read or created until asked."""

    root: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Home:
        """The home named by ``STAFFER_HOME`` in `env`, else ``~/.staffer``; ``~`` is expanded."""
        raw = env.get("STAFFER_HOME") or "~/.staffer"
        return cls(Path(raw).expanduser().absolute())

    @property
    def config_file(self) -> Path:
        """The settings file, ``config.toml``."""
        return self.root / "config.toml"

    @property
    def token_file(self) -> Path:
        """The file holding the gateway's access token."""
        return self.root / "token"

    @property
    def db_file(self) -> Path:
        """The SQLite store."""
        return self.root / "staffer.db"

    @property
    def workspace(self) -> Path:
        """The agent's folder: its Markdown files and whatever its tools write."""
        return self.root / "workspace"

    def read_token(self) -> str:
        """Return the access token, or raise `ConfigError` if there is none."""
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            token = ""
        except OSError as exc:
            raise ConfigError(
                f"cannot read the access token at {self.token_file}: {exc.strerror}",
                key="token",
                fix=f"make the file readable by this user (chmod 600 {self.token_file})",
            ) from exc
        if not token:
            raise ConfigError(
                f"no access token at {self.token_file}",
                key="token",
                fix="run `staffer init`",
            )
        return token


def workspace_template(name: str) -> str:
    """The text `init_home` writes into a new workspace's `name` (one of `WORKSPACE_FILES`)."""
    from importlib import resources  # here, not at the top: keeps `staffer --help` fast

    return resources.files("staffer.config").joinpath("templates", name).read_text("utf-8")


def _create_file(path: Path, text: str, mode: int) -> bool:
    """Create `path` with `text` unless it exists; return whether it was created.

    O_EXCL makes "does it exist" and "create it" one step, so a concurrent `staffer init` or
    a file the user just wrote is never overwritten, and the mode is right from the start.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def _create_dir(path: Path, mode: int) -> bool:
    try:
        path.mkdir(mode=mode, parents=True)
    except FileExistsError:
        return False
    path.chmod(mode)  # mkdir's mode is filtered by the umask
    return True


def _init_workspace(workspace: Path) -> list[Path]:
    created: list[Path] = []
    if _create_dir(workspace, 0o700):
        created.append(workspace)
    for name in WORKSPACE_FILES:
        path = workspace / name
        if _create_file(path, workspace_template(name), 0o644):
            created.append(path)
    return created


def init_workspace(workspace: Path, *, key: str = "workspace") -> list[Path]:
    """Create `workspace` (and its parents) with the template files that are missing, as
    `init_home` does for the home's own; return the paths created. Never overwrites.

    Raises `ConfigError` naming `key`, the setting that chose the folder, if it cannot."""
    try:
        return _init_workspace(workspace)
    except OSError as exc:
        raise ConfigError(
            f"cannot set up the workspace {workspace}: {exc.strerror or exc}",
            key=key,
            fix="choose a folder you can write to, or fix its permissions",
        ) from exc


def init_home(home: Home) -> list[Path]:
    """Create whatever is missing in `home` and return the paths created, in order.

    Safe to run any number of times: existing files, including edited templates and the
    token, are left exactly as they are. The root is mode 0700 and the token 0600.
    """
    import secrets

    from staffer.config._docs import render_config_template

    try:
        created: list[Path] = []
        if _create_dir(home.root, 0o700):
            created.append(home.root)
        if _create_file(home.config_file, render_config_template(), 0o600):
            created.append(home.config_file)
        if _create_file(home.token_file, secrets.token_urlsafe(32) + "\n", 0o600):
            created.append(home.token_file)
        created += _init_workspace(home.workspace)
    except OSError as exc:
        raise ConfigError(
            f"cannot set up the Staffer home: {exc}",
            key="STAFFER_HOME",
            fix="point STAFFER_HOME at a folder you can write to, or fix its permissions",
        ) from exc
    return created
