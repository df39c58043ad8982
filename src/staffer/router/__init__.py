"""The model router: deployments, aliases, fallback, breakers, routing and accounting.

The router itself (and httpx under it) loads on first use, so the config package can
import the configuration types without paying for it.
"""

from typing import TYPE_CHECKING, Any

from staffer.router._types import (
    SLO,
    AliasConfig,
    Attempt,
    BreakerConfig,
    Capability,
    DeploymentConfig,
    Prices,
    RouterConfig,
    RouterEvent,
    RouterEventKind,
    RouterObserver,
    Strategy,
    Timeouts,
)

if TYPE_CHECKING:
    from staffer.router._breaker import BreakerState, CircuitBreaker
    from staffer.router._build import build_adapter, build_gateway_model, gateway_router_config
    from staffer.router._cache import CachedModel, CacheObserver, cache_key
    from staffer.router._cost import Cost, CostRecorder, CostTable, cost_of
    from staffer.router._deployment import Deployment
    from staffer.router._metrics import EventLog, MetricsObserver, percentile
    from staffer.router._reload import Built, ReloadableModel
    from staffer.router._router import (
        NoCapableDeploymentError,
        NoDeploymentAvailableError,
        Router,
        StreamInterruptedError,
        UnknownAliasError,
    )
    from staffer.router._shadow import ShadowModel
    from staffer.router._splits import Splits, SplitState, UnknownSplitError
    from staffer.router._stack import build_stack, build_traffic_model
    from staffer.router._strategies import STRATEGIES, Orderer
    from staffer.router._tiering import SpendDowngrade, TieredModel, classify
    from staffer.router._traffic import (
        CacheConfig,
        SplitConfig,
        SplitKind,
        Tier,
        TierRule,
        TiersConfig,
        TrafficConfig,
    )

_LAZY = {
    "BreakerState": "staffer.router._breaker",
    "CircuitBreaker": "staffer.router._breaker",
    "Deployment": "staffer.router._deployment",
    "NoCapableDeploymentError": "staffer.router._router",
    "NoDeploymentAvailableError": "staffer.router._router",
    "Orderer": "staffer.router._strategies",
    "Router": "staffer.router._router",
    "STRATEGIES": "staffer.router._strategies",
    "StreamInterruptedError": "staffer.router._router",
    "UnknownAliasError": "staffer.router._router",
    "build_adapter": "staffer.router._build",
    "build_gateway_model": "staffer.router._build",
    "gateway_router_config": "staffer.router._build",
    "CacheObserver": "staffer.router._cache",
    "CachedModel": "staffer.router._cache",
    "cache_key": "staffer.router._cache",
    "Cost": "staffer.router._cost",
    "CostRecorder": "staffer.router._cost",
    "CostTable": "staffer.router._cost",
    "cost_of": "staffer.router._cost",
    "EventLog": "staffer.router._metrics",
    "MetricsObserver": "staffer.router._metrics",
    "percentile": "staffer.router._metrics",
}

__all__ = [
    "SLO",
    "STRATEGIES",
    "AliasConfig",
    "Attempt",
    "BreakerConfig",
    "BreakerState",
    "Capability",
    "CircuitBreaker",
    "Deployment",
    "DeploymentConfig",
    "NoCapableDeploymentError",
    "NoDeploymentAvailableError",
    "Orderer",
    "Prices",
    "Router",
    "RouterConfig",
    "RouterEvent",
    "RouterEventKind",
    "RouterObserver",
    "Strategy",
    "StreamInterruptedError",
    "Timeouts",
    "UnknownAliasError",
    "build_adapter",
    "build_gateway_model",
    "gateway_router_config",
]
__all__ += [
    "CacheObserver",
    "CachedModel",
    "Cost",
    "CostRecorder",
    "CostTable",
    "EventLog",
    "MetricsObserver",
    "cache_key",
    "cost_of",
    "percentile",
]

# Traffic shaping: splits, shadow copies, tiers, reload (see docs/routing.md).
_LAZY.update(
    {
        "Built": "staffer.router._reload",
        "ReloadableModel": "staffer.router._reload",
        "ShadowModel": "staffer.router._shadow",
        "SplitState": "staffer.router._splits",
        "Splits": "staffer.router._splits",
        "UnknownSplitError": "staffer.router._splits",
        "build_stack": "staffer.router._stack",
        "build_traffic_model": "staffer.router._stack",
        "SpendDowngrade": "staffer.router._tiering",
        "TieredModel": "staffer.router._tiering",
        "classify": "staffer.router._tiering",
        "CacheConfig": "staffer.router._traffic",
        "SplitConfig": "staffer.router._traffic",
        "SplitKind": "staffer.router._traffic",
        "Tier": "staffer.router._traffic",
        "TierRule": "staffer.router._traffic",
        "TiersConfig": "staffer.router._traffic",
        "TrafficConfig": "staffer.router._traffic",
    }
)
__all__ += [
    "Built",
    "CacheConfig",
    "ReloadableModel",
    "ShadowModel",
    "SpendDowngrade",
    "SplitConfig",
    "SplitKind",
    "SplitState",
    "Splits",
    "Tier",
    "TierRule",
    "TieredModel",
    "TiersConfig",
    "TrafficConfig",
    "UnknownSplitError",
    "build_stack",
    "build_traffic_model",
    "classify",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'staffer.router' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
