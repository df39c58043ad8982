"""Tiering: rules map requests to economy / mid / premium aliases; spend moves them down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.router._kit import ask, deployment, model_requests, scenario

from staffer.config import Config, load_config
from staffer.errors import ConfigError
from staffer.models import ToolSpec
from staffer.router import (
    AliasConfig,
    CostTable,
    MetricsObserver,
    Prices,
    RouterConfig,
    SpendDowngrade,
    Splits,
    TieredModel,
    TierRule,
    TiersConfig,
    TrafficConfig,
    build_stack,
    classify,
)

TOOL = ToolSpec("read_file", "Read a file.", {"type": "object"})
TIERS = TiersConfig(
    aliases={"economy": "cheap", "mid": "normal", "premium": "best"},
    rules=(
        TierRule("premium", metadata=(("user", "boss"),)),
        TierRule("premium", keywords=("Contract", "legal")),
        TierRule("premium", min_chars=2000),
        TierRule("mid", tools=True),
        TierRule("economy", max_chars=200),
    ),
)


@pytest.mark.parametrize(
    ("request_kw", "tier"),
    [
        ({"text": "hi", "metadata": {"user": "boss"}}, "premium"),
        ({"text": "please review this CONTRACT"}, "premium"),
        ({"text": "x" * 2500}, "premium"),
        ({"text": "hi", "tools": [TOOL]}, "mid"),
        ({"text": "hi"}, "economy"),
        ({"text": "y" * 500}, "mid"),  # no rule: the default
    ],
)
def test_rules_in_order_first_match_wins(request_kw: dict[str, Any], tier: str) -> None:
    assert classify(ask(**request_kw), TIERS) == tier


def test_spend_downgrade_drops_one_tier_then_everything_to_economy() -> None:
    spent = [0.0]
    hook = SpendDowngrade(10.0, threshold=0.8, spent=lambda: spent[0])
    assert hook("premium", ask()) == "premium"
    spent[0] = 8.0
    assert [hook(t, ask()) for t in ("premium", "mid", "economy")] == ["mid", "economy", "economy"]
    spent[0] = 10.0
    assert hook("premium", ask()) == "economy"


async def test_tiered_model_routes_to_the_tier_alias_and_downgrades_on_spend(servers: Any) -> None:
    cheap, normal, best = (servers(scenario(text)) for text in ("cheap", "normal", "best"))
    deployments = {
        d.name: d
        for d in (
            deployment("cheap", cheap, prices=Prices(0.0, 0.0)),
            deployment("normal", normal, prices=Prices(1.0, 1.0)),
            # 1 input and 1 output token at $2 each: $4, past half the $5 limit
            deployment("best", best, prices=Prices(2_000_000.0, 2_000_000.0)),
        )
    }
    aliases = {n: AliasConfig(n, (n,)) for n in ("cheap", "normal", "best")}
    router = RouterConfig(deployments, aliases, default_alias="normal")
    metrics = MetricsObserver(costs=CostTable.from_config(router))
    tiers = TiersConfig(
        aliases=TIERS.aliases, rules=TIERS.rules, spend_limit_usd=5.0, spend_threshold=0.5
    )
    built = build_stack(
        Config(router=router, traffic=TrafficConfig(tiers=tiers)),
        {},
        splits=Splits(),
        observers=[metrics],
        spent=lambda: metrics.cost_usd(metrics.pairs.values()),
    )
    assert built is not None
    model = built.model
    assert isinstance(model, TieredModel)
    assert (await model.complete(ask("hi"))).text == "cheap"
    assert (await model.complete(ask("hi", model="auto"))).text == "cheap"
    assert (await model.complete(ask("hi", model="normal"))).text == "normal"  # named: as is
    boss = {"user": "boss"}
    assert (await model.complete(ask("hi", metadata=boss))).text == "best"  # costs ≥ $2.5
    assert (await model.complete(ask("hi", metadata=boss))).text == "normal"  # one tier down
    assert model.counts == {"economy": 2, "mid": 1, "premium": 1}
    assert model.downgraded == 1
    assert model_requests(best) == 1
    await model.aclose()


def test_tiers_from_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = (
        '[deployments.a]\nprovider = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[aliases.small]\ndeployments = ["a"]\n[aliases.big]\ndeployments = ["a"]\n'
        '[tiers]\neconomy = "small"\nmid = "small"\npremium = "big"\nspend_limit_usd = 20\n'
        '[[tiers.rules]]\ntier = "premium"\nmetadata = { user = "boss" }\n'
        '[[tiers.rules]]\ntier = "economy"\nmax_chars = 100\ntools = false\n'
        'keywords = ["quick"]\n'
    )
    path.write_text(text)
    tiers = load_config(path).traffic.tiers
    assert tiers is not None
    assert tiers.aliases == {"economy": "small", "mid": "small", "premium": "big"}
    assert tiers.rules == (
        TierRule("premium", metadata=(("user", "boss"),)),
        TierRule("economy", max_chars=100, tools=False, keywords=("quick",)),
    )
    assert tiers.spend_limit_usd == 20.0
    path.write_text(text.replace('tier = "economy"', 'tier = "cheapest"'))
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert bad.value.key == "tiers.rules[1].tier"
    path.write_text(text.replace('premium = "big"', 'premium = "huge"'))
    with pytest.raises(ConfigError) as bad:
        load_config(path)
    assert bad.value.key == "tiers.premium"
