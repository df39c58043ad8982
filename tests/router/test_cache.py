"""CachedModel in front of a real adapter talking to the scripted model server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from staffer.errors import ProviderError
from staffer.models import (
    Message,
    ModelEvent,
    ModelRequest,
    OpenAIChatModel,
    TextDelta,
    ToolSpec,
)
from staffer.router import CachedModel, MetricsObserver, cache_key
from staffer.testing.model_server import ScriptedModelServer

SCENARIO = {
    "chunk_chars": 4,
    "scripts": [{"match": "", "steps": [{"text": "Cached answers are cheap."}]}],
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ask(text: str = "hi", **kw: object) -> ModelRequest:
    return ModelRequest(messages=[Message(role="user", content=text)], **kw)  # type: ignore[arg-type]


@pytest.fixture
async def server() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer(SCENARIO) as running:
        yield running


def upstream(server: ScriptedModelServer) -> OpenAIChatModel:
    return OpenAIChatModel("scripted", base_url=server.openai_base_url, api_key="sk-test")


async def collect(model: CachedModel, request: ModelRequest) -> list[ModelEvent]:
    return [event async for event in model.stream(request)]


def model_calls(server: ScriptedModelServer) -> int:
    return sum(1 for r in server.requests if r.path == "/v1/chat/completions")


async def test_hit_replays_identical_events_without_calling_upstream(
    server: ScriptedModelServer,
) -> None:
    metrics = MetricsObserver()
    async with CachedModel(upstream(server), ttl=60, metrics=metrics) as model:
        first = await collect(model, ask(metadata={"session": "a"}))
        second = await collect(model, ask(metadata={"session": "b"}))  # metadata is not keyed
        answer = await model.complete(ask())
    assert len([e for e in first if isinstance(e, TextDelta)]) > 3
    assert second == first
    assert answer.text == "Cached answers are cheap."
    assert model_calls(server) == 1
    assert (model.hits, model.misses) == (2, 1)
    assert metrics.snapshot()["cache"] == {"hits": 2, "misses": 1, "hit_rate": 2 / 3}


async def test_key_covers_the_normalized_request(server: ScriptedModelServer) -> None:
    base = ask()
    assert cache_key(base) == cache_key(ask(metadata={"user": "x"}))
    variants = [
        ask("other"),
        ask(model="smart"),
        ask(max_tokens=10),
        ask(temperature=0.5),
        ask(tools=[ToolSpec("t", "a tool", {"type": "object"})]),
    ]
    assert len({cache_key(v) for v in variants} | {cache_key(base)}) == 6
    async with CachedModel(upstream(server), ttl=60) as model:
        await collect(model, ask())
        await collect(model, ask("other"))
    assert model_calls(server) == 2


async def test_ttl_expiry(server: ScriptedModelServer) -> None:
    clock = Clock()
    async with CachedModel(upstream(server), ttl=10, clock=clock) as model:
        await collect(model, ask())
        clock.now = 9.9
        await collect(model, ask())
        assert model_calls(server) == 1
        clock.now = 10.0
        await collect(model, ask())
        assert model_calls(server) == 2
        assert (model.hits, model.misses) == (1, 2)


async def test_lru_bound(server: ScriptedModelServer) -> None:
    async with CachedModel(upstream(server), ttl=60, max_entries=2) as model:
        for text in ("a", "b", "a", "c", "a", "b"):
            await collect(model, ask(text))
        # a stays (recently used), b was evicted by c, so b is fetched again.
        assert model_calls(server) == 4
        assert len(model) == 2


async def test_opt_out_per_request(server: ScriptedModelServer) -> None:
    async with CachedModel(upstream(server), ttl=60) as model:
        no = ask(metadata={"cache": "no"})
        await collect(model, no)
        await collect(model, no)
        assert model_calls(server) == 2
        assert (model.hits, model.misses, model.bypassed) == (0, 0, 2)
        assert len(model) == 0


async def test_errors_are_not_cached(server: ScriptedModelServer) -> None:
    server.set_scenario({**SCENARIO, "faults": ["500", {"kind": "drop", "after_chunks": 3}]})
    async with CachedModel(upstream(server), ttl=60) as model:
        with pytest.raises(ProviderError):
            await collect(model, ask())
        with pytest.raises(ProviderError):
            await collect(model, ask())
        assert len(model) == 0
        good = await collect(model, ask())
        assert await collect(model, ask()) == good
    assert model_calls(server) == 3


async def test_abandoned_stream_is_not_cached(server: ScriptedModelServer) -> None:
    async with CachedModel(upstream(server), ttl=60) as model:
        stream = model.stream(ask())
        async for _ in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]
        assert len(model) == 0
        await collect(model, ask())
        assert len(model) == 1
