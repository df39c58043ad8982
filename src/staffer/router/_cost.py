"""What a model call cost: usage × the deployment's price table, exact to the nano-dollar.

Prices are USD per 1M tokens. Cached input tokens are part of ``input_tokens``
(see `Usage`), so the input bill is split in two: the uncached part at the input
price and the cached part at the cached-input price. A price that is needed and
unknown makes the whole cost unknown (``usd is None``) and *flagged*; it is never
counted as zero. Arithmetic is done in `Decimal`, so sums stay exact to the cent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Self

from staffer.models import Usage
from staffer.router._types import Attempt, Prices, RouterConfig, RouterEvent
from staffer.store import ModelCallRecord, Store

logger = logging.getLogger("staffer.router")

_PER_MILLION = Decimal(1_000_000)
_NANO = Decimal("0.000000001")
_ZERO = Decimal(0)
_SLICE = 10  # attempts priced between two yields to the event loop (about 0.15 ms)


@dataclass(frozen=True, slots=True)
class Cost:
    """The cost of one call. `usd` is None exactly when `flagged`; `reason` says why."""

    usd: float | None
    flagged: bool = False
    reason: str | None = None
    exact: Decimal | None = None  # the same amount as a Decimal, for exact sums

    @property
    def nano_usd(self) -> int | None:
        """The cost in integer nano-dollars (exact for prices with up to 3 decimals)."""
        if self.exact is None:
            return None
        return int(self.exact.quantize(_NANO, rounding=ROUND_HALF_EVEN) * 1_000_000_000)


def _decimal(price: float | None) -> Decimal | None:
    # str() first: Decimal(0.15) would carry the binary float's error into the bill.
    return None if price is None else Decimal(str(price))


@dataclass(frozen=True, slots=True)
class _DecimalPrices:
    input: Decimal | None
    output: Decimal | None
    cached_input: Decimal | None

    @classmethod
    def of(cls, prices: Prices) -> _DecimalPrices:
        return cls(_decimal(prices.input), _decimal(prices.output), _decimal(prices.cached_input))


def _cost(usage: Usage, prices: _DecimalPrices) -> Cost:
    cached = max(0, min(usage.cached_input_tokens, usage.input_tokens))
    parts = (
        ("input", usage.input_tokens - cached, prices.input),
        ("cached input", cached, prices.cached_input),
        ("output", usage.output_tokens, prices.output),
    )
    total = _ZERO
    missing: list[str] = []
    for what, tokens, price in parts:
        if tokens <= 0:
            continue  # zero tokens cost nothing, whatever the price
        if price is None:
            missing.append(what)
        else:
            total += tokens * price
    if missing:
        return Cost(None, True, f"unknown {' and '.join(missing)} price")
    exact = total / _PER_MILLION
    return Cost(float(exact), False, None, exact)


def cost_of(usage: Usage, prices: Prices) -> Cost:
    """The cost of `usage` at `prices`; flagged (``usd=None``) when a needed price is unknown.

    >>> cost_of(Usage(1000, 500, 200), Prices(input=2.5, output=10, cached_input=1.25)).usd
    0.00725
    """
    return _cost(usage, _DecimalPrices.of(prices))


class CostTable:
    """Prices by deployment name, converted to `Decimal` once; `cost` is cheap to call."""

    __slots__ = ("_prices",)

    def __init__(self, prices: Mapping[str, Prices]) -> None:
        self._prices = {name: _DecimalPrices.of(p) for name, p in prices.items()}

    @classmethod
    def from_config(cls, config: RouterConfig) -> CostTable:
        """The price table of every deployment in `config`."""
        return cls({name: d.prices for name, d in config.deployments.items()})

    def __contains__(self, deployment: object) -> bool:
        return deployment in self._prices

    def prices(self, deployment: str) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
        """(input, cached input, output) USD per 1M tokens; all None for an unknown deployment."""
        p = self._prices.get(deployment)
        return (None, None, None) if p is None else (p.input, p.cached_input, p.output)

    def cost(self, deployment: str, usage: Usage) -> Cost:
        """The cost of `usage` on `deployment`; an unknown deployment's prices are unknown."""
        prices = self._prices.get(deployment)
        if prices is None:
            if usage.input_tokens <= 0 and usage.output_tokens <= 0:
                return Cost(0.0, False, None, _ZERO)
            return Cost(None, True, f"no prices for deployment {deployment!r}")
        return _cost(usage, prices)


class CostRecorder:
    """A `RouterObserver` that writes every attempt, with its cost, to the store in batches.

    `on_attempt` only appends to a list: pricing and the write happen in a
    background task every `flush_interval` seconds, or sooner once `batch_size`
    attempts are waiting, so a request never waits for the database. At most
    `max_pending` attempts wait; beyond that they are dropped and counted in
    `dropped` (the store is down or far too slow). Use ``async with`` or
    `start`/`aclose`: closing flushes what is left.
    """

    def __init__(
        self,
        store: Store,
        costs: CostTable,
        *,
        flush_interval: float = 0.5,
        batch_size: int = 100,
        max_pending: int = 100_000,
    ) -> None:
        self.store = store
        self.costs = costs
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.dropped = 0
        self.written = 0
        self._pending: list[Attempt] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def on_attempt(self, attempt: Attempt) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        self._pending.append(attempt)
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    def on_event(self, event: RouterEvent) -> None:
        """Events carry no cost; nothing to record."""

    def record(self, attempt: Attempt) -> ModelCallRecord:
        """The store record of `attempt`, priced with this recorder's table."""
        a, meta = attempt, attempt.metadata
        cost = self.costs.cost(a.deployment, a.usage)
        return ModelCallRecord(
            request_id=a.request_id,
            alias=a.alias,
            deployment=a.deployment,
            attempt=a.attempt,
            ok=a.ok,
            usage=a.usage,
            cost_usd=cost.usd,
            price_unknown=cost.flagged,
            duration=a.duration,
            created_at=a.started_at,
            ttft=a.ttft,
            error=a.error if not a.cancelled else a.error or "cancelled",
            status=a.status,
            agent=meta.get("agent"),
            session_id=meta.get("session") or meta.get("session_id"),
            user=meta.get("user"),
            channel=meta.get("channel"),
        )

    async def flush(self) -> None:
        """Write every waiting attempt now. A failure (store down) is logged, the batch dropped."""
        while self._pending:
            batch, self._pending = (
                self._pending[: self.batch_size],
                self._pending[self.batch_size :],
            )
            try:
                await self.store.record_model_calls(await self._records(batch))
            except Exception as exc:  # a writer that dies would silently stop all accounting
                self.dropped += len(batch)
                logger.warning("dropped %d model-call records: %s", len(batch), exc)
            else:
                self.written += len(batch)

    async def _records(self, batch: list[Attempt]) -> list[ModelCallRecord]:
        """Price `batch` a slice at a time, letting the requests waiting run in between:
        a whole batch at once held the event loop for a millisecond or more."""
        records: list[ModelCallRecord] = []
        for start in range(0, len(batch), _SLICE):
            if start:
                await asyncio.sleep(0)
            records += [self.record(a) for a in batch[start : start + _SLICE]]
        return records

    async def start(self) -> None:
        """Start the background writer (idempotent)."""
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="staffer-cost-recorder")

    async def aclose(self) -> None:
        """Stop the writer after it has flushed what is left."""
        task, self._task = self._task, None
        self._closing = True
        self._wake.set()
        if task is not None:
            await task  # never cancelled: a batch in flight would be lost
        await self.flush()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            await self.flush()
