"""Operating the router while it serves: reload the config, read and flip the splits.

    POST /api/router/reload               re-read config.toml's routing tables and swap
                                          the router; streams in flight finish on the old one
    GET  /api/router/splits               every split's state and side-by-side report
    POST /api/router/splits/{name}/flip   blue–green: send all traffic to the other arm

SIGHUP does what ``POST /api/router/reload`` does (`install_reload_signal`). Only the
routing tables are reloaded ([router], [deployments.NAME], [aliases.NAME],
[splits.NAME], [tiers]); the rest of the file needs a restart.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from staffer.config import Config, Home, load_config
from staffer.errors import ConfigError
from staffer.gateway._errors import ApiError
from staffer.gateway._observability import Observability
from staffer.models import Model
from staffer.router._build import gateway_router_config
from staffer.router._cost import CostTable
from staffer.router._reload import ReloadableModel
from staffer.router._splits import Splits, UnknownSplitError
from staffer.router._stack import build_stack, build_traffic_model

logger = logging.getLogger("staffer.gateway")


class RouterAdmin:
    """What the admin routes act on: the reloadable model, its splits and where to
    re-read the config from. Built by `build_routing`."""

    def __init__(
        self,
        model: Model | None,
        splits: Splits,
        *,
        config_file: Path,
        env: Mapping[str, str],
        observability: Observability,
    ) -> None:
        self.model = model
        self.splits = splits
        self.config_file = config_file
        self.env = env
        self.observability = observability
        self.reloads = 0
        self._lock = asyncio.Lock()

    def _spent(self) -> float | None:
        metrics = self.observability.metrics
        return metrics.cost_usd(metrics.pairs.values())

    def build(self, config: Config) -> Model | None:
        obs = self.observability
        return build_traffic_model(
            config,
            self.env,
            splits=self.splits,
            observers=[obs],
            cache_metrics=obs.metrics,
            spent=self._spent,
        )

    async def reload(self) -> dict[str, Any]:
        """Re-read the config file and swap the model. Raises ConfigError or ApiError."""
        model = self.model
        if not isinstance(model, ReloadableModel):
            raise ApiError(
                409,
                "not_reloadable",
                "the model is a bare [model] adapter, which has nothing to reload",
                "configure [deployments.NAME] and [aliases.NAME] (or a cache or tiers), "
                "then restart Staffer once",
            )
        async with self._lock:
            config = await asyncio.to_thread(load_config, self.config_file)
            obs = self.observability
            built = build_stack(
                config,
                self.env,
                splits=self.splits,
                observers=[obs],
                cache_metrics=obs.metrics,
                spent=self._spent,
            )
            if built is None:
                raise ApiError(
                    400,
                    "no_model",
                    "the reloaded config.toml configures no model",
                    "put the [model] or [deployments.NAME] tables back",
                )
            self._adopt_prices(config)
            generation = model.swap(built)
            self.reloads += 1
        logger.info("router reloaded from %s (generation %d)", self.config_file, generation)
        return {
            "generation": generation,
            "aliases": list(built.router.config.aliases) if built.router else [],
            "splits": list(self.splits.states),
            "in_flight": {str(k): v for k, v in model.in_flight().items()},
        }

    def _adopt_prices(self, config: Config) -> None:
        # New deployments are priced from now on; series already seen keep their prices.
        router_config = gateway_router_config(config)
        if router_config is None:
            return
        costs = CostTable.from_config(router_config)
        obs = self.observability
        obs.costs = obs.metrics.costs = self.splits.costs = costs
        if obs.recorder is not None:
            obs.recorder.costs = costs


def build_routing(
    config: Config, home: Home, env: Mapping[str, str], observability: Observability
) -> tuple[Model | None, RouterAdmin]:
    """The gateway's model (router, splits, cache, tiers as configured) and its admin."""
    splits = Splits(costs=observability.costs, on_event=observability.events.on_event)
    admin = RouterAdmin(
        None, splits, config_file=home.config_file, env=env, observability=observability
    )
    admin.model = admin.build(config)
    return admin.model, admin


routes = APIRouter(tags=["router"])


def _admin(request: Request) -> RouterAdmin:
    admin: RouterAdmin = request.app.state.router_admin
    return admin


@routes.post("/api/router/reload")
async def reload_router(request: Request) -> dict[str, Any]:
    """Re-read config.toml and swap the router without dropping requests in flight."""
    try:
        return await _admin(request).reload()
    except ConfigError as exc:
        raise ApiError(400, "config_error", str(exc).split("\nFix:")[0], exc.fix) from exc


@routes.get("/api/router/splits")
async def list_splits(request: Request) -> dict[str, Any]:
    """Every split: state, live share or colour, per-arm figures and shadow pairs."""
    return {"splits": _admin(request).splits.report()}


@routes.post("/api/router/splits/{name}/flip")
async def flip_split(request: Request, name: str) -> dict[str, Any]:
    """Send all of a blue–green split's traffic to its other arm, at once."""
    splits = _admin(request).splits
    try:
        state = splits.flip(name)
    except UnknownSplitError as exc:
        known = ", ".join(splits.states) or "none"
        fix = f"use one of: {known}"
        raise ApiError(404, "unknown_split", f"no split named {name!r}", fix) from exc
    except ValueError as exc:
        raise ApiError(409, "not_blue_green", str(exc), "only blue_green splits flip") from exc
    return state.report(splits.costs is not None)


def install_router_admin(app: FastAPI, admin: RouterAdmin) -> None:
    """Add the reload and split routes to `app`, acting on `admin`."""
    app.state.router_admin = admin
    app.include_router(routes)


def install_reload_signal(app: Any) -> bool:
    """Reload the router on SIGHUP (Unix, running loop); False where that is not possible."""
    admin: RouterAdmin | None = getattr(getattr(app, "state", None), "router_admin", None)
    if admin is None or not hasattr(signal, "SIGHUP"):
        return False
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def reload() -> None:
        try:
            await admin.reload()
        except (ConfigError, ApiError) as exc:
            logger.warning("reload on SIGHUP failed: %s", exc)

    def on_hup() -> None:
        task = loop.create_task(reload())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    except (NotImplementedError, RuntimeError):
        return False
    return True
