"""Sub-agent work in the web chat: a delegation's tool card holds the sub-run as a nested
block (agent, live status, answer or error, a link to its session), and the session list
puts the sub-agent's sessions under the session that handed the work over.

A real gateway with two configured agents, the scripted model server playing both, and
headless Chromium (fixtures from test_web_chat).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.web.test_web_chat import Locator, Page, browser, expect, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

AGENTS = """
[agents.researcher]
description = "finds facts"
max_iterations = 2
"""


def _delegate(task: str, **more: Any) -> dict[str, Any]:
    return {"name": "delegate", "arguments": {"agent": "researcher", "task": task, **more}}


SCENARIO: dict[str, Any] = {
    "scripts": [
        {  # the researcher, asked to do the impossible, loops until its iteration cap
            "match": "impossible",
            "steps": [{"tool_calls": [{"name": "list_dir", "arguments": {"path": "."}}]}],
        },
        {  # long enough for the page to see the sub-run at work
            "match": "look up",
            "steps": [
                {"tool_calls": [{"name": "exec", "arguments": {"command": "sleep 3"}}]},
                {"text": "found it: **42**"},
            ],
        },
        {
            "match": "plan",
            "steps": [
                {"tool_calls": [_delegate("do the impossible")]},
                {"tool_calls": [_delegate("look up the answer")]},
                {"text": "the plan is ready"},
            ],
        },
        {
            "match": "background",
            "steps": [
                {
                    "tool_calls": [
                        _delegate("look up in the background", background=True),
                        {
                            "name": "send_to_agent",
                            "arguments": {"agent": "researcher", "message": "look up: fyi"},
                        },
                    ]
                },
                {"text": "started them"},
            ],
        },
    ]
}


def _send(tab: Page, text: str) -> None:
    tab.get_by_test_id("new-session").click()
    expect(tab.get_by_test_id("session-item")).to_have_count(1)
    box = tab.get_by_test_id("composer-input")
    box.fill(text)
    box.press("Enter")


def _bubbles(tab: Page, testid: str) -> Locator:
    """The text of the user's or the assistant's messages (without the screen-reader label)."""
    return tab.get_by_test_id(testid).locator(".bubble")


def test_a_delegation_shows_the_sub_run_nested_with_its_answer_and_session(
    live_gateway,
    page: Page,  # noqa: F811 - the fixture
) -> None:
    gw = live_gateway(SCENARIO, config=AGENTS)
    page.goto(f"{gw.url}/#token={gw.token}")
    _send(page, "plan the work")

    cards = page.get_by_test_id("tool-card")
    failed, done = cards.nth(0).get_by_test_id("subrun"), cards.nth(1).get_by_test_id("subrun")

    # the failed delegation: the researcher's error and the hint, with its session
    expect(failed.get_by_test_id("subrun-agent")).to_have_text("researcher")
    expect(failed).to_have_attribute("data-status", "failed")
    expect(failed.get_by_test_id("subrun-status")).to_have_text("failed")
    expect(failed.get_by_test_id("subrun-error")).to_contain_text("stopped after 2 model calls")
    expect(failed.get_by_test_id("subrun-error")).to_contain_text("Hint: retry")
    expect(failed.get_by_test_id("subrun-link")).to_be_visible()

    # the second one is shown while the researcher works, already linked to its session
    expect(done).to_have_attribute("data-status", "running")
    expect(done.get_by_test_id("subrun-status")).to_have_text("working…")
    expect(done.get_by_test_id("subrun-link")).to_have_text("Open researcher's session")
    expect(cards.nth(1).get_by_test_id("tool-card-status")).to_have_text("running…")
    # ... then its answer arrives, and the main agent's after it
    expect(done.get_by_test_id("subrun-status")).to_have_text("done")
    expect(done.get_by_test_id("subrun-answer")).to_have_text("found it: 42")
    expect(done.get_by_test_id("subrun-answer").locator("strong")).to_have_text("42")
    expect(_bubbles(page, "assistant-message")).to_have_text("the plan is ready")
    expect(page.get_by_test_id("send")).to_be_enabled()

    with gw.client() as client:
        sessions = client.get("/api/sessions").json()["sessions"]
        parent = next(s for s in sessions if s["agent"] == "main")
        [parent_run] = client.get(f"/api/sessions/{parent['id']}").json()["runs"]
        children = client.get(f"/api/runs/{parent_run['id']}/children").json()["runs"]
    assert [c["status"] for c in children] == ["failed", "done"]
    href = f"#session={children[1]['session_id']}"
    expect(done.get_by_test_id("subrun-link")).to_have_attribute("href", href)

    # the researcher's two sessions are listed under the parent, marked as its
    items = page.get_by_test_id("session-item")
    expect(items).to_have_count(3)
    nested = page.locator(".session-children [data-testid=session-item]")
    expect(nested).to_have_count(2)
    expect(nested.get_by_test_id("session-agent")).to_have_text(["↳ Sub-agent researcher"] * 2)
    # under its parent a sub-agent's session is titled by its task alone
    expect(nested.filter(has_text="look up the answer")).to_have_count(1)
    expect(nested.filter(has_text="main →")).to_have_count(0)
    expect(items.first).to_have_attribute("data-session-id", parent["id"])
    expect(items.first).to_have_attribute("aria-current", "page")

    # the link opens the researcher's session: its task, its work, its answer
    done.get_by_test_id("subrun-link").click()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(_bubbles(page, "user-message")).to_have_text("look up the answer")
    expect(page.get_by_test_id("tool-card")).to_have_count(1)
    expect(page.get_by_test_id("tool-card")).to_contain_text("exec")
    expect(_bubbles(page, "assistant-message")).to_have_text("found it: 42")
    current = page.locator('[data-testid=session-item][aria-current="page"]')
    expect(current).to_have_attribute("data-session-id", children[1]["session_id"])

    # Back returns to the parent, whose stored history draws the same nested blocks
    page.go_back()
    expect(_bubbles(page, "assistant-message")).to_have_text("the plan is ready")
    expect(failed.get_by_test_id("subrun-status")).to_have_text("failed")
    expect(done.get_by_test_id("subrun-status")).to_have_text("done")
    expect(done.get_by_test_id("subrun-answer")).to_have_text("found it: 42")
    expect(done.get_by_test_id("subrun-link")).to_have_attribute("href", href)


def test_background_work_and_a_peer_message_update_after_the_run(
    live_gateway,
    page: Page,  # noqa: F811 - the fixture
) -> None:
    gw = live_gateway(SCENARIO, config=AGENTS)
    page.goto(f"{gw.url}/#token={gw.token}")
    _send(page, "background work")

    # the main agent is done long before the researcher
    expect(_bubbles(page, "assistant-message")).to_have_text("started them")
    cards = page.get_by_test_id("tool-card")
    background, peer = cards.nth(0).get_by_test_id("subrun"), cards.nth(1).get_by_test_id("subrun")
    expect(cards.nth(0)).to_contain_text("delegate")
    expect(cards.nth(1)).to_contain_text("send_to_agent")
    for block in (background, peer):
        expect(block.get_by_test_id("subrun-status")).to_have_text(
            re.compile("^(started|sent|queued|working…)$")
        )
    expect(background.get_by_test_id("subrun-answer")).to_be_hidden()

    # the blocks keep following the sub-runs, and show their answers once they are done
    for block in (background, peer):
        expect(block.get_by_test_id("subrun-status")).to_have_text("done")
        expect(block.get_by_test_id("subrun-answer")).to_have_text("found it: 42")
        expect(block.get_by_test_id("subrun-link")).to_be_visible()

    peer.get_by_test_id("subrun-link").click()
    expect(_bubbles(page, "user-message")).to_have_text("Message from agent main:\nlook up: fyi")
    expect(_bubbles(page, "assistant-message")).to_have_text("found it: 42")
    expect(page.locator(".session-children [data-testid=session-item]")).to_have_count(2)
