"""An agent's daily budget: once its model calls cost as much, its runs stop with a clear
error before the next model call; other agents keep working."""

from __future__ import annotations

import time

import pytest
from tests.gateway._sse import stream_turn

import staffer.agent._loop as loop

SCENARIO = {"scripts": [{"match": "", "steps": [{"text": "an answer that costs money"}]}]}


def test_an_agent_over_its_budget_stops_before_calling_the_model(live_gateway, monkeypatch):
    monkeypatch.setattr(loop, "BUDGET_REFRESH", 0.0)
    gw = live_gateway(SCENARIO)
    url = gw.server.openai_base_url
    gw.home.config_file.write_text(
        f'[deployments.primary]\nprovider = "openai"\nmodel = "scripted"\nbase_url = "{url}"\n'
        "price_input = 1000.0\nprice_output = 1000.0\n"  # USD per 1M tokens: ~$0.01 a call
        '[aliases.fast]\ndeployments = ["primary"]\n'
        '[router]\ndefault_alias = "fast"\n'
        "[agent]\nbudget_usd_per_day = 0.000001\n"
        '[agents.frugal]\ndescription = "has no budget"\n',
        encoding="utf-8",
    )
    gw.restart()
    with gw.client() as client:
        session = client.post("/api/sessions").json()["id"]
        assert stream_turn(client, session, "first")[-1]["status"] == "done"
        time.sleep(1.0)  # the cost records are flushed every half second
        finished = stream_turn(client, session, "second")[-1]
        assert finished["status"] == "failed"
        assert "'main' has spent $" in finished["error"]
        assert "budget is $1e-06" in finished["error"]
        assert "budget_usd_per_day" in finished["error"]
        other = client.post("/api/sessions", json={"agent": "frugal"}).json()["id"]
        # [agent] is every agent's default: frugal has the same budget but no spend yet
        assert stream_turn(client, other, "hello")[-1]["status"] == "done"


@pytest.mark.parametrize("value", ["0", "-1.5"])
def test_a_budget_must_be_positive(tmp_path, value):
    from staffer.config import load_config
    from staffer.errors import ConfigError

    path = tmp_path / "config.toml"
    path.write_text(f"[agent]\nbudget_usd_per_day = {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == "agent.budget_usd_per_day"
    assert "above 0" in (err.value.fix or "")
