"""Canary, blue–green and champion–challenger splits over real scripted model servers."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from tests.router._kit import ask, deployment, model_requests, router_config, scenario

from staffer.config import Config
from staffer.models import Model
from staffer.router import (
    Built,
    EventLog,
    RouterEvent,
    SplitConfig,
    Splits,
    TrafficConfig,
    build_stack,
)


def stack(splits: Splits, *deployments: Any, split: SplitConfig, seed: int = 7) -> Built:
    config = Config(router=router_config(*deployments), traffic=TrafficConfig({split.name: split}))
    built = build_stack(config, {}, splits=splits, rng=random.Random(seed))
    assert built is not None
    return built


async def text(model: Model, **kw: Any) -> str:
    return (await model.complete(ask(**kw))).text


async def test_canary_sends_its_percent_to_the_candidate_first(servers: Any) -> None:
    stable, candidate = servers(scenario("stable")), servers(scenario("candidate"))
    split = SplitConfig("roll", "main", "canary", "stable", "candidate", percent=10)
    splits = Splits()
    built = stack(
        splits, deployment("stable", stable), deployment("candidate", candidate), split=split
    )
    answers = [await text(built.model) for _ in range(400)]
    share = answers.count("candidate") / 400
    assert 0.06 < share < 0.14, share
    assert model_requests(candidate) == answers.count("candidate")
    assert model_requests(stable) == answers.count("stable")
    (report,) = splits.report()
    assert report["state"] == "active"
    assert report["percent"] == 10
    assert report["arms"]["candidate"]["requests"] == answers.count("candidate")
    assert report["arms"]["stable"]["latency_p95"] is not None
    await built.model.aclose()


async def test_canary_rolls_back_when_the_candidate_fails(servers: Any) -> None:
    stable = servers(scenario("stable"))
    broken = servers(scenario("never", fault_rate={"rate": 1.0, "kinds": ["500"], "seed": 1}))
    split = SplitConfig(
        "roll", "main", "canary", "stable", "candidate", percent=50,
        max_error_rate=0.2, min_requests=5,
    )  # fmt: skip
    log = EventLog()
    splits = Splits(on_event=log.on_event)
    built = stack(
        splits,
        deployment("stable", stable),
        deployment("candidate", broken, max_retries=0),
        split=split,
    )
    # Every caller is answered: a failed candidate falls back to stable.
    answers = [await text(built.model) for _ in range(40)]
    assert set(answers) == {"stable"}
    state = splits.get("roll")
    assert state.state == "rolled_back"
    assert state.percent == 0
    assert "error rate 100.0% > 20.0%" in (state.reason or "")
    tried = model_requests(broken)
    assert tried == 5  # rolled back at min_requests; no candidate traffic since
    (event,) = log.recent()
    assert (event.kind, event.deployment, event.alias) == ("rollback", "candidate", "main")
    assert splits.report()[0]["arms"]["candidate"]["errors"] == 5
    await built.model.aclose()


async def test_canary_rolls_back_on_p95_latency(servers: Any) -> None:
    stable, slow = servers(scenario("stable")), servers(scenario("slow", ttft_ms=60))
    split = SplitConfig(
        "roll", "main", "canary", "stable", "candidate", percent=100,
        max_p95_latency=0.03, min_requests=3,
    )  # fmt: skip
    splits = Splits()
    built = stack(splits, deployment("stable", stable), deployment("candidate", slow), split=split)
    answers = [await text(built.model) for _ in range(6)]
    assert answers[:3] == ["slow"] * 3
    assert answers[3:] == ["stable"] * 3
    assert "p95 latency" in (splits.get("roll").reason or "")
    await built.model.aclose()


async def test_blue_green_sends_everything_to_the_active_arm_and_flips(servers: Any) -> None:
    blue, green = servers(scenario("blue")), servers(scenario("green"))
    split = SplitConfig("bg", "main", "blue_green", "blue", "green")
    events: list[RouterEvent] = []
    splits = Splits(on_event=events.append)
    built = stack(splits, deployment("blue", blue), deployment("green", green), split=split)
    assert {await text(built.model) for _ in range(20)} == {"blue"}
    splits.flip("bg")
    assert {await text(built.model) for _ in range(20)} == {"green"}
    assert splits.report()[0]["active"] == "candidate"
    splits.flip("bg")
    assert await text(built.model) == "blue"
    assert [e.kind for e in events] == ["flip", "flip"]
    await built.model.aclose()


async def test_shadow_copy_goes_to_the_challenger_without_delaying_the_caller(
    servers: Any,
) -> None:
    champion = servers(scenario("champion says hi"))
    challenger = servers(scenario("challenger says hello", ttft_ms=300))
    split = SplitConfig("cc", "main", "champion_challenger", "champ", "chall", shadow=True)
    splits = Splits()
    built = stack(
        splits, deployment("champ", champion), deployment("chall", challenger), split=split
    )
    started = time.monotonic()
    assert await text(built.model, metadata={"user": "ann"}) == "champion says hi"
    assert time.monotonic() - started < 0.25  # the slow challenger did not hold the caller up
    state = splits.get("cc")
    for _ in range(200):
        if state.shadow_in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert model_requests(challenger) == 1
    body = next(r.body for r in challenger.requests if r.path == "/v1/chat/completions")
    assert body["messages"][-1]["content"] == "hi"
    (report,) = splits.report()
    (pair,) = report["pairs"]
    assert pair["prompt"] == "hi"
    assert pair["champion"]["text"] == "champion says hi"
    assert pair["champion"]["ok"]
    assert pair["challenger"]["text"] == "challenger says hello"
    assert pair["challenger"]["ok"]
    assert pair["challenger"]["latency"] > pair["champion"]["latency"]
    assert report["arms"]["stable"]["requests"] == 1
    assert report["arms"]["candidate"]["requests"] == 1
    assert report["arms"]["candidate"]["output_tokens"] > 0
    assert report["shadow_requests"] == {"sent": 1, "skipped": 0, "failed": 0, "in_flight": 0}
    await built.model.aclose()


async def test_shadow_failures_are_swallowed_and_concurrency_is_bounded(servers: Any) -> None:
    champion = servers(scenario("champion"))
    challenger = servers(scenario("x", ttft_ms=100, faults=["500"]))
    split = SplitConfig(
        "cc", "main", "champion_challenger", "champ", "chall", shadow=True, shadow_concurrency=1
    )
    splits = Splits()
    built = stack(
        splits,
        deployment("champ", champion),
        deployment("chall", challenger, max_retries=0),
        split=split,
    )
    answers = await asyncio.gather(*(text(built.model) for _ in range(3)))
    assert answers == ["champion"] * 3
    model = built.model
    assert hasattr(model, "drain")
    await model.drain()
    counts = splits.report()[0]["shadow_requests"]
    assert counts == {"sent": 1, "skipped": 2, "failed": 1, "in_flight": 0}
    (pair,) = splits.report()[0]["pairs"]
    assert pair["challenger"]["ok"] is False
    assert "500" in pair["challenger"]["error"]
    await model.aclose()


async def test_champion_challenger_share_falls_back_to_the_champion(servers: Any) -> None:
    champion, challenger = servers(scenario("champion")), servers(scenario("challenger"))
    split = SplitConfig("cc", "main", "champion_challenger", "champ", "chall", percent=100)
    splits = Splits()
    built = stack(
        splits,
        deployment("champ", champion),
        deployment("chall", challenger, max_retries=0),
        split=split,
    )
    assert await text(built.model) == "challenger"
    challenger.set_scenario(scenario("x", faults=["500"]))
    assert await text(built.model) == "champion"  # the challenger failed: champion answers
    await built.model.aclose()


def test_unchanged_split_keeps_its_state_across_a_rebind() -> None:
    deps = (deployment("a", "http://127.0.0.1:9/v1"), deployment("b", "http://127.0.0.1:9/v1"))
    config = router_config(*deps)
    split = SplitConfig("bg", "main", "blue_green", "a", "b")
    splits = Splits()
    *_, commit = splits.bind(config, {"bg": split})
    commit()
    splits.flip("bg")
    *_, commit = splits.bind(config, {"bg": split})
    commit()
    assert splits.get("bg").active == "candidate"
    *_, commit = splits.bind(config, {"bg": SplitConfig("bg", "main", "blue_green", "b", "a")})
    commit()
    assert splits.get("bg").active == "stable"  # changed settings: a fresh split
