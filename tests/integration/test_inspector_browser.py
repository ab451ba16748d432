"""The thread inspector in a real (headless) Debian Chromium: a thread with a tool call and a fork.

Screenshots go to INSPECTOR_SCREENSHOTS when it is set, else to the test's tmp directory
(`screenshots/` under pytest's basetemp).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage
from langserve import RemoteRunnable
from playwright.sync_api import Browser, Page, expect, sync_playwright

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.helpers import AgentRunnable
from tests.integration.test_playground_browser import (
    chromium_path,
    policy_violations,
    send,
    watch_policy_violations,
)

Serve = Callable[[Settings], ServedApp]
KEY = "sk-inspector"
BEARER = {"Authorization": f"Bearer {KEY}"}
THREAD = "debug-me"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the test saves its screenshots (INSPECTOR_SCREENSHOTS, else under tmp_path)."""
    folder = Path(os.environ.get("INSPECTOR_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def turn(app: ServedApp, text: str, **configurable: str) -> dict[str, Any]:
    runnable: AgentRunnable = RemoteRunnable(f"{app.url}/agent/", headers=BEARER)
    return runnable.invoke(
        {"messages": [HumanMessage(text)]},
        {"configurable": {"thread_id": THREAD, **configurable}},
    )


def checkpoints(app: ServedApp) -> list[dict[str, Any]]:
    response = httpx.get(f"{app.url}/agent/threads/{THREAD}/history", headers=BEARER)
    response.raise_for_status()
    return list(response.json()["checkpoints"])


def shot(page: Page, folder: Path, name: str) -> Path:
    path = folder / name
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_the_inspector_shows_a_forked_thread_and_opens_the_playground_on_a_checkpoint(
    make_settings: SettingsFactory, serve: Serve, browser: Browser, screenshots: Path
) -> None:
    app = serve(make_settings(api_keys=[KEY]))
    # A thread through the service: a tool call, a second turn, then a fork from the first.
    turn(app, "What is 17 * 23?")
    first = checkpoints(app)[-1]["checkpoint_id"]
    turn(app, "echo the second turn")
    turn(app, "echo the other branch", checkpoint_id=first)

    # A browser that sends the bearer header (Playwright's extra headers) is let in as it is.
    with_header = browser.new_page(extra_http_headers=BEARER)
    with_header.goto(f"{app.url}/agent/inspect")
    expect(with_header.get_by_role("link", name=THREAD)).to_be_visible()
    with_header.close()

    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    console = watch_policy_violations(page)
    opened = page.goto(f"{app.url}/agent/inspect")
    assert opened is not None
    policy = opened.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; style-src 'sha256-")
    assert "script-src" not in policy  # no script at all: default-src 'none' covers it
    assert "frame-ancestors 'none'" in policy
    assert "base-uri 'none'" in policy
    assert (opened.headers["x-frame-options"], opened.headers["x-content-type-options"]) == (
        "DENY",
        "nosniff",
    )
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Threads")).to_be_visible()
    expect(page.locator("table.threads")).to_contain_text("the other branch")
    shot(page, screenshots, "inspector-threads.png")

    page.get_by_role("link", name=THREAD).click()
    expect(page.get_by_role("heading", name=f"Thread {THREAD}")).to_be_visible()
    fork = page.locator(f"[data-checkpoint='{first}']")
    expect(fork).to_contain_text("fork point · 2 branches")
    assert policy_violations(page, console) == []  # its styles apply, nothing is blocked
    # The first turn: the tool call with its arguments, its result, the nodes that ran.
    expect(fork.locator(".tool-call")).to_contain_text("calculator")
    expect(fork.locator(".tool-call")).to_contain_text('{"expression": "17 * 23"}')
    expect(fork.locator(".message.tool")).to_contain_text("391")
    for node in ("router", "fallback_provider", "tools", "respond"):
        expect(fork.locator(".badge.node", has_text=node)).to_be_visible()
    expect(fork.locator(".usage")).to_contain_text("total")
    # Both branches, each with its own turn.
    second = page.locator("[data-branch='1.1']")
    other = page.locator("[data-branch='1.2']")
    expect(second.get_by_role("heading", name="branch 1.1")).to_be_visible()
    expect(second).to_contain_text("echo the second turn")
    expect(other.get_by_role("heading", name="branch 1.2")).to_be_visible()
    expect(other).to_contain_text("echo the other branch")
    expect(other).not_to_contain_text("echo the second turn")
    expect(other.locator(".badge.latest", has_text="latest")).to_be_visible()
    shot(page, screenshots, "inspector-thread.png")

    # Run from the first turn in the playground (signed in by the same cookie).
    # The playground fetches the input schema for the config of its path (after a debounce)
    # and re-renders the input then: a message typed before that would be wiped.
    with page.expect_response(lambda r: r.url.endswith("/input_schema")):
        fork.get_by_role("link", name="run from here in the playground").click()
    expect(page.locator(".opacity-50.pointer-events-none")).to_have_count(0)
    expect(page.get_by_label("Thread id")).to_have_value(THREAD)
    expect(page.get_by_label("Checkpoint id")).to_have_value(first)
    assert send(page, "echo from the playground") == "from the playground"
    shot(page, screenshots, "inspector-playground.png")

    runs_from_first = [c for c in checkpoints(app) if c["parent_checkpoint_id"] == first]
    assert len(runs_from_first) == 3
    page.goto(f"{app.url}/agent/inspect/threads/{THREAD}")
    expect(page.locator(f"[data-checkpoint='{first}']")).to_contain_text("fork point · 3 branches")
    expect(page.locator("[data-branch='1.3']")).to_contain_text("echo from the playground")
    shot(page, screenshots, "inspector-thread-after-playground.png")
    assert policy_violations(page, console) == []
