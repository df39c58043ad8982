"""The response cache and the splits from config.toml: parsing, checks and wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.router._kit import ask, model_requests, scenario

from staffer.config import load_config
from staffer.errors import ConfigError
from staffer.router import (
    CachedModel,
    MetricsObserver,
    ReloadableModel,
    SplitConfig,
    Splits,
    build_traffic_model,
)


def deployments(*urls: str) -> str:
    return "".join(
        f'[deployments.d{i}]\nprovider = "openai"\nmodel = "m"\nbase_url = "{url}"\n'
        for i, url in enumerate(urls)
    )


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def test_cache_ttl_wraps_the_router_and_honours_opt_out(tmp_path: Path, servers: Any) -> None:
    upstream = servers(scenario("answer"))
    config = load(
        tmp_path,
        deployments(upstream.openai_base_url)
        + '[aliases.main]\ndeployments = ["d0"]\n'
        + "[router]\ncache_ttl = 30\ncache_max_entries = 5\n",
    )
    assert (config.traffic.cache.ttl, config.traffic.cache.max_entries) == (30.0, 5)
    metrics = MetricsObserver()
    model = build_traffic_model(config, {}, splits=Splits(), cache_metrics=metrics)
    assert isinstance(model, ReloadableModel)
    cache = model.current.model
    assert isinstance(cache, CachedModel)
    assert (cache.ttl, cache.max_entries) == (30.0, 5)
    assert (await model.complete(ask("q"))).text == "answer"
    assert (await model.complete(ask("q", metadata={"user": "other"}))).text == "answer"
    assert model_requests(upstream) == 1  # the second identical request never left
    await model.complete(ask("q", metadata={"cache": "no"}))
    assert model_requests(upstream) == 2  # opted out: sent, and not counted
    assert metrics.snapshot()["cache"] == {"hits": 1, "misses": 1, "hit_rate": 0.5}
    await model.aclose()


def test_no_cache_and_no_router_leaves_the_bare_adapter(tmp_path: Path) -> None:
    config = load(tmp_path, '[model]\nname = "openai:m"\nbase_url = "http://127.0.0.1:9/v1"\n')
    model = build_traffic_model(config, {}, splits=Splits())
    assert model is not None
    assert not isinstance(model, ReloadableModel)


def test_a_split_over_a_new_alias_creates_it(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/v1"
    config = load(
        tmp_path,
        deployments(url, url)
        + '[router]\ndefault_alias = "release"\n'
        + '[splits.r]\nalias = "release"\nkind = "canary"\nstable = "d0"\ncandidate = "d1"\n'
        + "percent = 5\nmax_error_rate = 0.1\nmax_p95_latency = 4.5\nmin_requests = 30\n",
    )
    assert config.router.aliases["release"].deployments == ("d0", "d1")
    assert config.traffic.splits["r"] == SplitConfig(
        "r", "release", "canary", "d0", "d1", percent=5.0, max_error_rate=0.1,
        max_p95_latency=4.5, min_requests=30,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "key", "problem"),
    [
        ("[router]\ncache_ttl = -1\n", "router.cache_ttl", "negative"),
        ('[splits.s]\nalias = "a"\nkind = "linear"\nstable = "d0"\ncandidate = "d1"\n',
         "splits.s.kind", "unknown kind"),
        ('[splits.s]\nalias = "a"\nkind = "canary"\nstable = "d0"\ncandidate = "dx"\n',
         "splits.s.candidate", "no deployment named 'dx'"),
        ('[splits.s]\nalias = "a"\nkind = "canary"\nstable = "d0"\ncandidate = "d1"\n'
         "percent = 150\n", "splits.s.percent", "not a percentage"),
        ('[splits.s]\nalias = "a"\nkind = "canary"\nstable = "d0"\ncandidate = "d1"\n'
         "shadow = true\n", "splits.s.shadow", "only for champion_challenger"),
        ('[splits.s]\nalias = "d0"\nkind = "canary"\nstable = "d0"\ncandidate = "d1"\n',
         "splits.s.alias", "names a deployment"),
        ('[splits.s]\nalias = "a"\nkind = "canary"\nstable = "d0"\ncandidate = "d1"\n'
         "max_error_rate = 2\n", "splits.s.max_error_rate", "not a fraction"),
        ('[splits.s]\nalias = "a"\nkind = "canary"\nstable = "d0"\ncandidate = "d1"\n'
         "percnt = 5\n", "splits.s.percnt", "unknown key"),
    ],
)  # fmt: skip
def test_bad_traffic_settings(tmp_path: Path, extra: str, key: str, problem: str) -> None:
    url = "http://127.0.0.1:9/v1"
    with pytest.raises(ConfigError) as error:
        load(tmp_path, deployments(url, url) + extra)
    assert error.value.key == key
    assert problem in error.value.problem
