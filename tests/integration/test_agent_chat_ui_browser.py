"""LangChain's agent-chat-ui in headless Chromium, against a LangGraph API server.

The app (the Next.js template of create-agent-chat-app, built once and cached:
`tests/agent_chat_ui.py`) is served from a loopback port and opened with `?apiUrl=` the
server under test and `assistantId=agent`. The graph answers from a fake OpenAI upstream
(`FakeUpstream`), whose scripted replies stream word by word at a set pace: a reply long
enough to press Cancel during it, a run whose end the test waits for. A person's steps: send
a message and watch the answer stream in; open the app afresh, find the thread in the history
sidebar and open it; cancel a run while it streams.

Two servers: `reference` is `langgraph dev` serving this repository's graph (the LangGraph
API's own implementation); `service` is our service (`python -m server`, embedded defaults)
with its LangGraph API door. Every request the page makes is kept (`requests.jsonl` in the
test's temporary folder) to show what the app needs of a server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Request,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.agent_chat_ui import BuildError, NodeMissingError, built_app, static_app
from tests.conftest import service_missing, settings_in
from tests.fakes.server_thread import ServedApp
from tests.fakes.service_process import ServiceProcess, settings_env
from tests.fakes.upstream import FakeUpstream, Reply
from tests.integration.test_playground_browser import chromium_path
from tests.langgraph_dev import langgraph_dev_server

# The first test's set-up may build the app (`npm ci` and `next build`: minutes on 2 cores).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

MODEL = "openai:gpt-test"
ANSWER_TIMEOUT_MS = 30_000
WORDS = 12
"""Words of the first answer, streamed one chunk each (`streamed_words`)."""
SLOW_WORDS = 400
"""Words of the answer that is cancelled: at `SLOW_DELAY` apiece, over a minute of streaming."""
SLOW_DELAY = 0.2


def streamed_words(prefix: str, count: int) -> str:
    """`count` distinct words (`prefix01 prefix02 ...`): any of them shows how far it got."""
    return " ".join(f"{prefix}{n:02d}" for n in range(1, count + 1))


# --- the app, the upstream, the servers ----------------------------------------------------


@pytest.fixture(scope="module")
def chat_ui() -> Iterator[ServedApp]:
    """The built app (built once, then from the cache), served on a loopback port."""
    try:
        folder = built_app()
    except NodeMissingError as error:
        service_missing("Node.js 20+ and npm", error)
        raise
    except BuildError as error:
        pytest.fail(str(error))
    with ServedApp(static_app(folder)) as served:
        yield served


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    """The model the graph calls (`openai:gpt-test`), for this module's servers."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module", params=["reference", "service"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    chat_ui: ServedApp,
    upstream: FakeUpstream,
) -> Iterator[str]:
    """The LangGraph API server under test, its graph on the fake upstream; yields its URL."""
    workdir = tmp_path_factory.mktemp(str(request.param))
    if request.param == "reference":
        env = {
            "AGENT_MODELS": json.dumps({"m": [MODEL]}),
            "OPENAI_BASE_URL": upstream.openai_base_url,
            "PROVIDER_MAX_RETRIES": "0",
        }
        with langgraph_dev_server(workdir, env) as url:
            yield url
        return
    settings = settings_in(
        workdir,
        agent_models={"m": [MODEL]},
        openai_base_url=upstream.openai_base_url,
        provider_max_retries=0,
        cors_origins=[chat_ui.url],
    )
    with ServiceProcess(workdir, settings_env(settings)) as service:
        yield service.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, server: str, upstream: FakeUpstream, tmp_path: Path) -> Iterator[Page]:
    """A wide page (the history is a sidebar there) whose requests to `server` are kept."""
    upstream.reset()
    opened = browser.new_page(viewport={"width": 1400, "height": 1000})
    kept: list[dict[str, Any]] = []
    opened.on("requestfinished", lambda sent: _keep(sent, server, kept))
    opened.on("requestfailed", lambda sent: _keep(sent, server, kept, failed=True))
    try:
        yield opened
    finally:
        opened.screenshot(path=tmp_path / "last.png", full_page=True)
        opened.close()
        lines = "".join(json.dumps(entry) + "\n" for entry in kept)
        (tmp_path / "requests.jsonl").write_text(lines)


def _keep(sent: Request, server: str, kept: list[dict[str, Any]], *, failed: bool = False) -> None:
    """Keep a request to `server` that ended: what was sent, and what came back if anything.

    The entry is kept first: what the browser no longer holds (a response's body once the
    page has navigated away) is noted as `unreadable` instead.
    """
    if not sent.url.startswith(server):
        return
    entry: dict[str, Any] = {
        "method": sent.method,
        "url": sent.url.removeprefix(server),
        "headers": sent.headers,
        "body": sent.post_data,
    }
    kept.append(entry)
    if failed:
        entry["failure"] = sent.failure
        return
    try:
        entry["headers"] = sent.all_headers()  # with those the browser adds (Origin, ...)
        answered = sent.response()
        if answered is None:
            return
        entry["status"] = answered.status
        entry["response_headers"] = answered.all_headers()
        text = answered.text()
    except PlaywrightError as error:
        entry["unreadable"] = error.message
        return
    if answered.headers.get("content-type", "").startswith("text/event-stream"):
        entry["events"] = re.findall(r"^event: ?(\S*)", text, re.MULTILINE)
    else:
        entry["response"] = text[:4000]


# --- what a person does ---------------------------------------------------------------------


def open_app(page: Page, chat_ui: ServedApp, server: str) -> None:
    """Open the app on `server`'s graph `agent` (a new thread)."""
    query = urlencode({"apiUrl": server, "assistantId": "agent"})
    page.goto(f"{chat_ui.url}/?{query}")
    expect(message_box(page)).to_be_visible()


def message_box(page: Page) -> Locator:
    return page.get_by_placeholder("Type your message...")


def conversation(page: Page) -> Locator:
    """The column of the conversation (beside the history sidebar, which slides over it)."""
    return page.locator("div.flex-1.min-w-0")


def history(page: Page) -> Locator:
    """The history sidebar (in the page, off screen, while closed)."""
    return page.locator("div.relative.lg\\:flex")


def send(page: Page, text: str) -> None:
    message_box(page).fill(text)
    page.get_by_role("button", name="Send").click()


def watch_partial(page: Page, first: str, last: str) -> None:
    """Record, in `window.__partial`, a moment the page showed `first` but not yet `last`."""
    page.evaluate(
        """([first, last]) => {
            window.__partial = false;
            new MutationObserver(() => {
                const text = document.body.innerText;
                if (text.includes(first) && !text.includes(last)) window.__partial = true;
            }).observe(document.body, {childList: true, subtree: true, characterData: true});
        }""",
        [first, last],
    )


def thread_id(page: Page) -> str:
    (found,) = parse_qs(urlparse(page.url).query)["threadId"]
    return found


def test_a_streamed_answer_and_its_thread_in_the_history(
    page: Page, chat_ui: ServedApp, server: str, upstream: FakeUpstream
) -> None:
    answer = streamed_words("plum", WORDS)
    upstream.script(Reply(answer, chunk_delay=0.1))
    open_app(page, chat_ui, server)
    watch_partial(page, "plum01", f"plum{WORDS:02d}")

    send(page, "Tell me about plums")
    expect(page.get_by_text(answer)).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    assert page.evaluate("window.__partial"), "the answer appeared whole, not streamed"
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]threadId="))
    thread = thread_id(page)

    # A reload of the thread's address shows the conversation (read back from the server).
    page.reload()
    expect(conversation(page).get_by_text("Tell me about plums")).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS
    )
    expect(conversation(page).get_by_text(answer)).to_be_visible()

    # Opened afresh (no thread), the app lists the thread in its history sidebar; opening it
    # shows the conversation.
    open_app(page, chat_ui, server)
    expect(conversation(page).get_by_text(answer)).to_have_count(0)
    conversation(page).locator("button:has(svg.lucide-panel-right-close)").click()
    listed = history(page).get_by_role("button", name="Tell me about plums")
    expect(listed).to_be_in_viewport(timeout=ANSWER_TIMEOUT_MS)
    listed.click()
    expect(conversation(page).get_by_text(answer)).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    assert thread_id(page) == thread
    assert [r.body["stream"] for r in upstream.requests if r.body] == [True]


def test_cancel_stops_a_streaming_run(
    page: Page, chat_ui: ServedApp, server: str, upstream: FakeUpstream
) -> None:
    answer = streamed_words("fig", SLOW_WORDS)
    upstream.script(Reply(answer, chunk_delay=SLOW_DELAY))
    open_app(page, chat_ui, server)

    send(page, "Tell me about figs, at length")
    # Under way: the first words are on the page, and the button that stops the run is there.
    expect(conversation(page).get_by_text("fig01 fig02", exact=False)).to_be_visible(
        timeout=ANSWER_TIMEOUT_MS
    )
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)

    # The app closed its stream asking the server to cancel the run (on_disconnect=cancel):
    # the server stops the graph, whose model call is abandoned, and the run ends cancelled.
    assert upstream.wait_for_disconnects(1, timeout=ANSWER_TIMEOUT_MS / 1000)
    thread = thread_id(page)
    runs = httpx.get(f"{server}/threads/{thread}/runs", timeout=10).json()
    assert [run["status"] for run in runs] == ["interrupted"]
    assert len(upstream.requests) == 1
    # The app keeps what it had shown of the answer.
    expect(conversation(page).get_by_text("fig01 fig02", exact=False)).to_be_visible()
