"""The thread inspector at /agent/inspect over plain HTTP: keys, escaping, paging, links."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from langchain_core.messages import HumanMessage
from langserve import RemoteRunnable

from server.inspector.timeline import TEXT_LIMIT
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply
from tests.helpers import AgentRunnable

Serve = Callable[[Settings], ServedApp]
ALICE = {"Authorization": "Bearer sk-alice"}
BOB = {"Authorization": "Bearer sk-bob"}


def run(
    app: ServedApp,
    text: str,
    thread_id: str,
    headers: dict[str, str] | None = None,
    **configurable: str,
) -> dict[str, Any]:
    """One turn through the /agent door."""
    runnable: AgentRunnable = RemoteRunnable(f"{app.url}/agent/", headers=headers)
    return runnable.invoke(
        {"messages": [HumanMessage(text)]},
        {"configurable": {"thread_id": thread_id, **configurable}},
    )


def links(page: str, css_class: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(rf'<a class="{css_class}" href="([^"]+)"', page)]


def history(app: ServedApp, thread_id: str, headers: dict[str, str] | None = None) -> list[Any]:
    response = httpx.get(
        f"{app.url}/agent/threads/{quote(thread_id, safe='')}/history", headers=headers
    )
    response.raise_for_status()
    return list(response.json()["checkpoints"])


def test_a_key_sees_only_its_own_threads_and_none_without_a_key(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(api_keys=["sk-alice", "sk-bob"]))
    run(app, "echo for alice only", "alices-thread", ALICE)
    run(app, "echo bob's", "bobs-thread", BOB)

    refused = httpx.get(f"{app.url}/agent/inspect")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["cache-control"] == "no-store"
    assert '<form class="login" method="post" action="/agent/inspect/login">' in refused.text
    assert httpx.get(f"{app.url}/agent/inspect/threads/alices-thread").status_code == 401
    wrong = httpx.get(f"{app.url}/agent/inspect", headers={"Authorization": "Bearer sk-eve"})
    assert wrong.status_code == 401

    listed = httpx.get(f"{app.url}/agent/inspect", headers=BOB)
    assert listed.status_code == 200
    assert links(listed.text, "thread-link") == ["/agent/inspect/threads/bobs-thread"]
    assert "alice" not in listed.text

    stolen = httpx.get(f"{app.url}/agent/inspect/threads/alices-thread", headers=BOB)
    assert stolen.status_code == 404
    assert "for alice only" not in stolen.text
    own = httpx.get(f"{app.url}/agent/inspect/threads/alices-thread", headers=ALICE)
    assert own.status_code == 200
    assert "echo for alice only" in own.text


def test_signing_in_keeps_the_key_in_a_strict_cookie_for_agent(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(api_keys=["sk-alice"]))
    run(app, "echo cookie", "c1", ALICE)

    with httpx.Client(base_url=app.url) as browser:
        bad = browser.post("/agent/inspect/login", data={"key": "sk-wrong"})
        assert bad.status_code == 401
        assert "Incorrect API key" in bad.text
        signed = browser.post(
            "/agent/inspect/login", data={"key": "sk-alice", "target": "/agent/inspect/threads/c1"}
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == "/agent/inspect/threads/c1"
        cookie = signed.headers["set-cookie"].lower()
        for attribute in ("httponly", "samesite=strict", "path=/agent"):
            assert attribute in cookie
        assert browser.get("/agent/inspect/threads/c1").status_code == 200
        # The playground's own requests (same origin) run with the cookie.
        same_origin = browser.post(
            "/agent/invoke",
            json={
                "input": {"messages": [{"type": "human", "content": "echo again"}]},
                "config": {"configurable": {"thread_id": "c1"}},
            },
            headers={"Sec-Fetch-Site": "same-origin"},
        )
        assert same_origin.status_code == 200
        # A page of another origin (another port is the same site) cannot use it.
        for header in ({"Sec-Fetch-Site": "same-site"}, {"Origin": "http://127.0.0.1:1"}):
            forged = browser.post(
                "/agent/invoke",
                json={
                    "input": {"messages": [{"type": "human", "content": "echo forged"}]},
                    "config": {"configurable": {"thread_id": "c1"}},
                },
                headers=header,
            )
            assert forged.status_code == 401
        assert browser.post("/agent/inspect/logout").status_code == 303
        assert browser.get("/agent/inspect").status_code == 401
    # Another origin cannot sign a browser in with its own key, nor out.
    for header in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://127.0.0.1:1"}):
        planted = httpx.post(
            f"{app.url}/agent/inspect/login", data={"key": "sk-alice"}, headers=header
        )
        assert planted.status_code == 403
        assert "set-cookie" not in planted.headers
        assert httpx.post(f"{app.url}/agent/inspect/logout", headers=header).status_code == 403
    # An open redirect is refused.
    elsewhere = httpx.post(
        f"{app.url}/agent/inspect/login", data={"key": "sk-alice", "target": "//evil.example/"}
    )
    assert elsewhere.headers["location"] == "/agent/inspect"


def test_thread_contents_are_escaped_and_long_text_is_cut(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings())
    run(app, "echo <script>alert('x')</script>", "hostile")
    long = "y" * (TEXT_LIMIT + 500)
    run(app, long, "hostile")

    page = httpx.get(f"{app.url}/agent/inspect/threads/hostile").text

    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert long not in page
    assert f"cut: {TEXT_LIMIT} of {TEXT_LIMIT + 500} characters shown" in page
    listing = httpx.get(f"{app.url}/agent/inspect").text
    assert "<script>" not in listing


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    """Default settings on each checkpointer; PostgreSQL gets a fresh database."""
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("postgres_url"))
    return make_settings()


def test_the_list_is_newest_first_in_pages(store_settings: Settings, serve: Serve) -> None:
    app = serve(store_settings)
    for name in ("first", "second", "third"):
        run(app, f"echo {name}", name)
    run(app, "echo again", "first")  # a new turn brings it to the top

    page_one = httpx.get(f"{app.url}/agent/inspect", params={"limit": 2}).text
    assert links(page_one, "thread-link") == [
        "/agent/inspect/threads/first",
        "/agent/inspect/threads/third",
    ]
    (older,) = links(page_one, "older")
    page_two = httpx.get(f"{app.url}{older}").text
    assert links(page_two, "thread-link") == ["/agent/inspect/threads/second"]
    assert links(page_two, "older") == []
    assert "again" in page_one  # the last message's preview
    assert httpx.get(f"{app.url}/agent/inspect", params={"limit": 0}).status_code == 400


@pytest.mark.parametrize("thread_id", ["plain", "spaced & <odd>"])
def test_a_checkpoints_playground_link_runs_from_that_checkpoint(
    make_settings: SettingsFactory, serve: Serve, thread_id: str
) -> None:
    app = serve(make_settings())
    run(app, "What is 17 * 23?", thread_id)
    run(app, "echo second turn", thread_id)
    first_turn = history(app, thread_id)[-1]["checkpoint_id"]

    page = httpx.get(f"{app.url}/agent/inspect/threads/{quote(thread_id, safe='')}").text
    playground = {link for link in links(page, "run") if link.endswith("/playground/")}
    assert len(playground) == 2
    link = next(iter(sorted(playground, key=page.index)))  # the oldest checkpoint's
    served = httpx.get(f"{app.url}{link}")
    assert served.status_code == 200
    assert "<title>" in served.text  # LangServe's playground page

    # The playground sends the config of its path with every run: so does this request.
    base = link.removesuffix("playground/")
    branched = httpx.post(
        f"{app.url}{base}invoke",
        json={"input": {"messages": [{"type": "human", "content": "echo from the link"}]}},
    )
    assert branched.status_code == 200, branched.text
    children = [c for c in history(app, thread_id) if c["parent_checkpoint_id"] == first_turn]
    assert len(children) == 2  # the second turn, and the branch run from the link
    page = httpx.get(f"{app.url}/agent/inspect/threads/{quote(thread_id, safe='')}").text
    assert "fork point · 2 branches" in page
    assert "echo from the link" in page


def test_a_failed_provider_attempt_is_shown_with_its_error_class(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream, secondary: FakeUpstream
) -> None:
    settings = make_settings(
        agent_models={"m": ["openai:gpt-a", "openai-compatible:gpt-b"]},
        openai_base_url=primary.openai_base_url,
        openai_compatible_base_url=secondary.openai_base_url,
        provider_max_retries=0,
    )
    app = serve(settings)
    primary.script(Fault.server_error())
    secondary.script(Reply("answered by the second"))

    run(app, "hello", "fallback", model="m")

    page = httpx.get(f"{app.url}/agent/inspect/threads/fallback").text
    rows = re.findall(
        r"<tr><td class=\"mono\">(.*?)</td><td><span class=\"badge (\w+)\">(\w+)"
        r"</span></td><td>(.*?)</td>",
        page,
    )
    assert rows == [
        ("openai:gpt-a", "error", "error", "server_error"),
        ("openai-compatible:gpt-b", "ok", "ok", ""),
    ]
    assert "answered by the second" in page


def test_a_long_history_shows_its_newest_checkpoints_and_links_to_more(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(checkpoint_durability="sync"))  # a checkpoint per step
    run(app, "What is 17 * 23?", "long")
    total = len(history(app, "long"))

    page = httpx.get(f"{app.url}/agent/inspect/threads/long", params={"limit": 3}).text

    assert page.count('<section class="checkpoint') == 3
    assert "Only the newest 3 checkpoints are shown" in page
    assert "(its parent is older than the checkpoints shown)" in page
    (more,) = links(page, "more")
    assert more == "?limit=12"
    full = httpx.get(f"{app.url}/agent/inspect/threads/long", params={"limit": 12}).text
    assert full.count('<section class="checkpoint') == total < 12
    assert "Only the newest" not in full


def test_the_pages_forbid_framing_and_allow_only_their_own_inline_code(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(api_keys=["sk-alice"]))
    pages = {
        "login": httpx.get(f"{app.url}/agent/inspect"),  # the 401 sign-in page
        "threads": httpx.get(f"{app.url}/agent/inspect", headers=ALICE),
        "missing": httpx.get(f"{app.url}/agent/inspect/threads/nope", headers=ALICE),
        "playground": httpx.get(f"{app.url}/agent/playground/", headers=ALICE),
    }
    for name, page in pages.items():
        assert page.headers["content-type"].startswith("text/html"), name
        assert page.headers["x-frame-options"] == "DENY", name
        assert page.headers["x-content-type-options"] == "nosniff", name
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy, name
        assert "base-uri 'none'" in policy, name
        assert "form-action 'self'" in policy, name
    for name in ("login", "threads", "missing"):  # no script; the one style block by hash
        policy = pages[name].headers["content-security-policy"]
        (style,) = re.findall(r"<style>(.*?)</style>", pages[name].text, re.DOTALL)
        assert policy.startswith(f"default-src 'none'; style-src {sha256_source(style)};")
        assert "script" not in policy
    (script,) = re.findall(r"<script>(.*?)</script>", pages["playground"].text, re.DOTALL)
    assert "window.INPUT_SCHEMA" in script
    playground_policy = pages["playground"].headers["content-security-policy"]
    assert f"script-src 'self' {sha256_source(script)} " in playground_policy
    # Not a page: no page policy, but never sniffed either.
    for response in (httpx.get(f"{app.url}/health"), httpx.get(f"{app.url}/v1/models")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in response.headers


def sha256_source(text: str) -> str:
    """A CSP hash source of an inline element's text."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"
