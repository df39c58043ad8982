"""From configuration to models: one adapter per deployment, and the gateway's model.

Adapters are built by `staffer.models._build.build_model`, the one place that parses
"provider:model" and reads API keys; its errors are re-keyed here to the deployment's
own settings (``deployments.NAME.api_key_env`` rather than ``model.api_key_env``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from staffer.config import Config, ModelConfig
from staffer.errors import ConfigError
from staffer.models import AnthropicModel, Model, OpenAIChatModel
from staffer.models._build import PROVIDERS, build_model, parse_model_name
from staffer.router._deployment import Deployment
from staffer.router._strategies import STRATEGIES, Orderer
from staffer.router._types import DeploymentConfig, RouterConfig, RouterObserver, Timeouts

logger = logging.getLogger("staffer.router")

#: the name the [model] section gets when it joins configured deployments
MODEL_SECTION_DEPLOYMENT = "model"


def _rekey(exc: ConfigError, name: str) -> ConfigError:
    prefix = f"deployments.{name}"
    keys = {
        "model.name": f"{prefix}.provider",
        "model.base_url": f"{prefix}.base_url",
        "model.api_key_env": f"{prefix}.api_key_env",
        "model.timeout": f"{prefix}.timeout_total",
    }
    fix = exc.fix
    if fix:
        for old, new in keys.items():
            fix = fix.replace(old, new)
    return ConfigError(exc.problem, key=keys.get(exc.key or "", prefix), fix=fix)


def build_adapter(deployment: DeploymentConfig, env: Mapping[str, str]) -> Model:
    """The provider adapter for `deployment`, its key read from `env`.

    Raises ConfigError keyed ``deployments.NAME.…`` (a missing key, a bad base URL).
    The total timeout bounds the whole call inside the adapter; the connect timeout
    bounds opening the connection. Time to first token and idle gaps are the router's.
    """
    name = f"{deployment.provider}:{deployment.model}"
    try:
        provider, _ = parse_model_name(name)
        anthropic = PROVIDERS[provider].wire == "anthropic"
        cfg = ModelConfig(
            name=name,
            base_url=deployment.base_url,
            api_key_env=deployment.api_key_env,
            timeout=deployment.timeouts.total,
            # Anthropic requires max_tokens; OpenAI-compatible servers pick their own.
            max_tokens=4096 if anthropic else 0,
        )
        model = build_model(cfg, env)
    except ConfigError as exc:
        raise _rekey(exc, deployment.name) from exc
    if isinstance(model, (OpenAIChatModel, AnthropicModel)):
        # The deployment's own connect timeout rather than the adapters' default 10 s.
        model.connect_timeout = min(deployment.timeouts.connect, deployment.timeouts.total)
    return model


def build_deployments(
    config: RouterConfig, env: Mapping[str, str], adapters: Mapping[str, Model]
) -> dict[str, Deployment]:
    """A `Deployment` per configured one; `adapters` may hold ready models by name.

    A deployment that cannot be built (its key is missing) is kept but disabled, with
    the reason, so the others keep serving; when none can be built the first error is raised.
    """
    built: dict[str, Deployment] = {}
    errors: list[ConfigError] = []
    for name, dc in config.deployments.items():
        model = adapters.get(name)
        if model is None:
            try:
                model = build_adapter(dc, env)
            except ConfigError as exc:
                reason = str(exc).replace("\n", " ")
                logger.warning("deployment %s disabled: %s", name, reason)
                errors.append(exc)
                built[name] = Deployment(dc, None, reason)
                continue
        built[name] = Deployment(dc, model)
    if len(errors) == len(built):
        raise errors[0]
    return built


@dataclass(frozen=True, slots=True)
class Route:
    """What a request may name: an alias, or a single deployment under priority order."""

    name: str
    deployments: tuple[Deployment, ...]
    with_tools: tuple[Deployment, ...]  # the subset a request with tools may use
    order: Orderer


def build_routes(
    config: RouterConfig, deployments: Mapping[str, Deployment], strategies: Mapping[str, Orderer]
) -> dict[str, Route]:
    """A route per deployment name and per alias (an alias wins on a name clash)."""

    def route(name: str, members: tuple[Deployment, ...], order: Orderer) -> Route:
        return Route(name, members, tuple(d for d in members if "tools" in d.capabilities), order)

    routes = {name: route(name, (d,), STRATEGIES["priority"]) for name, d in deployments.items()}
    for name, alias in config.aliases.items():
        for i, member in enumerate(alias.deployments):
            if member not in deployments:
                raise ConfigError(
                    f"no deployment named {member!r}; known: {', '.join(deployments)}",
                    key=f"aliases.{name}.deployments[{i}]",
                    fix="add a [deployments.NAME] table for it or correct the name",
                )
        order = strategies.get(alias.strategy)
        if order is None:
            raise ConfigError(
                f"unknown strategy {alias.strategy!r}",
                key=f"aliases.{name}.strategy",
                fix=f"use one of {', '.join(strategies)}",
            )
        routes[name] = route(name, tuple(deployments[m] for m in alias.deployments), order)
    return routes


def gateway_router_config(config: Config) -> RouterConfig | None:
    """The router the gateway should run, or None when only ``[model]`` is configured.

    With deployments or aliases configured, ``model.name`` may name an alias or a
    deployment (the default route for agents). A ``provider:model`` name there joins
    as one more deployment called ``model``. ``router.default_alias`` wins over both.
    """
    rc, m = config.router, config.model
    if not rc.deployments and not rc.aliases:
        return None
    deployments = dict(rc.deployments)
    known = m.name in rc.aliases or m.name in deployments
    implicit = bool(m.name) and not known and MODEL_SECTION_DEPLOYMENT not in deployments
    if implicit:
        provider, model = parse_model_name(m.name)
        deployments[MODEL_SECTION_DEPLOYMENT] = DeploymentConfig(
            name=MODEL_SECTION_DEPLOYMENT,
            provider=provider,
            model=model,
            base_url=m.base_url,
            api_key_env=m.api_key_env,
            timeouts=Timeouts(total=m.timeout),
        )
    default = rc.default_alias or (
        m.name if known else MODEL_SECTION_DEPLOYMENT if implicit else None
    )
    return replace(rc, deployments=deployments, default_alias=default)


def build_gateway_model(
    config: Config, env: Mapping[str, str], *, observers: Iterable[RouterObserver] = ()
) -> Model | None:
    """The model the gateway's agents use: a `Router` when deployments or aliases are
    configured, else the bare ``[model]`` adapter (no retries, no fallback), else None."""
    router_config = gateway_router_config(config)
    if router_config is None:
        return build_model(config.model, env) if config.model.name else None
    from staffer.router._router import Router

    return Router(router_config, env=env, observers=observers)
