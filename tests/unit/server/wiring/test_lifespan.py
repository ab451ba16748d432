"""The lifespan opens what the settings use, and only that."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from server.app import create_app
from server.wiring.lifespan import search_client
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.helpers import chat_body


@pytest.fixture
def searxng() -> Iterator[tuple[str, list[str]]]:
    """A SearXNG answering every search with one result; its URL and the queries it saw."""
    seen: list[str] = []

    async def search(request: Request) -> JSONResponse:
        seen.append(request.query_params["q"])
        found = {"title": "Checkpoints", "url": "https://example.org/cp", "content": "Saved."}
        return JSONResponse({"results": [found]})

    served = ServedApp(Starlette(routes=[Route("/search", search)])).start()
    try:
        yield served.url, seen
    finally:
        served.stop()


async def test_web_search_has_a_pooled_client_only_when_it_is_configured(
    make_settings: SettingsFactory,
) -> None:
    async with search_client(make_settings()) as none:
        assert none is None
    async with search_client(make_settings(searxng_url="http://127.0.0.1:9")) as client:
        assert isinstance(client, httpx.AsyncClient)
        assert not client.is_closed
    assert client.is_closed


async def ask_offline(make_settings: SettingsFactory, text: str, **overrides: str) -> str:
    app = create_app(make_settings(**overrides))
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/v1/chat/completions", json=chat_body(("user", text)))
    assert response.status_code == 200
    return str(response.json()["choices"][0]["message"]["content"])


async def test_web_search_through_the_app_with_and_without_searxng(
    make_settings: SettingsFactory, searxng: tuple[str, list[str]]
) -> None:
    url, seen = searxng

    found = await ask_offline(make_settings, "search for langgraph checkpoints", searxng_url=url)
    unconfigured = await ask_offline(make_settings, "search for langgraph checkpoints")

    assert "https://example.org/cp" in found
    assert seen == ["langgraph checkpoints"]
    assert "SEARXNG_URL" in unconfigured


@pytest.mark.parametrize(
    ("keys", "warning"),
    [
        ({}, "/admin (cache, usage) is OPEN to anyone, like /v1"),
        ({"api_keys": ["sk-client"]}, "/admin (cache, usage) is reachable with any client key"),
        ({"api_keys": ["sk-client"], "admin_api_keys": ["sk-admin"]}, None),
    ],
)
async def test_the_start_says_who_can_reach_admin_without_admin_keys(
    make_settings: SettingsFactory,
    caplog: pytest.LogCaptureFixture,
    keys: dict[str, list[str]],
    warning: str | None,
) -> None:
    app = create_app(make_settings(**keys))
    with caplog.at_level("INFO", logger="server.wiring.lifespan"):
        async with app.router.lifespan_context(app):
            pass
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    about_admin = [message for message in warned if "ADMIN_API_KEYS" in message]
    assert about_admin == ([f"no ADMIN_API_KEYS: {warning}; /metrics is open"] if warning else [])
    if warning is None:
        assert any("admin keys required" in r.getMessage() for r in caplog.records)
