"""The model_calls part of the store contract (runs against every `Store`, see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from staffer.models import Usage
from staffer.store import ModelCallRecord, Store

StoreFactory = Callable[[], Store]


def call(
    request_id: str = "r1",
    *,
    cost: float | None = 0.001,
    at: float = 1000.0,
    **kw: object,
) -> ModelCallRecord:
    fields: dict[str, object] = {
        "request_id": request_id,
        "alias": "fast",
        "deployment": "a",
        "attempt": 1,
        "ok": True,
        "usage": Usage(100, 20, 10),
        "cost_usd": cost,
        "price_unknown": cost is None,
        "duration": 0.5,
        "created_at": at,
        "ttft": 0.1,
        "agent": "main",
        "session_id": "s1",
        "user": "ann",
        "channel": "web",
    }
    fields.update(kw)
    return ModelCallRecord(**fields)  # type: ignore[arg-type]


async def test_round_trip_newest_first(store: Store) -> None:
    records = [
        call("r1", at=1.0),
        call("r2", at=2.0, ok=False, error="ProviderUnavailableError: 503", status=503, cost=0.0),
        call("r3", at=3.0, cost=None, ttft=None, agent=None, session_id=None, user=None),
    ]
    await store.record_model_calls(records)
    assert await store.list_model_calls() == records[::-1]
    assert await store.list_model_calls(limit=1) == [records[2]]
    assert await store.list_model_calls(since=2.0) == records[:0:-1]
    assert await store.list_model_calls(session_id="s1") == records[1::-1]


async def test_empty_batch_is_a_no_op(store: Store) -> None:
    await store.record_model_calls([])
    assert await store.list_model_calls() == []
    assert await store.model_call_summary("deployment") == []


async def test_summary_sums_cost_exactly_and_flags_unknown_prices(store: Store) -> None:
    # 0.1 + 0.2 are not exact in binary floats; the stored sum must be.
    await store.record_model_calls(
        [
            call("r1", cost=0.1),
            call("r2", cost=0.2),
            call("r3", cost=None),
            call("r4", cost=0.05, deployment="b", ok=False),
        ]
    )
    by_deployment = await store.model_call_summary("deployment")
    assert [s.key for s in by_deployment] == ["a", "b"]  # the most expensive first
    a, b = by_deployment
    assert a.cost_usd == 0.3
    assert a.calls == 3
    assert a.unknown_price_calls == 1
    assert a.failed_calls == 0
    assert a.usage == Usage(300, 60, 30)
    assert (b.calls, b.failed_calls, b.cost_usd) == (1, 1, 0.05)


@pytest.mark.parametrize(
    ("by", "field"),
    [
        ("agent", "agent"),
        ("session", "session_id"),
        ("user", "user"),
        ("channel", "channel"),
    ],
)
async def test_summary_by_every_dimension(store: Store, by: str, field: str) -> None:
    await store.record_model_calls(
        [call("r1", **{field: "x"}), call("r2", **{field: "x"}), call("r3", **{field: None})]
    )
    summary = await store.model_call_summary(by)  # type: ignore[arg-type]
    assert [(s.key, s.calls) for s in summary] == [("x", 2), (None, 1)]
    assert summary[0].cost_usd == 0.002


async def test_summary_time_range(store: Store) -> None:
    await store.record_model_calls([call(f"r{i}", at=float(i)) for i in range(10)])
    (summary,) = await store.model_call_summary("alias", since=3.0, until=7.0)
    assert summary.calls == 4  # 3, 4, 5, 6: since is inclusive, until exclusive


async def test_unknown_dimension_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot group"):
        await store.model_call_summary("deployment; DROP TABLE runs")  # type: ignore[arg-type]


async def test_calls_survive_reopening(store_factory: StoreFactory) -> None:
    record = call()
    async with store_factory() as store:
        await store.record_model_calls([record, replace(record, request_id="r2")])
    async with store_factory() as store:
        assert len(await store.list_model_calls()) == 2


async def test_large_batch(store: Store) -> None:
    await store.record_model_calls([call(f"r{i}", at=float(i)) for i in range(1000)])
    (summary,) = await store.model_call_summary("deployment")
    assert summary.calls == 1000
    assert summary.cost_usd == 1.0
