"""Reading ``[splits.NAME]``, ``[tiers]`` with ``[[tiers.rules]]`` and the cache keys of
``[router]`` into a `TrafficConfig`, with the same key-problem-fix errors as the rest."""

from __future__ import annotations

import typing
from dataclasses import replace
from typing import Any, cast

from staffer.config._load import _bad, _describe, _read, _table
from staffer.config._model import RouterSettings, SplitSettings, TierRuleSettings, TierSettings
from staffer.errors import ConfigError
from staffer.router._traffic import (
    TIERS,
    Arm,
    CacheConfig,
    SplitConfig,
    SplitKind,
    Tier,
    TierRule,
    TiersConfig,
    TrafficConfig,
)
from staffer.router._types import AliasConfig, RouterConfig

_KINDS = typing.get_args(SplitKind)


def with_split_aliases(data: dict[str, Any]) -> dict[str, Any]:
    """`data` plus an ``[aliases.NAME]`` for each split over an alias that has none, so the
    alias is checked (and usable as ``default_alias`` or ``model.name``) like any other."""
    splits, aliases = data.get("splits"), data.get("aliases", {})
    known = data.get("deployments", {})
    if not isinstance(splits, dict) or not isinstance(aliases, dict) or not isinstance(known, dict):
        return data
    added = dict(aliases)
    for table in splits.values():
        if not isinstance(table, dict):
            continue
        alias, arms = table.get("alias"), [table.get("stable"), table.get("candidate")]
        if (
            isinstance(alias, str)
            and alias not in added
            and alias not in known
            and all(isinstance(a, str) and a in known for a in arms)
        ):
            added[alias] = {"deployments": arms}
    return {**data, "aliases": added} if len(added) > len(aliases) else data


def read_traffic(
    data: dict[str, Any], router: RouterConfig, where: str
) -> tuple[RouterConfig, TrafficConfig]:
    """The traffic configuration in `data`, and `router` with the aliases splits create."""
    settings = _read("router", RouterSettings, data.get("router", {}), where)
    if settings.cache_ttl < 0:
        _bad("router.cache_ttl", f"{settings.cache_ttl} is negative", "use seconds, 0 for off")
    if settings.cache_max_entries < 1:
        _bad("router.cache_max_entries", "is below 1", "use at least 1, e.g. 1000")
    cache = CacheConfig(settings.cache_ttl, settings.cache_max_entries)
    # A "provider:model" in [model] joins the deployments as "model" (gateway_router_config).
    deployments = [*router.deployments]
    if ":" in str(data.get("model", {}).get("name")):
        deployments.append("model")
    fix = "write each as a [splits.NAME] table, e.g. [splits.rollout]"
    tables = _table(data.get("splits", {}), "splits", where, fix)
    splits: dict[str, SplitConfig] = {}
    aliases = dict(router.aliases)
    taken: dict[str, str] = {}
    for name, table in tables.items():
        key = f"splits.{name}"
        s = _read(key, SplitSettings, _table(table, key, where, fix), where)
        split = _split(name, s, deployments)
        if split.alias in taken:
            _bad(f"{key}.alias", f"{split.alias!r} already has split {taken[split.alias]!r}",
                 "give each alias at most one split")  # fmt: skip
        taken[split.alias] = name
        if split.alias not in aliases:
            aliases[split.alias] = AliasConfig(split.alias, (split.stable, split.candidate))
        splits[name] = split
    router = replace(router, aliases=aliases)
    tiers = None
    if "tiers" in data:
        fix = "write the settings under a [tiers] header"
        tiers = _tiers(dict(_table(data["tiers"], "tiers", where, fix)), router, where)
    return router, TrafficConfig(splits, tiers, cache)


def _split(name: str, s: SplitSettings, deployments: list[str]) -> SplitConfig:
    key = f"splits.{name}"
    if not s.alias.strip():
        _bad(f"{key}.alias", "is missing", 'name the alias the split decides for, e.g. "smart"')
    if s.alias in deployments:
        _bad(f"{key}.alias", "names a deployment", "splits apply to aliases; name an alias")
    if s.kind not in _KINDS:
        _bad(f"{key}.kind", f"unknown kind {s.kind!r}", f"use one of {', '.join(_KINDS)}")
    for arm in ("stable", "candidate"):
        value = getattr(s, arm)
        if value not in deployments:
            known = ", ".join(deployments) or "none"
            problem = f"no deployment named {value!r}; known: {known}"
            _bad(f"{key}.{arm}", problem, "name a [deployments.NAME] table")
    if s.stable == s.candidate:
        _bad(f"{key}.candidate", "is the same as stable", "name two different deployments")
    if not 0 <= s.percent <= 100:
        _bad(f"{key}.percent", f"{s.percent} is not a percentage", "use 0 to 100")
    if s.shadow and s.kind != "champion_challenger":
        _bad(f"{key}.shadow", f"is only for champion_challenger, not {s.kind}", "remove it")
    if s.active not in ("stable", "candidate"):
        _bad(f"{key}.active", f"{s.active!r} is not an arm", 'use "stable" or "candidate"')
    if s.max_error_rate is not None and not 0 <= s.max_error_rate <= 1:
        _bad(f"{key}.max_error_rate", "is not a fraction", "use 0 to 1, e.g. 0.05 for 5 %")
    if s.max_p95_latency is not None and s.max_p95_latency <= 0:
        _bad(f"{key}.max_p95_latency", "is not positive", "use seconds above 0")
    for field in ("min_requests", "window", "shadow_concurrency"):
        if getattr(s, field) < 1:
            _bad(f"{key}.{field}", "is below 1", "use a number of at least 1")
    return SplitConfig(
        name=name,
        alias=s.alias,
        kind=cast(SplitKind, s.kind),
        stable=s.stable,
        candidate=s.candidate,
        percent=s.percent,
        shadow=s.shadow,
        active=cast(Arm, s.active),
        max_error_rate=s.max_error_rate,
        max_p95_latency=s.max_p95_latency,
        min_requests=s.min_requests,
        window=s.window,
        shadow_concurrency=s.shadow_concurrency,
    )


def _tier(value: str, key: str) -> Tier:
    if value not in TIERS:
        _bad(key, f"unknown tier {value!r}", f"use one of {', '.join(TIERS)}")
    return value


def _tiers(table: dict[str, Any], router: RouterConfig, where: str) -> TiersConfig:
    raw_rules = table.pop("rules", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(
            f"must be an array of tables{where}, got {_describe(raw_rules)}",
            key="tiers.rules",
            fix="write each rule under a [[tiers.rules]] header",
        )
    t = _read("tiers", TierSettings, table, where)
    routes = [*router.aliases, *router.deployments]
    aliases: dict[Tier, str] = {}
    for tier in TIERS:
        name = getattr(t, tier)
        if name and routes and name not in routes:
            _bad(f"tiers.{tier}", f"no alias or deployment named {name!r}",
                 f"use one of {', '.join(routes)}")  # fmt: skip
        if name:
            aliases[tier] = name
    if not aliases:
        _bad("tiers", "names no tier alias", 'set economy, mid and premium, e.g. mid = "smart"')
    if t.spend_limit_usd is not None and t.spend_limit_usd <= 0:
        _bad("tiers.spend_limit_usd", "is not positive", "use USD above 0, or remove it")
    if not 0 < t.spend_threshold <= 1:
        _bad("tiers.spend_threshold", "is not a fraction", "use above 0 up to 1, e.g. 0.8")
    rules = []
    for i, raw in enumerate(raw_rules):
        key = f"tiers.rules[{i}]"
        fix = "write each rule under a [[tiers.rules]] header"
        raw = _table(raw, key, where, fix)
        if "metadata" in raw and not isinstance(raw["metadata"], dict):
            fix = 'write it as an inline table, e.g. metadata = { user = "boss" }'
            _bad(f"{key}.metadata", f"expected a table, got {_describe(raw['metadata'])}", fix)
        r = _read(key, TierRuleSettings, raw, where)
        metadata = r.metadata or {}
        for k, v in metadata.items():
            if not isinstance(v, str):
                _bad(f"{key}.metadata.{k}", f"expected a string, got {_describe(v)}",
                     f'quote it, e.g. {k} = "{v}"')  # fmt: skip
        rules.append(
            TierRule(
                tier=_tier(r.tier, f"{key}.tier"),
                min_chars=r.min_chars,
                max_chars=r.max_chars,
                tools=r.tools,
                keywords=r.keywords,
                metadata=tuple(sorted(metadata.items())),
            )
        )
    return TiersConfig(
        aliases=aliases,
        rules=tuple(rules),
        default=_tier(t.default, "tiers.default"),
        alias=t.alias,
        spend_limit_usd=t.spend_limit_usd,
        spend_threshold=t.spend_threshold,
    )
