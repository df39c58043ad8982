"""The model router: deployments, aliases, fallback, breakers, routing and accounting."""

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

__all__ = [
    "SLO",
    "AliasConfig",
    "Attempt",
    "BreakerConfig",
    "Capability",
    "DeploymentConfig",
    "Prices",
    "RouterConfig",
    "RouterEvent",
    "RouterEventKind",
    "RouterObserver",
    "Strategy",
    "Timeouts",
]
