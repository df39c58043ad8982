"""The web chat in headless Chromium, against a real gateway and the scripted model server.

Nothing is faked between the page and the model: the browser signs in with the token from
the URL fragment, streams a run over SSE from the gateway on loopback, and the tool call
really writes into the temporary workspace.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")
Browser = playwright_sync.Browser
Page = playwright_sync.Page
Locator = playwright_sync.Locator
expect = playwright_sync.expect

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/staffer-web.png")

ANSWER = "Done: {last_tool_result}. The note is in your workspace, ready when you are."
NOTE_SCENARIO: dict[str, Any] = {
    "scripts": [
        {
            "match": "note",
            "steps": [
                {
                    "tool_calls": [
                        {"name": "write_file", "arguments": {"path": "note.txt", "content": "hi"}}
                    ]
                },
                {"text": ANSWER},
            ],
        }
    ],
    # slow enough that the page renders the answer in several visible pieces
    "inter_chunk_ms": 40,
    "chunk_chars": 4,
}

# Records every length the newest assistant bubble's text goes through, as the DOM changes.
RECORD_STREAM = """
window.__stafferLengths = [];
new MutationObserver(() => {
  const bubbles = document.querySelectorAll('[data-testid="assistant-message"] .bubble');
  const last = bubbles[bubbles.length - 1];
  if (last) window.__stafferLengths.push(last.textContent.length);
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; install Debian's chromium package to run browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_chat_streams_a_run_with_a_tool_call_and_reloads_history(live_gateway, page: Page) -> None:
    gw = live_gateway(NOTE_SCENARIO)
    page.add_init_script(RECORD_STREAM)
    page.goto(f"{gw.url}/#token={gw.token}")

    # signed in from the fragment, which is gone from the address bar
    expect(page.get_by_test_id("new-session")).to_be_visible()
    expect(page.get_by_test_id("signin-token")).to_be_hidden()
    assert "token" not in page.url
    assert gw.token not in page.url
    expect(page.get_by_test_id("model-banner")).to_be_hidden()

    page.get_by_test_id("new-session").click()
    expect(page.get_by_test_id("session-item")).to_have_count(1)
    expect(page.get_by_test_id("session-item")).to_have_attribute("aria-current", "page")

    box = page.get_by_test_id("composer-input")
    box.fill("Please write a note")
    box.press("Enter")

    user = page.get_by_test_id("user-message")
    expect(user).to_have_count(1)
    expect(user).to_contain_text("Please write a note")
    expect(page.get_by_test_id("send")).to_be_disabled()

    card = page.get_by_test_id("tool-card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("write_file")
    expect(card.locator(".tool-args")).to_contain_text('"path": "note.txt"')
    expect(card.locator(".tool-args")).to_contain_text('"content": "hi"')
    expect(card.get_by_test_id("tool-card-status")).to_have_text("done")
    expect(card.locator(".tool-duration")).to_have_text(re.compile(r"^\d+(\.\d)? m?s$"))
    expect(card.locator(".tool-result")).not_to_be_empty()

    # the run ends: Send comes back, the answer and the usage are complete
    expect(page.get_by_test_id("send")).to_be_enabled()
    answer = page.get_by_test_id("assistant-message")
    expect(answer).to_have_count(1)
    expect(answer).to_contain_text("Done: ")
    expect(answer).to_contain_text("ready when you are.")
    expect(page.get_by_test_id("usage")).to_have_text(re.compile(r"^in [\d,]+ · out [\d,]+ tokens"))
    assert (gw.home.workspace / "note.txt").read_text() == "hi"

    # the answer arrived token by token, not in one piece
    final = len(answer.locator(".bubble").text_content() or "")
    lengths = page.evaluate("window.__stafferLengths")
    intermediate = {n for n in lengths if 0 < n < final}
    assert len(intermediate) >= 2, (lengths, final)
    assert lengths == sorted(lengths), "the streamed text only ever grows"

    # the tool card sits between the question and the answer, where the call happened
    in_order = '[data-testid$="-message"], [data-testid="tool-card"]'
    order = page.locator(in_order).evaluate_all("(nodes) => nodes.map((n) => n.dataset.testid)")
    assert order == ["user-message", "tool-card", "assistant-message"]

    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # a reload renders the same conversation from the stored history
    streamed_answer = answer.text_content()
    page.reload()
    expect(page.get_by_test_id("signin-token")).to_be_hidden()
    expect(page.get_by_test_id("user-message")).to_contain_text("Please write a note")
    card = page.get_by_test_id("tool-card")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("write_file")
    expect(card.locator(".tool-args")).to_contain_text('"path": "note.txt"')
    expect(card.get_by_test_id("tool-card-status")).to_have_text("done")
    expect(card.locator(".tool-duration")).to_have_text(re.compile(r"^\d+(\.\d)? m?s$"))
    expect(card.locator(".tool-result")).not_to_be_empty()
    expect(page.get_by_test_id("assistant-message")).to_have_text(streamed_answer or "")
    expect(page.get_by_test_id("usage")).to_have_text(re.compile(r"^in [\d,]+ · out [\d,]+ tokens"))
    expect(page.get_by_test_id("session-item")).to_have_count(1)


def test_wrong_token_shows_the_sign_in_error_then_the_right_one_works(
    live_gateway, page: Page
) -> None:
    gw = live_gateway(NOTE_SCENARIO)
    page.goto(f"{gw.url}/#token=not-the-token")

    error = page.locator("#signin").get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("not accepted")
    expect(error).to_contain_text("staffer start")
    expect(page.get_by_test_id("new-session")).to_be_hidden()
    assert "not-the-token" not in page.url
    assert page.evaluate("sessionStorage.getItem('staffer.token')") is None

    page.get_by_label("Access token").fill(gw.token)
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("new-session")).to_be_visible()
    expect(page.get_by_test_id("signin-token")).to_be_hidden()


def test_without_a_model_the_banner_explains_how_to_connect_one(live_gateway, page: Page) -> None:
    gw = live_gateway(None)
    with gw.client() as client:
        status = client.get("/api/status").json()
    assert status["model"]["configured"] is False

    page.goto(f"{gw.url}/#token={gw.token}")
    banner = page.get_by_test_id("model-banner")
    expect(banner).to_be_visible()
    help_text = status["model"]["help"]
    assert help_text
    expect(banner).to_contain_text(help_text.strip().splitlines()[0])
    page.get_by_test_id("composer-input").fill("hello?")
    expect(page.get_by_test_id("send")).to_be_disabled()


def test_a_failing_tool_is_shown_as_an_error(live_gateway, page: Page) -> None:
    scenario = {
        "scripts": [
            {
                "match": "",
                "steps": [
                    {"tool_calls": [{"name": "read_file", "arguments": {"path": "missing.txt"}}]},
                    {"text": "That file does not exist."},
                ],
            }
        ]
    }
    gw = live_gateway(scenario)
    page.goto(f"{gw.url}/#token={gw.token}")
    box = page.get_by_test_id("composer-input")
    box.fill("Read missing.txt")
    page.get_by_test_id("send").click()  # no session yet: sending creates one

    card = page.get_by_test_id("tool-card")
    expect(card.get_by_test_id("tool-card-status")).to_have_text("error")
    expect(card).to_have_attribute("data-state", "error")
    expect(card.locator("summary", has_text="Error")).to_be_visible()
    expect(page.get_by_test_id("assistant-message")).to_contain_text("does not exist")
    expect(page.get_by_test_id("session-item")).to_have_count(1)
    with gw.client() as client:
        [session] = client.get("/api/sessions").json()["sessions"]
        calls = client.get(f"/api/sessions/{session['id']}").json()["tool_calls"]
    assert calls[0]["error"], json.dumps(calls)


def test_a_run_started_elsewhere_is_followed_live(live_gateway, page: Page) -> None:
    answer = "This answer streams slowly while the page watches."
    scenario = {
        "scripts": [{"match": "", "steps": [{"text": answer}]}],
        # slow enough (~3 s) that the page is up well before the run ends
        "inter_chunk_ms": 200,
        "chunk_chars": 3,
    }
    gw = live_gateway(scenario)
    with gw.client() as client:
        session = client.post("/api/sessions", json={"title": "from the API"}).json()
        path = f"/api/sessions/{session['id']}/messages"
        started = client.post(path, json={"text": "Tell me slowly"})
        assert started.status_code == 202, started.text

    page.goto(f"{gw.url}/#token={gw.token}")
    expect(page.get_by_test_id("session-item")).to_have_text(re.compile("from the API"))
    expect(page.get_by_test_id("user-message")).to_contain_text("Tell me slowly")
    # the page follows the run it did not start, and holds Send until it is over
    expect(page.get_by_test_id("send")).to_be_disabled()
    expect(page.get_by_test_id("assistant-message")).to_have_text(re.compile(answer))
    expect(page.get_by_test_id("send")).to_be_enabled()
    expect(page.get_by_test_id("assistant-message")).to_have_count(1)
    expect(page.get_by_test_id("usage")).to_have_text(re.compile(r"^in [\d,]+ · out [\d,]+ tokens"))


def test_a_rejected_message_shows_the_error_and_keeps_the_text(live_gateway, page: Page) -> None:
    gw = live_gateway(NOTE_SCENARIO, config="[gateway]\nmax_body_bytes = 1024\n")
    page.goto(f"{gw.url}/#token={gw.token}")
    page.get_by_test_id("new-session").click()
    expect(page.get_by_test_id("session-item")).to_have_count(1)

    long_text = "note " * 400  # 2000 characters, over the 1024-byte body limit
    box = page.get_by_test_id("composer-input")
    box.fill(long_text)
    page.get_by_test_id("send").click()

    error = page.locator("#composer").get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    expect(box).to_have_value(long_text)
    expect(page.get_by_test_id("user-message")).to_have_count(0)
    expect(page.get_by_test_id("send")).to_be_enabled()
    with gw.client() as client:
        [session] = client.get("/api/sessions").json()["sessions"]
        probe = client.post(f"/api/sessions/{session['id']}/messages", json={"text": long_text})
    assert probe.status_code == 413
    expect(error).to_contain_text(probe.json()["error"]["message"])


def test_stop_cancels_the_streaming_run(live_gateway, page: Page) -> None:
    scenario = {
        "scripts": [{"match": "", "steps": [{"text": "a long and very slow answer " * 5}]}],
        "inter_chunk_ms": 200,
        "chunk_chars": 2,
    }
    gw = live_gateway(scenario)
    page.goto(f"{gw.url}/#token={gw.token}")
    page.get_by_test_id("new-session").click()
    expect(page.get_by_test_id("session-item")).to_have_count(1)
    expect(page.get_by_test_id("cancel")).to_be_hidden()

    page.get_by_test_id("composer-input").fill("Tell me slowly")
    page.get_by_test_id("send").click()
    expect(page.get_by_test_id("assistant-message")).to_contain_text("a long")
    stop = page.get_by_test_id("cancel")
    expect(stop).to_be_visible()
    stop.click()

    expect(stop).to_be_hidden(timeout=2_000)
    expect(page.get_by_test_id("send")).to_be_enabled()
    expect(page.locator("#transcript")).to_contain_text("cancelled")
    with gw.client() as client:
        [session] = client.get("/api/sessions").json()["sessions"]
        runs = client.get(f"/api/sessions/{session['id']}").json()["runs"]
    assert [r["status"] for r in runs] == ["cancelled"]
