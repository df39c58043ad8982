"""The router's configuration, its observer hook and the events it reports.

A *deployment* is one model at one provider endpoint (with its key, prices,
limits and capabilities). An *alias* (``fast``, ``smart``…) is what agents and
API callers ask for: an ordered list of deployments and a routing strategy.
The router is itself a `Model`: asking it for alias ``smart`` picks a
deployment, falls back on failure and reports everything to its observers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from staffer.models import Usage

Capability = Literal["tools", "vision", "json"]
Strategy = Literal["priority", "weighted", "latency", "cost", "least_busy"]


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per 1M tokens. `None` means unknown: the cost is flagged, never silently zero."""

    input: float | None = None
    output: float | None = None
    cached_input: float | None = None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `ttft` is until the first token, `idle` the longest gap between chunks."""

    connect: float = 10.0
    ttft: float = 60.0
    idle: float = 60.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Open after `failures` consecutive failures, or a failure rate over `failure_rate`
    within `window` seconds (with at least `min_requests`); probe again after `cooldown`."""

    failures: int = 5
    failure_rate: float = 0.5
    window: float = 60.0
    min_requests: int = 20
    cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    """One model at one endpoint: ``[deployments.NAME]`` in config.toml."""

    name: str
    provider: str  # as accepted by staffer.models.parse_model_name: openai, anthropic, ollama…
    model: str
    base_url: str = ""
    api_key_env: str = ""
    prices: Prices = field(default_factory=Prices)
    context_window: int | None = None
    capabilities: frozenset[Capability] = frozenset({"tools"})
    max_retries: int = 2  # retries on this deployment before falling back
    weight: float = 1.0  # for the weighted strategy
    retry_backoff: float = 0.5  # first backoff in seconds; doubles per retry, full jitter
    retry_max_wait: float = 30.0  # longest wait before a retry; a longer Retry-After falls back
    timeouts: Timeouts = field(default_factory=Timeouts)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)


@dataclass(frozen=True, slots=True)
class AliasConfig:
    """What callers ask for: ``[aliases.NAME]`` with ordered deployments and a strategy."""

    name: str
    deployments: tuple[str, ...]
    strategy: Strategy = "priority"


@dataclass(frozen=True, slots=True)
class SLO:
    """A request is *good* when it meets every target (seconds); goodput counts those."""

    ttft: float | None = None
    tpot: float | None = None
    total: float | None = None


@dataclass(frozen=True, slots=True)
class RouterConfig:
    deployments: dict[str, DeploymentConfig] = field(default_factory=dict)
    aliases: dict[str, AliasConfig] = field(default_factory=dict)
    default_alias: str | None = None
    slo: SLO = field(default_factory=SLO)


# --- what the router reports --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one request on one deployment, reported when it ends."""

    request_id: str
    alias: str
    deployment: str
    attempt: int  # 1, 2, … across the whole request (retries and fallbacks)
    ok: bool
    error: str | None  # the error's class name and message when not ok
    status: int | None  # provider HTTP status, if any
    started_at: float  # time.time()
    ttft: float | None  # seconds to the first content event, None if none came
    duration: float  # seconds
    output_chunks: int
    usage: Usage
    metadata: dict[str, str]  # agent, session, user, channel… from ModelRequest.metadata
    cancelled: bool = False  # the caller stopped reading; neither a success nor a failure


RouterEventKind = Literal[
    "retry",
    "fallback",
    "breaker_open",
    "breaker_half_open",
    "breaker_closed",
    "rollback",  # a canary's candidate was taken out of traffic
    "flip",  # a blue-green split switched colour
]


@dataclass(frozen=True, slots=True)
class RouterEvent:
    """Something an operator should be able to see: a retry, a fallback, a breaker transition."""

    kind: RouterEventKind
    deployment: str
    cause: str
    alias: str | None = None
    attempt: int | None = None
    latency: float | None = None  # seconds spent on the failed attempt
    at: float = 0.0  # time.time()


class RouterObserver(Protocol):
    """Receives attempts and events; metrics, cost accounting and logs implement it.

    Called on the event loop: implementations must be quick and never block.
    """

    def on_attempt(self, attempt: Attempt) -> None: ...

    def on_event(self, event: RouterEvent) -> None: ...
