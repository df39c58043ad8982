"""Reading config.toml into a typed `Config`, with errors a user can act on.

Every problem becomes a `ConfigError` naming the key, what is wrong and how to fix it:
TOML syntax (with line and column), unknown keys (with a "did you mean"), wrong types and
values out of range. A missing file means every default.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, NoReturn

from staffer.config._docs import Setting, iter_sections, iter_settings, toml_value
from staffer.config._model import Config
from staffer.errors import ConfigError

_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_EXAMPLES = {str: '"text"', int: "8765", float: "60.0", bool: "true"}


def load_config(path: Path) -> Config:
    """Read and validate the config file at `path`; a missing file gives the defaults."""
    import tomllib  # imported here, like difflib and ipaddress below, for a fast CLI start

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config file: {exc.strerror}",
            key=str(path),
            fix="make it a readable file, or remove it to use the defaults",
        ) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"the file is not UTF-8 text (byte {exc.start})",
            key=str(path),
            fix="save the file as UTF-8",
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path, exc) from exc
    config = config_from_dict(data, source=path)
    check_config(config)
    return config


def _syntax_error(path: Path, exc: ValueError) -> ConfigError:
    message = str(exc)
    match = _TOML_POSITION.match(message)
    if match:
        where = f"line {match['line']}, column {match['col']}"
        message = f"invalid TOML at {where}: {match['msg']}"
    elif message.endswith(" (at end of document)"):
        message = f"invalid TOML at the end of the file: {message.rpartition(' (')[0]}"
    else:
        message = f"invalid TOML: {message}"
    return ConfigError(
        message,
        key=str(path),
        fix='correct the syntax there (strings need "quotes", each table header once); '
        "`staffer config docs` shows every setting",
    )


def config_from_dict(data: dict[str, Any], *, source: Path | None = None) -> Config:
    """Build a `Config` from parsed TOML, rejecting unknown keys and wrong types.

    `source` is only used to say which file an unknown key came from.
    """
    where = f" in {source}" if source else ""
    settings = list(iter_settings())
    sections = dict(iter_sections())
    built: dict[str, object] = {}
    for name, value in data.items():
        if name not in sections:
            raise _unknown_key(name, where, sections, settings, is_table=isinstance(value, dict))
        if not isinstance(value, dict):
            raise ConfigError(
                f"must be a table{where}, got {_describe(value)}",
                key=name,
                fix=f"write the settings under a [{name}] header",
            )
        by_key = {s.key: s for s in settings if s.section == name}
        kwargs: dict[str, object] = {}
        for key, item in value.items():
            setting = by_key.get(key)
            if setting is None:
                raise _unknown_key(f"{name}.{key}", where, sections, settings)
            kwargs[key] = _coerce(setting, item, where)
        built[name] = sections[name](**kwargs)
    return Config(**built)  # type: ignore[arg-type]


def _unknown_key(
    name: str,
    where: str,
    sections: dict[str, type],
    settings: list[Setting],
    *,
    is_table: bool = False,
) -> ConfigError:
    import difflib

    section, _, key = name.rpartition(".")
    if section:
        problem = f"unknown key{where}"
        valid = [s.key for s in settings if s.section == section]
        listing = f"valid keys in [{section}]: {', '.join(valid)}"
    elif is_table:
        problem = f"unknown section{where}"
        valid = list(sections)
        listing = f"valid sections: {', '.join(f'[{s}]' for s in valid)}"
    else:
        # A setting written outside its table, e.g. `port = 80` at the top of the file.
        problem = f"unknown key outside any [section]{where}"
        valid = [s.key for s in settings]
        listing = "every setting belongs under its [section] header"
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not section and not is_table and close:
        close = [s.name for s in settings if s.key == close[0]]
    if section == "model" and key in ("api_key", "key", "token"):
        fix = 'keys never go in this file: export the key and set api_key_env = "VAR_NAME"'
    elif close:
        fix = f"did you mean `{close[0]}`? ({listing})"
    else:
        fix = f"remove it or correct the name ({listing})"
    return ConfigError(problem, key=name, fix=fix)


def _describe(value: object) -> str:
    kind = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}.get(
        type(value), f"a {type(value).__name__}"
    )
    return f"{value!r} ({kind})"


def _coerce(setting: Setting, value: object, where: str) -> object:
    expected = setting.type
    # bool is an int in Python; in a config file `port = true` is a mistake.
    if isinstance(value, bool) and expected is not bool:
        ok = False
    elif expected is float and isinstance(value, int):
        return float(value)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ConfigError(
            f"expected {_article(setting.type_name)}{where}, got {_describe(value)}",
            key=setting.name,
            fix=f"write it as {_article(setting.type_name)}, "
            f"e.g. {setting.key} = {_example(setting)}",
        )
    return value


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _example(setting: Setting) -> str:
    if setting.default in ("", None):
        return _EXAMPLES[setting.type]
    return toml_value(setting.default)


def check_config(config: Config) -> None:
    """Check values that have the right type but cannot work, e.g. port 0 or a bad model name.

    `load_config` calls this; call it again after overriding values (e.g. from CLI flags).
    """
    g, m, a = config.gateway, config.model, config.agent
    if not 1 <= g.port <= 65535:
        _bad("gateway.port", f"{g.port} is not a TCP port", "use a port from 1 to 65535, e.g. 8765")
    if not g.host.strip():
        _bad("gateway.host", "is empty", 'use "127.0.0.1" to serve only this machine')
    if g.max_body_bytes < 1024:
        _bad(
            "gateway.max_body_bytes",
            f"{g.max_body_bytes} is below the minimum of 1024",
            "use at least 1024; the default is 1_048_576 (1 MiB)",
        )
    if not g.auth and not _is_loopback(g.host):
        _bad(
            "gateway.auth",
            f"auth is off while the gateway binds {g.host}, which other machines can reach",
            'set auth = true, or bind host = "127.0.0.1"',
        )
    if m.name:
        # The models package owns provider names; it raises ConfigError(key="model.name").
        from staffer.models import parse_model_name

        parse_model_name(m.name)
    if m.api_key_env and not _ENV_NAME.match(m.api_key_env):
        _bad(
            "model.api_key_env",
            "is not an environment variable name (is it the key itself?)",
            'export the key in a variable and put its name here, e.g. "OPENROUTER_API_KEY"',
        )
    for section, values in (("model", m), ("agent", a)):
        for f in dataclasses.fields(values):
            value = getattr(values, f.name)
            if type(value) in (int, float) and value <= 0:
                _bad(f"{section}.{f.name}", f"{value} is not positive", "use a number above 0")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bad(key: str, problem: str, fix: str) -> NoReturn:
    raise ConfigError(problem, key=key, fix=fix)
