"""LangServe's playground in a real (headless) Chromium: a conversation on one thread."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from server.settings import Settings
from tests.conftest import REQUIRE_SERVICES, SettingsFactory
from tests.fakes.server_thread import ServedApp

Serve = Callable[[Settings], ServedApp]
ANSWER_TIMEOUT_MS = 20_000


def chromium_path() -> str:
    """Debian's chromium (never a downloaded browser); CI installs it (`.ci/run`)."""
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if found is None:
        message = "chromium is not installed (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


def watch_policy_violations(page: Page) -> list[str]:
    """Collect what the page's Content-Security-Policy blocks (events and console errors).

    The listener is installed by the browser before any script of the page runs (an init
    script is not subject to the page's policy); read `page.evaluate("window.__cspViolations")`.
    """
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    return blocked


def policy_violations(page: Page, console: list[str]) -> list[str]:
    """Every violation reported so far, by event or on the console."""
    events: list[str] = page.evaluate("window.__cspViolations")
    return [*events, *console]


def send(page: Page, text: str) -> str:
    """Type into the chat widget's empty human message, press Start, wait for the answer.

    The chat widget adds an AI message when a run starts (filled with the answer from the
    run's final output) and a new empty human message when the run has finished.
    """
    boxes = page.locator("textarea")
    before = boxes.count()
    boxes.last.fill(text)
    page.get_by_role("button", name="Start").click()
    expect(boxes).to_have_count(before + 2, timeout=ANSWER_TIMEOUT_MS)
    return boxes.nth(before).input_value()


def test_the_playground_holds_a_conversation_on_a_thread(
    make_settings: SettingsFactory, serve: Serve, browser: Browser, tmp_path: Path
) -> None:
    app = serve(make_settings())
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    console = watch_policy_violations(page)
    opened = page.goto(f"{app.url}/agent/playground/")
    assert opened is not None
    headers = opened.headers
    assert "script-src 'self' 'sha256-" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert (headers["x-frame-options"], headers["x-content-type-options"]) == ("DENY", "nosniff")
    expect(page.get_by_label("Thread id")).to_be_visible()
    page.get_by_label("Thread id").fill("browser-thread")

    assert send(page, "echo pineapple") == "pineapple"
    body = page.locator("body")
    # The output lists every node's update: the guard, the router's decision, the tool call
    # and its result, the provider that answered.
    expect(body).to_contain_text('"respond"', timeout=ANSWER_TIMEOUT_MS)
    expect(body).to_contain_text('"route_reason": "chat"')
    expect(body).to_contain_text('"name": "echo"')
    expect(body).to_contain_text('"content": "pineapple"')
    expect(body).to_contain_text('"provider": "offline"')
    page.get_by_role("button", name="Intermediate steps").click()
    steps = page.locator("strong")
    for node in ("router", "fallback_provider", "tools", "echo", "respond"):
        expect(steps.filter(has_text=node).first).to_be_visible()
    page.screenshot(path=tmp_path / "playground-turn-1.png", full_page=True)

    assert send(page, "What did I say before?") == 'Earlier you said: "echo pineapple"'
    expect(body).to_contain_text('Earlier you said: \\"echo pineapple\\"')
    page.screenshot(path=tmp_path / "playground-turn-2.png", full_page=True)
    assert (tmp_path / "playground-turn-2.png").stat().st_size > 10_000

    # The playground resends the conversation it shows; the thread holds each turn once.
    state = httpx.get(f"{app.url}/agent/threads/browser-thread/state").json()
    humans = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
    assert humans == ["echo pineapple", "What did I say before?"]
    assert policy_violations(page, console) == []  # the policy blocked nothing it needs
