"""A view of the gateway's shared model that asks for one alias: an agent's own model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from staffer.models import Model, ModelEvent, ModelRequest


class RoutedModel(Model):
    """`model` (the router) with `route` as the alias or deployment of every request that
    names none. Closing it leaves `model` open: the gateway owns and closes that."""

    def __init__(self, model: Model, route: str) -> None:
        self.model = model
        self.route = route
        self.name = f"router:{route}"

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        if request.model is None:
            request = replace(request, model=self.route)
        return self.model.stream(request)


def routed_models(model: Model) -> Callable[[str], Model]:
    """`model_for` for `build_agents`: "" gives `model` itself, an alias or deployment name a
    `RoutedModel` over it (one per name), so every agent shares one router, its breakers,
    cache and cost records, and a router reload reaches them all."""
    views: dict[str, Model] = {}

    def model_for(route: str) -> Model:
        if not route:
            return model
        if route not in views:
            views[route] = RoutedModel(model, route)
        return views[route]

    return model_for
