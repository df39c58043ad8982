"""Tiering: map a request to an economy, mid or premium alias by rules, and let spend
move it down.

`classify` runs the ``[[tiers.rules]]`` in order; the first rule whose every set
condition holds names the tier, else the default (mid). Conditions:

    min_chars, max_chars   total characters of the messages' content
    tools                  whether the request offers tools
    keywords               any of them in the last user message (case-insensitive)
    metadata               every pair equal in ``ModelRequest.metadata`` (agent, user…)

`TieredModel` applies it to requests that name no model or the tiers' own alias
(``auto``), then asks its `downgrade` hook, ``(tier, request) -> tier``. A budget
can supply that hook; `SpendDowngrade` is a simple one over spend so far.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from staffer.models import Model, ModelEvent, ModelRequest
from staffer.router._traffic import TIERS, Tier, TierRule, TiersConfig

Downgrade = Callable[[Tier, ModelRequest], Tier]

#: the ``ModelRequest.metadata`` key that records the tier a request was given
TIER_KEY = "tier"


def _chars(request: ModelRequest) -> int:
    return sum(len(m.content or "") for m in request.messages)


def _last_user(request: ModelRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content or ""
    return ""


def matches(rule: TierRule, request: ModelRequest) -> bool:
    """Whether every condition `rule` sets holds for `request`."""
    if rule.min_chars is not None or rule.max_chars is not None:
        chars = _chars(request)
        if rule.min_chars is not None and chars < rule.min_chars:
            return False
        if rule.max_chars is not None and chars > rule.max_chars:
            return False
    if rule.tools is not None and bool(request.tools) != rule.tools:
        return False
    if rule.keywords:
        text = _last_user(request).casefold()
        if not any(k.casefold() in text for k in rule.keywords):
            return False
    return all(request.metadata.get(key) == value for key, value in rule.metadata)


def classify(request: ModelRequest, config: TiersConfig) -> Tier:
    """The tier of `request`: the first matching rule's, else the default."""
    for rule in config.rules:
        if matches(rule, request):
            return rule.tier
    return config.default


def lower(tier: Tier, steps: int = 1) -> Tier:
    """The tier `steps` below `tier` (economy stays economy)."""
    return TIERS[max(0, TIERS.index(tier) - steps)]


class SpendDowngrade:
    """A `downgrade` hook: one tier down once `spent()` reaches `threshold` × `limit_usd`,
    economy for everything once it reaches the limit itself.

    `spent` returns USD spent so far, e.g. the gateway's metrics
    (``metrics.cost_usd(metrics.pairs.values())``) or a budget's own ledger.
    """

    def __init__(
        self, limit_usd: float, *, threshold: float = 0.8, spent: Callable[[], float | None]
    ) -> None:
        self.limit_usd = limit_usd
        self.threshold = threshold
        self.spent = spent

    def __call__(self, tier: Tier, request: ModelRequest) -> Tier:
        spent = self.spent() or 0.0
        if spent >= self.limit_usd:
            return "economy"
        if spent >= self.threshold * self.limit_usd:
            return lower(tier)
        return tier


class TieredModel(Model):
    """`model` (usually the router) with requests for no model, or for `config.alias`,
    sent to the alias of their tier. Other requests pass through untouched.

    `counts` keeps how many requests each tier got (after any downgrade) and
    `downgraded` how many were moved down.
    """

    def __init__(
        self, model: Model, config: TiersConfig, *, downgrade: Downgrade | None = None
    ) -> None:
        self.model = model
        self.name = model.name
        self.tiers = config
        self.downgrade = downgrade
        self.counts: dict[Tier, int] = dict.fromkeys(TIERS, 0)
        self.downgraded = 0

    def route(self, request: ModelRequest) -> ModelRequest:
        """`request` with its tier's alias as the model (and the tier in its metadata)."""
        if request.model not in (None, self.tiers.alias):
            return request
        tier = classify(request, self.tiers)
        if self.downgrade is not None:
            lowered = self.downgrade(tier, request)
            if lowered != tier:
                self.downgraded += 1
                tier = lowered
        self.counts[tier] += 1
        alias = self.alias_of(tier)
        return replace(request, model=alias, metadata={**request.metadata, TIER_KEY: tier})

    def alias_of(self, tier: Tier) -> str | None:
        """The tier's alias; an unset one borrows mid's, then the nearest cheaper, then dearer."""
        aliases = self.tiers.aliases
        for candidate in (tier, "mid", *reversed(TIERS[: TIERS.index(tier)]), *TIERS):
            if candidate in aliases:
                return aliases[candidate]
        return None

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        async for event in self.model.stream(self.route(request)):
            yield event

    async def aclose(self) -> None:
        await self.model.aclose()
