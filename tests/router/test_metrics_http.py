"""/metrics, /api/router and /api/usage over real HTTP: a gateway routing through a real Router
with a fallback, the real OpenAI adapter and the scripted model server."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tests.gateway._sse import stream_turn

from staffer.testing.model_server import ScriptedModelServer

SCENARIO: dict[str, Any] = {
    "chunk_chars": 4,
    "faults": ["503"],  # the first model request fails: flaky → fallback to good
    "scripts": [{"match": "", "steps": [{"text": "Routed, measured and priced."}]}],
}


def routing(base_url: str) -> str:
    deployment = f'provider = "openai"\nmodel = "scripted"\nbase_url = "{base_url}"\n'
    return (
        '[router]\ndefault_alias = "main"\nslo_ttft = 5.0\nslo_tpot = 1.0\n'
        f"[deployments.flaky]\n{deployment}max_retries = 0\n"
        "price_input = 1.0\nprice_output = 2.0\n"
        f"[deployments.good]\n{deployment}price_input = 0.5\nprice_output = 1.5\n"
        '[aliases.main]\ndeployments = ["flaky", "good"]\n'
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_router_metrics_events_and_usage_over_http(live_gateway: Any) -> None:
    with ScriptedModelServer(SCENARIO) as upstream:
        # No [model] section: the [aliases.main] router is the gateway's model.
        gw = live_gateway(None, config=routing(upstream.openai_base_url))
        with gw.client() as client:
            session = client.post("/api/sessions", json={"title": "metrics"}).json()
            events = stream_turn(client, session["id"], "hello")
            assert events[-1]["status"] == "done", events[-1]
            assert events[-1]["text"] == "Routed, measured and priced."

            # Every route needs the token, /metrics included.
            for path in ("/metrics", "/api/router", "/api/router/events", "/api/usage"):
                assert httpx.get(gw.url + path).status_code == 401, path
                bad = {"authorization": "Bearer nope"}
                assert httpx.get(gw.url + path, headers=bad).status_code == 401, path

            response = client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            series = samples(response.text)
            flaky = (("alias", "main"), ("deployment", "flaky"))
            good = (("alias", "main"), ("deployment", "good"))
            assert series[("staffer_router_fallbacks_total", flaky)] == 1
            assert series[("staffer_router_attempts_total", (*flaky, ("outcome", "error")))] == 1
            assert series[("staffer_router_attempts_total", (*good, ("outcome", "ok")))] == 1
            assert series[("staffer_router_ttft_seconds_count", good)] == 1
            assert series[("staffer_router_requests_total", (("alias", "main"),))] == 1
            assert series[("staffer_router_cost_usd_total", good)] > 0
            assert ("staffer_router_in_flight", (("deployment", "good"),)) in series

            stats = client.get("/api/router").json()
            main = stats["aliases"]["main"]
            assert main["fallback_rate"] == 1.0
            assert main["ttft"]["p50"] > 0
            assert main["goodput"] > 0
            assert stats["deployments"]["flaky"]["errors"] == 1
            assert stats["deployments"]["good"]["totals"]["cost_usd"] > 0
            assert {d["name"] for d in stats["router"]} >= {"flaky", "good"}

            (event,) = client.get("/api/router/events", params={"limit": 10}).json()["events"]
            assert (event["kind"], event["deployment"], event["alias"]) == (
                "fallback",
                "flaky",
                "main",
            )
            assert "good" in event["cause"]
            assert client.get("/api/router/events", params={"limit": 0}).status_code == 422

            usage = client.get("/api/usage").json()
            by_deployment = {g["key"]: g for g in usage["by"]["deployment"]}
            assert by_deployment["flaky"]["failed_calls"] == 1
            assert by_deployment["flaky"]["cost_usd"] == 0
            assert by_deployment["good"]["calls"] == 1
            assert by_deployment["good"]["cost_usd"] > 0
            assert by_deployment["good"]["unknown_price_calls"] == 0
            assert [g["key"] for g in usage["by"]["session"]] == [session["id"]]
            assert [g["key"] for g in usage["by"]["agent"]] == ["main"]
            assert usage["total"]["calls"] == 2
            only = client.get("/api/usage", params={"by": "alias"}).json()
            assert list(only["by"]) == ["alias"]
            assert client.get("/api/usage", params={"by": "color"}).status_code == 422

            calls = client.get("/api/usage/calls", params={"session": session["id"]}).json()
            assert [c["deployment"] for c in calls["calls"]] == ["good", "flaky"]
            assert calls["calls"][0]["output_tokens"] > 0
