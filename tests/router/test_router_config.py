"""config.toml's [deployments], [aliases] and [router]: loading, errors by key, the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.gateway._sse import stream_turn
from tests.router._kit import ask, deployment, router_config, scenario

from staffer.config import Config, ModelConfig, load_config, render_config_docs
from staffer.config._docs import ROUTING_EXAMPLE
from staffer.errors import ConfigError
from staffer.router import (
    SLO,
    BreakerConfig,
    DeploymentConfig,
    NoDeploymentAvailableError,
    Prices,
    Router,
    Timeouts,
    gateway_router_config,
)

GOOD = """
[deployments.gpt]
provider = "openai"
model = "gpt-4o-mini"
api_key_env = "MY_OPENAI_KEY"
price_input = 0.15
price_output = 0.6
price_cached_input = 0.075
context_window = 128000
capabilities = ["tools", "json"]
max_retries = 3
weight = 2
timeout_connect = 2
timeout_ttft = 5
timeout_idle = 7
timeout_total = 90
breaker_failures = 4
breaker_cooldown = 12

[deployments.local]
provider = "ollama"
model = "llama3.1:8b"

[aliases.smart]
deployments = ["gpt", "local"]
strategy = "latency"

[router]
default_alias = "smart"
slo_ttft = 1.5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.key
    assert info.value.problem
    assert info.value.fix
    return info.value


def test_a_full_routing_config_loads(tmp_path):
    rc = load_config(write(tmp_path, GOOD)).router
    gpt = rc.deployments["gpt"]
    assert gpt == DeploymentConfig(
        name="gpt",
        provider="openai",
        model="gpt-4o-mini",
        api_key_env="MY_OPENAI_KEY",
        prices=Prices(0.15, 0.6, 0.075),
        context_window=128000,
        capabilities=frozenset({"tools", "json"}),
        max_retries=3,
        weight=2.0,
        timeouts=Timeouts(connect=2, ttft=5, idle=7, total=90),
        breaker=BreakerConfig(failures=4, cooldown=12),
    )
    assert rc.deployments["local"].model == "llama3.1:8b"
    assert rc.deployments["local"].prices == Prices()
    assert rc.aliases["smart"].deployments == ("gpt", "local")
    assert rc.aliases["smart"].strategy == "latency"
    assert rc.default_alias == "smart"
    assert rc.slo == SLO(ttft=1.5)


def test_the_documented_example_loads(tmp_path):
    assert ROUTING_EXAMPLE in render_config_docs()
    rc = load_config(write(tmp_path, ROUTING_EXAMPLE)).router
    assert set(rc.aliases) == {"smart", "cheap"}


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            '[deployments.gpt]\nprovider = "openai"\nmodel = "m"\nprice_input = "cheap"\n',
            "deployments.gpt.price_input",
            "expected a number",
        ),
        (
            '[deployments.gpt]\nprovider = "openai"\nmodel = "m"\nprices = {input = 1}\n',
            "deployments.gpt.prices",
            "unknown key",
        ),
        (
            '[deployments.gpt]\nprovider = "openai"\nmodel = "m"\nprice_output = -1\n',
            "deployments.gpt.price_output",
            "too small",
        ),
        ('[deployments.gpt]\nmodel = "m"\n', "deployments.gpt.provider", "is missing"),
        ('[deployments.gpt]\nprovider = "foo"\nmodel = "m"\n', "deployments.gpt.provider", "foo"),
        (
            '[deployments.gpt]\nprovider = "openai"\nmodel = "m"\ncapabilities = ["tools", "x"]\n',
            "deployments.gpt.capabilities[1]",
            "unknown capability 'x'",
        ),
        (
            '[deployments.gpt]\nprovider = "openai"\nmodel = "m"\napi_key_env = "sk-123"\n',
            "deployments.gpt.api_key_env",
            "the key itself",
        ),
        (
            '[deployments.gpt]\nprovider = "openai"\nmodel = "m"\ntimeout_ttft = 0\n',
            "deployments.gpt.timeout_ttft",
            "too small",
        ),
        ("[deployments]\ngpt = 3\n", "deployments.gpt", "must be a table"),
        (
            '[deployments.gpt4]\nprovider = "openai"\nmodel = "m"\n'
            '[aliases.smart]\ndeployments = ["gpt4", "gtp4"]\n',
            "aliases.smart.deployments[1]",
            "no deployment named 'gtp4'; known: gpt4",
        ),
        (
            '[deployments.a]\nprovider = "openai"\nmodel = "m"\n'
            '[aliases.smart]\ndeployments = ["a"]\nstrategy = "fastest"\n',
            "aliases.smart.strategy",
            "unknown strategy",
        ),
        ("[aliases.smart]\ndeployments = []\n", "aliases.smart.deployments", "empty"),
        ('[router]\ndefault_alias = "smrt"\n', "router.default_alias", "no alias"),
        (
            '[deployments.a]\nprovider = "openai"\nmodel = "m"\n[model]\nname = "smart"\n',
            "model.name",
            "neither an alias nor a deployment",
        ),
    ],
)
def test_mistakes_name_the_key(tmp_path, text, key, problem):
    err = error_for(tmp_path, text)
    assert err.key == key
    assert problem in err.problem
    if "price_input" in key:
        assert "got 'cheap'" in err.problem


def test_a_misspelt_deployment_gets_a_suggestion(tmp_path):
    text = '[deployments.gpt4]\nprovider = "openai"\nmodel = "m"\n'
    err = error_for(tmp_path, text + '[aliases.smart]\ndeployments = ["gtp4"]\n')
    assert err.fix is not None
    assert "did you mean 'gpt4'" in err.fix
    err = error_for(tmp_path, text.replace('model = "m"', 'model = "m"\nprice_inptu = 1'))
    assert err.key == "deployments.gpt4.price_inptu"
    assert err.fix is not None
    assert "did you mean `price_input`" in err.fix


def test_plain_model_section_stays_a_bare_adapter():
    assert gateway_router_config(Config(model=ModelConfig(name="openai:gpt-4o-mini"))) is None


def test_model_section_joins_the_deployments_as_model(tmp_path):
    text = GOOD.replace('default_alias = "smart"\n', "")
    text += '[model]\nname = "openai:gpt-4o"\nbase_url = "http://127.0.0.1:9/v1"\n'
    rc = gateway_router_config(load_config(write(tmp_path, text)))
    assert rc is not None
    assert rc.default_alias == "model"
    assert rc.deployments["model"].model == "gpt-4o"
    assert rc.deployments["model"].base_url == "http://127.0.0.1:9/v1"
    # naming an alias in [model] makes it the default route
    rc = gateway_router_config(load_config(write(tmp_path, GOOD + '[model]\nname = "smart"\n')))
    assert rc is not None
    assert "model" not in rc.deployments
    assert rc.default_alias == "smart"


async def test_a_deployment_without_its_key_is_disabled_and_the_rest_serve(servers):
    b = servers(scenario("from b"))
    keyless = DeploymentConfig("hosted", "openai", "gpt-4o-mini", api_key_env="NOT_SET_KEY")
    config = router_config(keyless, deployment("b", b))
    config.aliases["only"] = type(config.aliases["main"])("only", ("hosted",))
    async with Router(config, env={}) as router:
        assert (await router.complete(ask())).text == "from b"
        with pytest.raises(NoDeploymentAvailableError) as info:
            await router.complete(ask(model="only"))
        states = {s["name"]: s for s in router.deployment_states()}
    assert "NOT_SET_KEY is not set" in str(info.value)
    assert states["hosted"]["state"] == "disabled"
    assert "deployments.hosted.api_key_env" in states["hosted"]["disabled_reason"]


def test_no_usable_deployment_refuses_to_start():
    keyless = DeploymentConfig("hosted", "openai", "gpt-4o-mini", api_key_env="NOT_SET_KEY")
    with pytest.raises(ConfigError) as info:
        Router(router_config(keyless), env={})
    assert info.value.key == "deployments.hosted.api_key_env"


def test_gateway_serves_an_alias_with_fallback(live_gateway, servers):
    broken = servers(scenario("never", fault_rate={"rate": 1.0, "kinds": ["500"]}))
    extra = (
        f'[deployments.broken]\nprovider = "openai"\nmodel = "b"\n'
        f'base_url = "{broken.openai_base_url}"\nmax_retries = 0\n'
        '[aliases.smart]\ndeployments = ["broken", "model"]\n'
        '[router]\ndefault_alias = "smart"\n'
    )
    gw = live_gateway(scenario("served by the [model] deployment"), config=extra)
    with gw.client() as client:
        session_id = client.post("/api/sessions").json()["id"]
        events = stream_turn(client, session_id, "hello")
    assert events[-1]["status"] == "done"
    assert events[-1]["text"] == "served by the [model] deployment"
    assert len(broken.requests) == 1
