"""Routing strategies: each orders an alias's eligible deployments for one request.

A strategy is a plain function ``order(candidates, request, rng) -> list`` over
`Deployment`s (which carry their live figures: in-flight count, latency averages,
prices). The router tries the result front to back, so the rest of the list is the
fallback order. Register more in `STRATEGIES`, or pass ``strategies=`` to the
`Router`: a traffic split or a tiering policy is just another function here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from staffer.models import ModelRequest
from staffer.router._deployment import Deployment

Orderer = Callable[[Sequence[Deployment], ModelRequest, random.Random], list[Deployment]]

#: output tokens assumed when weighing time per token against time to first token
TYPICAL_OUTPUT_TOKENS = 100


def priority(
    candidates: Sequence[Deployment], request: ModelRequest, rng: random.Random
) -> list[Deployment]:
    """The alias's order as written: the first healthy deployment serves."""
    return list(candidates)


def weighted(
    candidates: Sequence[Deployment], request: ModelRequest, rng: random.Random
) -> list[Deployment]:
    """The first pick drawn at random by `weight`; the others follow in alias order."""
    if len(candidates) < 2:
        return list(candidates)
    weights = [max(d.config.weight, 0.0) for d in candidates]
    total = sum(weights)
    if total <= 0:
        return list(candidates)
    point = rng.random() * total
    chosen = candidates[-1]
    for deployment, weight in zip(candidates, weights, strict=True):
        point -= weight
        if point < 0:
            chosen = deployment
            break
    return [chosen, *(d for d in candidates if d is not chosen)]


def _latency_score(deployment: Deployment) -> float:
    # Unmeasured deployments score 0, so each is tried (and measured) early.
    ttft = deployment.ewma_ttft or 0.0
    tpot = deployment.ewma_tpot or 0.0
    return ttft + tpot * TYPICAL_OUTPUT_TOKENS


def latency(
    candidates: Sequence[Deployment], request: ModelRequest, rng: random.Random
) -> list[Deployment]:
    """Fastest first by the moving averages of time to first token and time per token."""
    return sorted(candidates, key=_latency_score)


def _blended_price(deployment: Deployment) -> float:
    prices = deployment.config.prices
    if prices.input is None or prices.output is None:
        return math.inf  # an unknown price never wins over a known one
    return prices.input + prices.output


def cost(
    candidates: Sequence[Deployment], request: ModelRequest, rng: random.Random
) -> list[Deployment]:
    """Cheapest first by input + output price per 1M tokens; unknown prices go last."""
    return sorted(candidates, key=_blended_price)


def least_busy(
    candidates: Sequence[Deployment], request: ModelRequest, rng: random.Random
) -> list[Deployment]:
    """Fewest requests in flight first; ties keep the alias's order."""
    return sorted(candidates, key=lambda d: d.inflight)


STRATEGIES: dict[str, Orderer] = {
    "priority": priority,
    "weighted": weighted,
    "latency": latency,
    "cost": cost,
    "least_busy": least_busy,
}
