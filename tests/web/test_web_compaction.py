"""The web chat shows where older messages were summarized: live, and in a reloaded history.

A real gateway with a context window a few turns wide, the scripted model server writing
both the answers and the summary, and headless Chromium (fixtures from test_web_chat).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.web.test_web_chat import Page, browser, expect, page  # noqa: F401 - fixtures

from staffer.agent import read_system_prompt
from staffer.agent._compact import estimate_tokens
from staffer.config import AgentConfig, Home, init_home
from staffer.models import Message
from staffer.tools._builtin import builtin_tools

pytestmark = pytest.mark.browser

PADDING = " lorem ipsum dolor sit amet" * 30  # ~800 characters, ~200 tokens
SCENARIO: dict[str, Any] = {
    "scripts": [
        {"match": "^Summarize the conversation below", "steps": [{"text": "Notes 1 and 2."}]},
        {"match": "note", "steps": [{"text": "Saved: {last_user}"}]},
    ]
}


def base_tokens(tmp_path: Path) -> int:
    """What the system prompt of a new home and the tools weigh, before any history."""
    home = Home(tmp_path / "probe")
    init_home(home)
    agent = AgentConfig()
    prompt = read_system_prompt(home.workspace, agent.workspace_file_max_chars)
    specs = builtin_tools(home.workspace).specs()
    return estimate_tokens([Message(role="system", content=prompt.text)], specs)


def test_the_compaction_marker_is_shown_live_and_in_history(
    live_gateway,
    page: Page,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    # Two turns fit (~400 tokens each); the third question brings the context over.
    window = base_tokens(tmp_path) + 1_000
    config = f"[agent]\ncontext_window = {window}\ncompact_at = 1.0\nkeep_recent_messages = 2\n"
    gw = live_gateway(SCENARIO, config=config)
    page.goto(f"{gw.url}/#token={gw.token}")
    page.get_by_test_id("new-session").click()
    expect(page.get_by_test_id("session-item")).to_have_count(1)

    box = page.get_by_test_id("composer-input")
    for i in range(1, 4):
        box.fill(f"note {i}:{PADDING}")
        box.press("Enter")
        expect(page.get_by_test_id("assistant-message")).to_have_count(i)
        expect(page.get_by_test_id("send")).to_be_enabled()

    marker = page.get_by_test_id("compaction-marker")
    expect(marker).to_have_count(1)
    expect(marker).to_have_text("Earlier messages were summarized (3 messages)")
    # every message is still on the page
    expect(page.get_by_test_id("user-message")).to_have_count(3)

    with gw.client() as client:
        [session] = client.get("/api/sessions").json()["sessions"]
        listed = client.get(f"/api/sessions/{session['id']}/compactions")
    if listed.status_code == 404:
        pytest.skip("GET /api/sessions/{id}/compactions is not included in the gateway app yet")
    assert listed.json()["compactions"][0]["messages"] == 3

    # After a reload the marker comes from the stored compaction, after the 3rd message.
    page.reload()
    expect(page.get_by_test_id("user-message")).to_have_count(3)
    expect(marker).to_have_text("Earlier messages were summarized (3 messages)")
    order = page.locator(
        '[data-testid="user-message"], [data-testid="assistant-message"], '
        '[data-testid="compaction-marker"]'
    ).evaluate_all("nodes => nodes.map(n => n.dataset.testid)")
    assert order == [
        "user-message",
        "assistant-message",
        "user-message",
        "compaction-marker",
        "assistant-message",
        "user-message",
        "assistant-message",
    ]
    assert re.search("note 3", page.get_by_test_id("user-message").nth(2).inner_text())
