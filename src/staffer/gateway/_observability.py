"""The router's metrics, events and costs over HTTP (see docs/observability.md).

`Observability` is one `RouterObserver` that fans out to the metrics, the event
log and the cost recorder; hand it to the router when the app is built, then
`start` it with the store in the lifespan. `install_observability` adds the
routes. Every route needs the gateway token, ``/metrics`` included.

    GET /metrics              Prometheus text format
    GET /api/router           latency percentiles, rates, goodput, cost, cache, breakers
    GET /api/router/events    the recent retries, fallbacks and breaker transitions
    GET /api/usage            cost and tokens from the store, grouped by a dimension
    GET /api/usage/calls      the most recent model calls
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, get_args

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from staffer.config import Config
from staffer.gateway._errors import ApiError
from staffer.router import (
    SLO,
    Attempt,
    CostRecorder,
    CostTable,
    EventLog,
    MetricsObserver,
    RouterEvent,
)
from staffer.store import ModelCallRecord, Store, UsageDimension, UsageSummary

DIMENSIONS: tuple[str, ...] = get_args(UsageDimension)


class Observability:
    """Metrics, the event log and cost accounting for one app, as a single `RouterObserver`.

    `slo` defines goodput; `costs` prices attempts (no cost figures without it);
    `window` is the rolling window of the percentiles in seconds. The Prometheus
    registry is this object's own, so two apps in one process never share series.
    """

    def __init__(
        self,
        *,
        slo: SLO | None = None,
        costs: CostTable | None = None,
        window: float = 300.0,
        events: int = 1000,
    ) -> None:
        self.registry = CollectorRegistry()
        self.costs = costs
        self.metrics = MetricsObserver(slo, costs=costs, window=window, registry=self.registry)
        self.events = EventLog(events)
        self.recorder: CostRecorder | None = None
        self.store: Store | None = None

    # --- RouterObserver ----------------------------------------------------

    def on_attempt(self, attempt: Attempt) -> None:
        self.metrics.on_attempt(attempt)
        if self.recorder is not None:
            self.recorder.on_attempt(attempt)

    def on_event(self, event: RouterEvent) -> None:
        self.metrics.on_event(event)
        self.events.on_event(event)

    # --- lifecycle ---------------------------------------------------------

    async def start(self, store: Store | None, *, router: object = None) -> None:
        """Record model calls in `store` (when prices are known) and read `router`'s states."""
        self.store = store
        if store is not None and self.costs is not None and self.recorder is None:
            self.recorder = CostRecorder(store, self.costs)
            await self.recorder.start()
        states = getattr(router, "deployment_states", None)
        if callable(states):
            self.metrics.bind_router(states)

    async def aclose(self) -> None:
        """Flush the cost records still waiting; call before closing the store."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            await recorder.aclose()

    async def flush(self) -> None:
        """Write waiting cost records now, so a read of the store sees them."""
        if self.recorder is not None:
            await self.recorder.flush()

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /api/router`` answers."""
        data = self.metrics.snapshot()
        recorder = self.recorder
        data["recorder"] = (
            None if recorder is None else {"written": recorder.written, "dropped": recorder.dropped}
        )
        return data


routes = APIRouter(tags=["observability"])


def _observability(request: Request) -> Observability:
    obs: Observability = request.app.state.observability
    return obs


@routes.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition (text format 0.0.4). Needs the token like every other route."""
    body = generate_latest(_observability(request).registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@routes.get("/api/router")
async def router_stats(request: Request) -> dict[str, Any]:
    """Per deployment and alias: TTFT/TPOT/latency p50/p95/p99, rates, goodput and cost."""
    return _observability(request).snapshot()


@routes.get("/api/router/events")
async def router_events(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """The most recent retries, fallbacks and breaker transitions, newest first."""
    return {"events": [asdict(e) for e in _observability(request).events.recent(limit)]}


def _store(obs: Observability) -> Store:
    if obs.store is None or obs.recorder is None:
        raise ApiError(
            503,
            "no_usage",
            "model-call accounting is off: no router with prices is configured",
            "configure [deployments.NAME] with prices in config.toml (see docs/observability.md)",
        )
    return obs.store


def _summary(s: UsageSummary) -> dict[str, Any]:
    return {
        "key": s.key,
        "calls": s.calls,
        "failed_calls": s.failed_calls,
        **s.usage.counts(),
        "cost_usd": round(s.cost_usd, 9),
        "unknown_price_calls": s.unknown_price_calls,
    }


@routes.get("/api/usage")
async def usage(
    request: Request,
    by: Annotated[
        str | None, Query(description=f"one of {', '.join(DIMENSIONS)}; all when omitted")
    ] = None,
    since: Annotated[float | None, Query(description="unix seconds")] = None,
    until: Annotated[float | None, Query(description="unix seconds")] = None,
) -> dict[str, Any]:
    """Cost and tokens from the store, grouped by deployment, alias, agent, session, user
    or channel. Calls with an unknown price are counted apart, never as free."""
    obs = _observability(request)
    store = _store(obs)
    if by is not None and by not in DIMENSIONS:
        raise ApiError(
            422, "invalid_request", f"cannot group by {by!r}", f"use one of {', '.join(DIMENSIONS)}"
        )
    await obs.flush()
    groups: dict[str, list[dict[str, Any]]] = {}
    for dimension in [by] if by else DIMENSIONS:
        rows = await store.model_call_summary(dimension, since=since, until=until)  # type: ignore[arg-type]
        groups[dimension] = [_summary(s) for s in rows]
    first = next(iter(groups.values()))
    return {
        "since": since,
        "until": until,
        "total": {
            "calls": sum(g["calls"] for g in first),
            "cost_usd": round(sum(g["cost_usd"] for g in first), 9),
            "unknown_price_calls": sum(g["unknown_price_calls"] for g in first),
        },
        "by": groups,
    }


def _call(r: ModelCallRecord) -> dict[str, Any]:
    data = asdict(r)
    data.update(data.pop("usage"))
    data.pop("type", None)
    return data


@routes.get("/api/usage/calls")
async def usage_calls(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    session: str | None = None,
    since: float | None = None,
) -> dict[str, Any]:
    """The most recent model calls (one per attempt), newest first."""
    obs = _observability(request)
    store = _store(obs)
    await obs.flush()
    calls = await store.list_model_calls(since=since, session_id=session, limit=limit)
    return {"calls": [_call(c) for c in calls]}


def observability_for(config: Config) -> Observability:
    """The observability of the gateway `config` describes: its SLO and its price table."""
    from staffer.router import gateway_router_config

    router_config = gateway_router_config(config)
    if router_config is None:
        return Observability(slo=config.router.slo)
    return Observability(slo=router_config.slo, costs=CostTable.from_config(router_config))


def install_observability(app: FastAPI, observability: Observability) -> None:
    """Add the observability routes to `app`, reading from `observability`."""
    app.state.observability = observability
    app.include_router(routes)
