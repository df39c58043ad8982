"""The configuration of traffic shaping around the router: splits, tiers and the cache.

A *split* takes over one alias and decides per request which of two deployments
(``stable`` and ``candidate``) goes first: a canary, a blue–green pair or a
champion–challenger test. *Tiers* map a request to an economy, mid or premium alias by
rules. The *cache* keeps complete answers. These are plain data, read from
``[splits.NAME]``, ``[tiers]`` and ``[router]`` by the config package; the behaviour is in
`_splits`, `_shadow`, `_tiering` and `_stack`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SplitKind = Literal["canary", "blue_green", "champion_challenger"]
Arm = Literal["stable", "candidate"]
Tier = Literal["economy", "mid", "premium"]

#: the tiers from cheapest to dearest
TIERS: tuple[Tier, ...] = ("economy", "mid", "premium")


@dataclass(frozen=True, slots=True)
class SplitConfig:
    """One traffic split over an alias: ``[splits.NAME]`` in config.toml.

    canary               `percent` of requests try `candidate` first (then `stable`); rolled
                         back to 0 % when the candidate's error rate or p95 latency breaks
                         a threshold after `min_requests` outcomes
    blue_green           every request goes to the `active` arm; flipped over the API
    champion_challenger  `percent` to the challenger (`candidate`), or with `shadow` the
                         champion answers and the challenger gets a copy whose answer is
                         only logged for the side-by-side report
    """

    name: str
    alias: str
    kind: SplitKind
    stable: str
    candidate: str
    percent: float = 0.0
    shadow: bool = False
    active: Arm = "stable"
    max_error_rate: float | None = None
    max_p95_latency: float | None = None
    min_requests: int = 20
    window: int = 100
    shadow_concurrency: int = 4


@dataclass(frozen=True, slots=True)
class TierRule:
    """``[[tiers.rules]]``: every condition that is set must hold; the first matching rule wins."""

    tier: Tier
    min_chars: int | None = None
    max_chars: int | None = None
    tools: bool | None = None
    keywords: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TiersConfig:
    """``[tiers]``: the alias of each tier, the rules, and when spend moves a tier down."""

    aliases: dict[Tier, str] = field(default_factory=dict)
    rules: tuple[TierRule, ...] = ()
    default: Tier = "mid"
    alias: str = "auto"  # a request naming this (or no model) is classified
    spend_limit_usd: float | None = None
    spend_threshold: float = 0.8


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """The exact-match response cache; `ttl` 0 turns it off."""

    ttl: float = 0.0
    max_entries: int = 1000


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    splits: dict[str, SplitConfig] = field(default_factory=dict)
    tiers: TiersConfig | None = None
    cache: CacheConfig = field(default_factory=CacheConfig)
