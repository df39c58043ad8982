"""Cost math: cached split, unknown prices flagged (never zero), exact to the cent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from staffer.models import Usage
from staffer.router import (
    Attempt,
    Cost,
    CostRecorder,
    CostTable,
    DeploymentConfig,
    Prices,
    RouterConfig,
    cost_of,
)
from staffer.store import SQLiteStore, Store

FULL = Prices(input=2.5, output=10.0, cached_input=1.25)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with SQLiteStore(tmp_path / "staffer.db") as opened:
        yield opened


def test_input_output_and_cached_split() -> None:
    # 800 uncached × 2.5 + 200 cached × 1.25 + 500 out × 10 = 2000 + 250 + 5000 per 1M
    cost = cost_of(Usage(input_tokens=1000, output_tokens=500, cached_input_tokens=200), FULL)
    assert cost == Cost(0.00725, False, None, Decimal("0.00725"))
    assert cost.nano_usd == 7_250_000


def test_no_cached_tokens_needs_no_cached_price() -> None:
    cost = cost_of(Usage(1_000_000, 1_000_000), Prices(input=0.15, output=0.6))
    assert cost.usd == pytest.approx(0.75)
    assert not cost.flagged


@pytest.mark.parametrize(
    ("usage", "prices", "reason"),
    [
        (Usage(10, 0), Prices(output=1.0), "unknown input price"),
        (Usage(10, 5), Prices(input=1.0), "unknown output price"),
        (Usage(10, 0, 10), Prices(input=1.0), "unknown cached input price"),
        (Usage(10, 5, 4), Prices(), "unknown input and cached input and output price"),
    ],
)
def test_unknown_price_is_flagged_never_zero(usage: Usage, prices: Prices, reason: str) -> None:
    cost = cost_of(usage, prices)
    assert cost.usd is None
    assert cost.flagged
    assert cost.reason == reason
    assert cost.nano_usd is None


def test_unknown_cached_price_does_not_fall_back_to_input_price() -> None:
    cost = cost_of(Usage(100, 0, 50), Prices(input=1.0, output=1.0))
    assert cost.flagged


def test_zero_tokens_cost_zero_even_with_unknown_prices() -> None:
    cost = cost_of(Usage(), Prices())
    assert cost.usd == 0.0
    assert not cost.flagged


def test_sums_are_exact_to_the_cent() -> None:
    # 0.1 + 0.2 in binary floats is 0.30000000000000004; Decimal sums are exact.
    prices = Prices(input=0.1, output=0.2)
    one = cost_of(Usage(1_000_000, 1_000_000), prices)
    assert one.exact == Decimal("0.3")
    total = sum((one.exact for _ in range(1000) if one.exact is not None), Decimal(0))
    assert total == Decimal("300")
    cheap = cost_of(Usage(input_tokens=1), Prices(input=0.075))
    assert cheap.exact == Decimal("0.000000075")
    assert cheap.nano_usd == 75
    assert sum(cheap.exact for _ in range(1_000_000) if cheap.exact) == Decimal("0.075")


def test_cached_tokens_above_input_are_clamped() -> None:
    cost = cost_of(Usage(input_tokens=10, output_tokens=0, cached_input_tokens=50), FULL)
    assert cost.exact == Decimal(10) * Decimal("1.25") / 1_000_000


def test_cost_table_from_config_and_unknown_deployment() -> None:
    config = RouterConfig(
        deployments={
            "a": DeploymentConfig("a", "openai", "m", prices=FULL),
            "b": DeploymentConfig("b", "openai", "m"),
        }
    )
    table = CostTable.from_config(config)
    assert "a" in table
    assert table.cost("a", Usage(1000, 500, 200)).usd == 0.00725
    assert table.cost("b", Usage(1, 1)).flagged
    missing = table.cost("zzz", Usage(1, 1))
    assert missing.flagged
    assert missing.reason == "no prices for deployment 'zzz'"
    assert table.cost("zzz", Usage()).usd == 0.0


def attempt(n: int = 1, *, ok: bool = True, deployment: str = "a", **meta: str) -> Attempt:
    return Attempt(
        request_id=f"r{n}",
        alias="fast",
        deployment=deployment,
        attempt=1,
        ok=ok,
        error=None if ok else "ProviderUnavailableError: 503",
        status=None if ok else 503,
        started_at=1000.0 + n,
        ttft=0.1 if ok else None,
        duration=0.5,
        output_chunks=5 if ok else 0,
        usage=Usage(1000, 500, 200) if ok else Usage(),
        metadata=meta,
    )


async def test_recorder_writes_batches_off_the_hot_path(store: Store) -> None:
    table = CostTable({"a": FULL})
    async with CostRecorder(store, table, flush_interval=0.01, batch_size=2) as recorder:
        recorder.on_attempt(attempt(1, agent="main", session="s1", user="ann", channel="web"))
        recorder.on_attempt(attempt(2, ok=False))
        recorder.on_attempt(attempt(3, deployment="unpriced"))
        assert await store.list_model_calls() == []  # nothing written synchronously
    assert recorder.written == 3
    calls = await store.list_model_calls()
    assert [c.request_id for c in calls] == ["r3", "r2", "r1"]
    r3, r2, r1 = calls
    assert (r1.cost_usd, r1.price_unknown, r1.agent, r1.session_id, r1.user, r1.channel) == (
        0.00725,
        False,
        "main",
        "s1",
        "ann",
        "web",
    )
    assert (r2.ok, r2.cost_usd, r2.error, r2.status) == (
        False,
        0.0,
        "ProviderUnavailableError: 503",
        503,
    )
    assert (r3.cost_usd, r3.price_unknown) == (None, True)


async def test_recorder_flushes_on_its_own(store: Store) -> None:
    recorder = CostRecorder(store, CostTable({"a": FULL}), flush_interval=0.01)
    await recorder.start()
    try:
        recorder.on_attempt(attempt(1))
        for _ in range(200):
            if recorder.written:
                break
            await asyncio.sleep(0.01)
        assert recorder.written == 1
    finally:
        await recorder.aclose()


async def test_recorder_survives_a_closed_store(store: Store) -> None:
    recorder = CostRecorder(store, CostTable({"a": FULL}), max_pending=2)
    await store.close()
    for n in range(3):
        recorder.on_attempt(attempt(n))
    await recorder.flush()
    assert (recorder.written, recorder.dropped) == (0, 3)
