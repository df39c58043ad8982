"""The gateway's model, layer by layer, from configuration.

    ReloadableModel        swapped whole on a config reload
      TieredModel          [tiers]: no model / "auto" → the tier's alias
        CachedModel        [router] cache_ttl > 0: exact-match answers
          ShadowModel      a shadowing [splits.NAME]: copies to the challenger
            Router         deployments, aliases, fallback; splits as strategies

Tiering sits outside the cache so the cache key holds the tier's alias (two
callers with different tiers never share an answer); the cache sits outside the
shadow so a cached answer sends no copy. Each layer is left out when unused.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping

from staffer.config import Config
from staffer.models import Model
from staffer.models._build import build_model
from staffer.router._build import gateway_router_config
from staffer.router._cache import CachedModel, CacheObserver
from staffer.router._reload import Built, ReloadableModel
from staffer.router._router import Router
from staffer.router._shadow import ShadowModel
from staffer.router._splits import Splits
from staffer.router._tiering import SpendDowngrade, TieredModel
from staffer.router._types import RouterObserver


def build_stack(
    config: Config,
    env: Mapping[str, str],
    *,
    splits: Splits,
    observers: Iterable[RouterObserver] = (),
    cache_metrics: CacheObserver | None = None,
    spent: Callable[[], float | None] | None = None,
    rng: random.Random | None = None,
) -> Built | None:
    """One generation of the gateway's model for `config`, or None when no model is set.

    Raises ConfigError for what cannot be built (a bad alias, every key missing).
    `splits` is bound to the new router (its states survive unchanged splits);
    `spent` feeds `SpendDowngrade` when ``tiers.spend_limit_usd`` is set.
    """
    traffic = config.traffic
    router_config = gateway_router_config(config)
    router: Router | None = None
    model: Model
    if router_config is None:
        if not config.model.name:
            return None
        model = build_model(config.model, env)
    else:
        bound, strategies, commit = splits.bind(router_config, traffic.splits)
        router = Router(
            bound, env=env, observers=[*observers, splits], strategies=strategies, rng=rng
        )
        commit()
        shadowing = any(
            s.kind == "champion_challenger" and s.shadow for s in traffic.splits.values()
        )
        model = ShadowModel(router, splits) if shadowing else router
    if traffic.cache.ttl > 0:
        model = CachedModel(
            model,
            ttl=traffic.cache.ttl,
            max_entries=traffic.cache.max_entries,
            metrics=cache_metrics,
        )
    tiers = traffic.tiers
    if tiers is not None:
        downgrade = None
        if tiers.spend_limit_usd is not None and spent is not None:
            downgrade = SpendDowngrade(
                tiers.spend_limit_usd, threshold=tiers.spend_threshold, spent=spent
            )
        model = TieredModel(model, tiers, downgrade=downgrade)
    return Built(model, router)


def build_traffic_model(
    config: Config,
    env: Mapping[str, str],
    *,
    splits: Splits,
    observers: Iterable[RouterObserver] = (),
    cache_metrics: CacheObserver | None = None,
    spent: Callable[[], float | None] | None = None,
    rng: random.Random | None = None,
) -> Model | None:
    """The gateway's model: a `ReloadableModel` over `build_stack`, or the bare ``[model]``
    adapter when nothing is layered on it (exactly what `build_gateway_model` gives)."""
    built = build_stack(
        config,
        env,
        splits=splits,
        observers=observers,
        cache_metrics=cache_metrics,
        spent=spent,
        rng=rng,
    )
    if built is None:
        return None
    if built.router is None and built.model is not None and _bare(built.model):
        return built.model
    return ReloadableModel(built)


def _bare(model: Model) -> bool:
    return not isinstance(model, CachedModel | TieredModel)
