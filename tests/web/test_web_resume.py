"""The web chat across a gateway crash, and a message that waits for the active run.

The crash is real: `staffer start` runs as its own process, gets SIGKILL in the middle of a
tool call while headless Chromium streams the run, and is started again on the same port.
The page gets back in touch by itself and shows the run continue where it stopped.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import free_port, write_model_config
from tests.runs.crash_kit import launch
from tests.web.test_web_chat import Locator, Page, browser, expect, page  # noqa: F401 - fixtures

from staffer.config import Home, init_home
from staffer.testing.model_server import ScriptedModelServer

pytestmark = pytest.mark.browser

CRASH_SCENARIO: dict[str, Any] = {
    "scripts": [
        {
            "match": "slow",
            "steps": [
                # killed in the middle of this one
                {"tool_calls": [{"name": "exec", "arguments": {"command": "sleep 20"}}]},
                # long enough for the page to reconnect while the resumed run works
                {"tool_calls": [{"name": "exec", "arguments": {"command": "sleep 6"}}]},
                {"text": "slept well"},
            ],
        }
    ]
}


RUN_PARTS = (
    '[data-testid="tool-card"], [data-testid="assistant-message"], '
    '[data-testid="resumed"], [data-testid="usage"]'
)


def _order(tab: Page, selector: str) -> list[str]:
    """The test ids of what `selector` finds, in page order."""
    found: list[str] = tab.locator(selector).evaluate_all("ns => ns.map(n => n.dataset.testid)")
    return found


def _bubbles(tab: Page, testid: str) -> Locator:
    """The text of the user's or the assistant's messages (without the screen-reader label)."""
    return tab.get_by_test_id(testid).locator(".bubble")


def test_a_run_cut_off_by_a_crash_is_shown_resuming_after_the_page_reconnects(
    tmp_path: Path,
    page: Page,  # noqa: F811 - the fixture
) -> None:
    home = Home(tmp_path / "home")
    init_home(home)
    with ScriptedModelServer(CRASH_SCENARIO) as server:
        write_model_config(home, server)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = launch(home, "start", "--port", str(port), port=port)
        try:
            page.goto(f"{url}/#token={home.read_token()}")
            page.get_by_test_id("new-session").click()
            expect(page.get_by_test_id("session-item")).to_have_count(1)
            box = page.get_by_test_id("composer-input")
            box.fill("slow work")
            box.press("Enter")
            card = page.get_by_test_id("tool-card")
            expect(card.get_by_test_id("tool-card-status")).to_have_text("running…")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

        # the stream broke: the page says so and keeps trying
        expect(page.get_by_test_id("reconnecting")).to_be_visible()
        expect(page.get_by_test_id("send")).to_be_disabled()

        proc = launch(home, "start", "--port", str(port), port=port)
        try:
            # back in touch while the resumed run still works: it is followed live
            resumed = page.get_by_test_id("resumed")
            expect(resumed).to_have_text(re.compile(r"^Resumed after a restart \(attempt 2"))
            expect(page.get_by_test_id("send")).to_be_disabled()
            expect(page.get_by_test_id("reconnecting")).to_have_count(0)
            # the command cut off by the crash was not run again; the next one runs now
            expect(card).to_have_count(2)
            expect(card.nth(0).get_by_test_id("tool-card-status")).to_have_text("error")
            expect(card.nth(0).locator(".tool-result")).to_contain_text("interrupted by a restart")
            expect(card.nth(1).get_by_test_id("tool-card-status")).to_have_text("running…")

            expect(_bubbles(page, "assistant-message")).to_have_text(["slept well"], timeout=20_000)
            expect(page.get_by_test_id("send")).to_be_enabled()
            expect(card).to_have_count(2)
            expect(card.nth(1).get_by_test_id("tool-card-status")).to_have_text("done")
            expect(_bubbles(page, "user-message")).to_have_text(["slow work"])
            expect(resumed).to_have_count(1)
            # the note goes with the run's footer, here as in the stored history
            order = _order(page, RUN_PARTS)
            assert order == ["tool-card", "tool-card", "assistant-message", "resumed", "usage"]

            # the stored history says the same after a reload
            page.reload()
            expect(_bubbles(page, "assistant-message")).to_have_text(["slept well"])
            expect(card).to_have_count(2)
            expect(resumed).to_have_text("Resumed after a restart (attempt 2)")
            assert _order(page, RUN_PARTS) == order
            headers = {"authorization": f"Bearer {home.read_token()}"}
            [session] = httpx.get(f"{url}/api/sessions", headers=headers).json()["sessions"]
            detail = httpx.get(f"{url}/api/sessions/{session['id']}", headers=headers).json()
            assert [(r["status"], r["attempt"]) for r in detail["runs"]] == [("done", 2)]
        finally:
            proc.terminate()
            proc.wait(10)


def test_a_message_sent_during_a_run_is_shown_queued_then_answered(
    live_gateway,
    page: Page,  # noqa: F811 - the fixture
) -> None:
    scenario = {
        "scripts": [
            {
                "match": "first",
                "steps": [
                    {"tool_calls": [{"name": "exec", "arguments": {"command": "sleep 2"}}]},
                    {"text": "first done"},
                ],
            },
            {"match": "", "steps": [{"text": "answer to {last_user}"}]},
        ]
    }
    gw = live_gateway(scenario)
    page.goto(f"{gw.url}/#token={gw.token}")
    page.get_by_test_id("new-session").click()
    expect(page.get_by_test_id("session-item")).to_have_count(1)
    session_id = page.get_by_test_id("session-item").get_attribute("data-session-id")

    # a run starts elsewhere (another tab, the API) after the page opened the session
    with gw.client() as client:
        started = client.post(f"/api/sessions/{session_id}/messages", json={"text": "first"})
        assert started.json()["status"] == "running", started.text

    box = page.get_by_test_id("composer-input")
    box.fill("second")
    box.press("Enter")
    queued = page.get_by_test_id("queued")
    expect(queued).to_have_text("Queued: this message runs after the active one (position 1).")
    # once the first run is over, this one starts with the ticket's run id and answers
    expect(_bubbles(page, "assistant-message")).to_have_text(["answer to second"])
    expect(queued).to_have_count(0)
    expect(page.get_by_test_id("send")).to_be_enabled()
    with gw.client() as client:
        runs = client.get(f"/api/sessions/{session_id}").json()["runs"]
    assert [r["status"] for r in runs] == ["done", "done"]
