"""Splits, the cache and reloads through a live gateway: config.toml in, HTTP out."""

from __future__ import annotations

from typing import Any

from tests.gateway._sse import stream_turn
from tests.router._kit import model_requests, scenario

from staffer.testing.model_server import ScriptedModelServer


def deployments(**servers: ScriptedModelServer) -> str:
    return "".join(
        f'[deployments.{name}]\nprovider = "openai"\nmodel = "scripted"\n'
        f'base_url = "{server.openai_base_url}"\nmax_retries = 0\n'
        for name, server in servers.items()
    )


def turn(client: Any, text: str = "hello") -> str:
    session = client.post("/api/sessions", json={"title": "t"}).json()
    events = stream_turn(client, session["id"], text)
    assert events[-1]["status"] == "done", events[-1]
    return str(events[-1]["text"])


def chat(client: Any, text: str = "hi", model: str = "main") -> str:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_blue_green_flip_over_http(live_gateway: Any, servers: Any) -> None:
    blue, green = servers(scenario("blue")), servers(scenario("green"))
    config = (
        deployments(blue=blue, green=green)
        + '[router]\ndefault_alias = "main"\n'
        + '[splits.release]\nalias = "main"\nkind = "blue_green"\n'
        + 'stable = "blue"\ncandidate = "green"\n'
    )
    gw = live_gateway(None, config=config)
    with gw.client() as client:
        assert turn(client) == "blue"
        assert chat(client) == "blue"  # /v1 sees the alias through the wrappers
        assert "main" in [m["id"] for m in client.get("/v1/models").json()["data"]]
        (split,) = client.get("/api/router/splits").json()["splits"]
        assert (split["kind"], split["active"], split["active_deployment"]) == (
            "blue_green",
            "stable",
            "blue",
        )
        flipped = client.post("/api/router/splits/release/flip")
        assert flipped.status_code == 200
        assert flipped.json()["active_deployment"] == "green"
        assert turn(client) == "green"
        assert chat(client) == "green"
        client.post("/api/router/splits/release/flip")
        assert chat(client) == "blue"
        assert model_requests(green) == 2

        missing = client.post("/api/router/splits/nope/flip")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "unknown_split"
        events = client.get("/api/router/events").json()["events"]
        assert [e["kind"] for e in events[:2]] == ["flip", "flip"]


def test_reload_swaps_aliases_and_refuses_a_broken_file(live_gateway: Any, servers: Any) -> None:
    one, two = servers(scenario("one")), servers(scenario("two"))
    base = deployments(one=one, two=two) + '[router]\ndefault_alias = "main"\n'
    gw = live_gateway(None, config=base + '[aliases.main]\ndeployments = ["one"]\n')
    with gw.client() as client:
        assert chat(client) == "one"
        gw.home.config_file.write_text(base + '[aliases.main]\ndeployments = ["two"]\n')
        reloaded = client.post("/api/router/reload")
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["generation"] == 2
        assert chat(client) == "two"
        assert turn(client) == "two"

        gw.home.config_file.write_text(base + '[aliases.main]\ndeployments = ["three"]\n')
        broken = client.post("/api/router/reload")
        assert broken.status_code == 400
        error = broken.json()["error"]
        assert error["code"] == "config_error"
        assert "aliases.main.deployments[0]" in error["message"]
        assert chat(client) == "two"  # the running router is untouched


def test_cache_from_config_over_http(live_gateway: Any, servers: Any) -> None:
    upstream = servers(scenario("cached"))
    config = (
        deployments(up=upstream)
        + '[aliases.main]\ndeployments = ["up"]\n'
        + '[router]\ndefault_alias = "main"\ncache_ttl = 60\n'
    )
    gw = live_gateway(None, config=config)
    with gw.client() as client:
        assert chat(client, "same question") == "cached"
        assert chat(client, "same question") == "cached"
        assert model_requests(upstream) == 1
        assert chat(client, "another question") == "cached"
        assert model_requests(upstream) == 2
        cache = client.get("/api/router").json()["cache"]
        assert (cache["hits"], cache["misses"]) == (1, 2)
