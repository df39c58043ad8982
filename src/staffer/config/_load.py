"""Reading config.toml into a typed `Config`, with errors a user can act on.

Every problem becomes a `ConfigError` naming the key, what is wrong and how to fix it:
TOML syntax (with line and column), unknown keys (with a "did you mean"), wrong types and
values out of range. A missing file means every default.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

from staffer.config._docs import (
    EXAMPLES,
    Setting,
    iter_sections,
    iter_settings,
    settings_of,
    toml_value,
)
from staffer.config._model import (
    BUSY_MODES,
    AliasSettings,
    Config,
    DeploymentSettings,
    RouterSettings,
)
from staffer.errors import ConfigError
from staffer.router._types import (
    SLO,
    AliasConfig,
    BreakerConfig,
    Capability,
    DeploymentConfig,
    Prices,
    RouterConfig,
    Strategy,
    Timeouts,
)

_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_ROUTING = ("router", "deployments", "aliases", "splits", "tiers")
_TABLES = (*_ROUTING, "agents", "bindings")  # read by their own modules


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
        if name in _TABLES:
            continue
        if name not in sections:
            sections.update(dict.fromkeys(_TABLES, dict))
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
    from staffer.config._agent_tables import read_agents  # imports us
    from staffer.config._router_tables import read_traffic, with_split_aliases  # imports us

    router, traffic = read_traffic(data, _router_config(with_split_aliases(data), where), where)
    agents = read_agents(data, where)
    return Config(**built, router=router, traffic=traffic, agents=agents)  # type: ignore[arg-type]


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
    if section.startswith(("model", "deployments.")) and key in ("api_key", "key", "token"):
        fix = 'keys never go in this file: export the key and set api_key_env = "VAR_NAME"'
    elif section.startswith("deployments.") and key.startswith("price") and not close:
        fix = (
            "write prices as price_input, price_output and price_cached_input, in USD per 1M tokens"
        )
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
    if expected is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
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
        return EXAMPLES[setting.type]
    return toml_value(setting.default)


def check_config(config: Config) -> None:
    """Check values that have the right type but cannot work, e.g. port 0 or a bad model name.

    `load_config` calls this; call it again after overriding values (e.g. from CLI flags).
    """
    g, m, a = config.gateway, config.model, config.agent
    _check_runs(config)
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
    if not g.auth and not is_loopback(g.host):
        _bad(
            "gateway.auth",
            f"auth is off while the gateway binds {g.host}, which other machines can reach",
            'set auth = true, or bind host = "127.0.0.1"',
        )
    routes = {**config.router.deployments, **config.router.aliases}
    if m.name and m.name not in routes:
        if routes and ":" not in m.name:
            fix = f'use one of {", ".join(routes)}, or a "provider:model" name'
            _bad("model.name", f"{m.name!r} is neither an alias nor a deployment", fix)
        # The models package owns provider names; it raises ConfigError(key="model.name").
        from staffer.models import parse_model_name

        parse_model_name(m.name)
    if a.busy not in BUSY_MODES:
        _bad("agent.busy", f"unknown mode {a.busy!r}", f"use one of {', '.join(BUSY_MODES)}")
    _check_compaction(config)
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
    from staffer.config._agent_tables import check_agents  # imports us

    check_agents(config)


def _check_compaction(config: Config) -> None:
    a = config.agent
    if not 0 < a.compact_at <= 1:
        _bad(
            "agent.compact_at",
            f"{a.compact_at} is not a share of the context window",
            "use a fraction above 0 and at most 1, e.g. 0.8 to compact at 80 %",
        )
    routes = [*config.router.deployments, *config.router.aliases]
    if ":" in config.model.name:
        routes.append("model")  # a provider:model [model] joins the router as "model"
    name = a.compaction_model
    if name and config.router.deployments and name not in routes:
        _bad(
            "agent.compaction_model",
            f"{name!r} is neither an alias nor a deployment",
            f"use one of {', '.join(routes)}, or leave it empty for the agent's own model",
        )


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bad(key: str, problem: str, fix: str) -> NoReturn:
    raise ConfigError(problem, key=key, fix=fix)


# --- routing: [router], [deployments.NAME], [aliases.NAME] -> RouterConfig -----------------

_S = TypeVar("_S")
_NON_NEGATIVE = ("max_retries", "weight", "retry_backoff", "retry_max_wait", "breaker_cooldown")


def _table(value: object, key: str, where: str, fix: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"must be a table{where}, got {_describe(value)}", key=key, fix=fix)
    return value


def _read(section: str, cls: type[_S], table: dict[str, Any], where: str) -> _S:
    by_key = {s.key: s for s in settings_of(section, cls)}
    kwargs: dict[str, object] = {}
    for key, item in table.items():
        setting = by_key.get(key)
        if setting is None:
            raise _unknown_key(f"{section}.{key}", where, {}, list(by_key.values()))
        kwargs[key] = _coerce(setting, item, where)
    return cls(**kwargs)


def _router_config(data: dict[str, Any], where: str) -> RouterConfig:
    tables: dict[str, dict[str, Any]] = {}
    for section in ("deployments", "aliases"):
        fix = f"write each as a [{section}.NAME] table, e.g. [{section}.fast]"
        tables[section] = _table(data.get(section, {}), section, where, fix)
        for name, table in tables[section].items():
            _table(table, f"{section}.{name}", where, fix)
    deployments = {
        name: _deployment(name, _read(f"deployments.{name}", DeploymentSettings, table, where))
        for name, table in tables["deployments"].items()
    }
    # A "provider:model" in [model] joins the deployments as "model" (gateway_router_config).
    known = [*deployments, *(["model"] if ":" in str(data.get("model", {}).get("name")) else [])]
    aliases = {
        name: _alias(name, _read(f"aliases.{name}", AliasSettings, table, where), known)
        for name, table in tables["aliases"].items()
    }
    fix = "write the settings under a [router] header"
    router_table = _table(data.get("router", {}), "router", where, fix)
    router = _read("router", RouterSettings, router_table, where)
    default = router.default_alias or None
    if default is not None and default not in aliases and default not in known:
        names = ", ".join([*aliases, *known]) or "none (add [aliases.NAME] tables)"
        _bad("router.default_alias", f"no alias or deployment named {default!r}", f"use {names}")
    for key in ("slo_ttft", "slo_tpot", "slo_total"):
        value = getattr(router, key)
        if value is not None and value <= 0:
            _bad(f"router.{key}", f"{value} is not positive", "use seconds above 0, or remove it")
    return RouterConfig(
        deployments, aliases, default, SLO(router.slo_ttft, router.slo_tpot, router.slo_total)
    )


def _deployment(name: str, d: DeploymentSettings) -> DeploymentConfig:
    from staffer.models._build import PROVIDERS, parse_model_name

    key = f"deployments.{name}"
    if not d.provider.strip():
        _bad(f"{key}.provider", "is missing", f'add provider = "…", one of {", ".join(PROVIDERS)}')
    if not d.model.strip():
        _bad(f"{key}.model", "is missing", 'add the model id, e.g. model = "gpt-4o-mini"')
    try:
        provider, model = parse_model_name(f"{d.provider}:{d.model}")
    except ConfigError as exc:
        _bad(
            f"{key}.provider",
            exc.problem,
            f"use one of {', '.join(PROVIDERS)}; any other OpenAI-compatible server is "
            f'provider = "openai" with base_url',
        )
    if d.api_key_env and not _ENV_NAME.match(d.api_key_env):
        _bad(
            f"{key}.api_key_env",
            "is not an environment variable name (is it the key itself?)",
            'export the key in a variable and put its name here, e.g. "OPENAI_API_KEY"',
        )
    if d.base_url and not d.base_url.startswith(("http://", "https://")):
        _bad(f"{key}.base_url", f"{d.base_url!r} is not an http(s) URL", "write the full URL")
    for i, cap in enumerate(d.capabilities):
        if cap not in ("tools", "vision", "json"):
            _bad(
                f"{key}.capabilities[{i}]",
                f"unknown capability {cap!r}",
                'use "tools", "vision" or "json"',
            )
    for f in dataclasses.fields(d):
        value = getattr(d, f.name)
        if type(value) not in (int, float):
            continue
        if value < 0 or (value == 0 and f.name not in _NON_NEGATIVE and "price" not in f.name):
            _bad(f"{key}.{f.name}", f"{value} is too small", "use a number above 0")
    if d.breaker_failure_rate > 1:
        _bad(f"{key}.breaker_failure_rate", "is above 1", "use a fraction, e.g. 0.5 for 50 %")
    return DeploymentConfig(
        name=name,
        provider=provider,
        model=model,
        base_url=d.base_url.strip(),
        api_key_env=d.api_key_env.strip(),
        prices=Prices(d.price_input, d.price_output, d.price_cached_input),
        context_window=d.context_window,
        capabilities=frozenset(cast("tuple[Capability, ...]", d.capabilities)),
        max_retries=d.max_retries,
        weight=d.weight,
        retry_backoff=d.retry_backoff,
        retry_max_wait=d.retry_max_wait,
        timeouts=Timeouts(d.timeout_connect, d.timeout_ttft, d.timeout_idle, d.timeout_total),
        breaker=BreakerConfig(
            *(d.breaker_failures, d.breaker_failure_rate, d.breaker_window),
            *(d.breaker_min_requests, d.breaker_cooldown),
        ),
    )


def _alias(name: str, a: AliasSettings, deployments: list[str]) -> AliasConfig:
    import difflib

    key = f"aliases.{name}"
    if name in deployments:
        _bad(key, "has the same name as a deployment", "rename the alias or the deployment")
    if not a.deployments:
        _bad(
            f"{key}.deployments", "is missing or empty", 'list deployments, e.g. ["mini", "local"]'
        )
    for i, member in enumerate(a.deployments):
        if member not in deployments:
            close = difflib.get_close_matches(member, deployments, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            _bad(
                f"{key}.deployments[{i}]",
                f"no deployment named {member!r}; known: {', '.join(deployments) or 'none'}",
                f"{hint}add a [deployments.{member}] table or correct the name",
            )
    strategies = typing.get_args(Strategy)
    if a.strategy not in strategies:
        _bad(
            f"{key}.strategy",
            f"unknown strategy {a.strategy!r}",
            f"use one of {', '.join(strategies)}",
        )
    return AliasConfig(name, a.deployments, cast(Strategy, a.strategy))


def _check_runs(config: Config) -> None:
    r, url = config.runs, config.store.url
    if url and not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        _bad(
            "store.url",
            f"{url.split('://')[0]!r} is not a database this Staffer can use",
            "use postgresql://USER:PASSWORD@HOST:5432/DB, sqlite:////absolute/path.db, "
            "or leave it empty for the SQLite file in the home folder",
        )
    if r.heartbeat_every <= 0:
        _bad("runs.heartbeat_every", "must be more than 0 seconds", "use e.g. 2")
    if r.lease_seconds < 2 * r.heartbeat_every:
        _bad(
            "runs.lease_seconds",
            f"{r.lease_seconds:g} s is less than two heartbeats ({r.heartbeat_every:g} s each): "
            "runs would be taken over from live workers",
            f"use at least {2 * r.heartbeat_every:g}, e.g. {max(15, 3 * r.heartbeat_every):g}",
        )
    if r.max_concurrent < 1:
        _bad("runs.max_concurrent", "must be at least 1", "use e.g. 64")
    if r.max_attempts < 1:
        _bad("runs.max_attempts", "must be at least 1", "use e.g. 5")
    for key in ("delegate_max_depth", "delegate_max_parallel"):
        if getattr(r, key) < 1:
            _bad(f"runs.{key}", "must be at least 1", "use e.g. 2")
    budget = config.agent.budget_usd_per_day
    if budget is not None and budget <= 0:
        _bad(
            "agent.budget_usd_per_day",
            f"{budget:g} is not a budget",
            "use an amount in USD above 0, e.g. 5.0, or remove the line for no limit",
        )
