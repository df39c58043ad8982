"""What the routes share: the store, the event hub and the run manager."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from staffer.gateway._hub import EventHub
from staffer.gateway._runs import RunManager
from staffer.models import Model
from staffer.store import Store


@dataclass(slots=True)
class GatewayState:
    store: Store
    hub: EventHub
    runs: RunManager | None  # None while no model is configured
    workspace: Path
    model_help: str
    model: Model | None = None  # the agents' model, and the one /v1 serves
