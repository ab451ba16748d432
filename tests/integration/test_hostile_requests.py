"""Hostile requests over real HTTP, on every door: stalling bodies, huge numbers, media types,
cross-site writes.

What issue 20 found: a 24 KB body stalled the whole service before its key was checked; a
5000-digit integer was a 500 on `/agent` and `/mcp`; a form or `text/plain` body reached
LangServe (a 500, or from any web page, an answered and stored turn); a cross-site page could
write to an open service. Bodies are raw bytes sent with httpx, as an attacker sends them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from server.graph_api.door import is_door_path
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.helpers import thread_messages

Serve = Callable[[Settings], ServedApp]

JSON = {"content-type": "application/json"}
MCP_ACCEPT = {"accept": "application/json, text/event-stream"}
KEY = "sk-client"
ADMIN_KEY = "sk-admin"

AGENT_INPUT = b'{"messages":[{"type":"human","content":"hi"}]}'
AGENT_CONFIG = b'{"configurable":{"thread_id":"t","n":%s}}'
DOORS: dict[str, tuple[str, bytes]] = {
    "chat": (
        "/v1/chat/completions",
        b'{"model":"offline","messages":[{"role":"user","content":"hi"}],'
        b'"metadata":{"thread_id":"t"},"seed":%s}',
    ),
    "responses": ("/v1/responses", b'{"model":"offline","input":"hi","max_output_tokens":%s}'),
    **{
        f"agent {endpoint}": (
            f"/agent/{endpoint}",
            b'{"input":' + AGENT_INPUT + b',"config":' + AGENT_CONFIG + b"}",
        )
        for endpoint in ("invoke", "stream", "stream_events", "stream_log")
    },
    "agent batch": (
        "/agent/batch",
        b'{"inputs":[' + AGENT_INPUT + b'],"config":' + AGENT_CONFIG + b"}",
    ),
    "mcp": (
        "/mcp",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"chat",'
        b'"arguments":{"message":"hi","thread_id":"t"},"_meta":{"n":%s}}}',
    ),
    "admin knowledge": (
        "/admin/knowledge",
        b'{"documents":[{"id":"a","text":"some text","metadata":{"n":%s}}]}',
    ),
}
"""Every door that takes a JSON body: its path, and a body with a number in it (`%s`)."""

THREAD_DOORS = ["chat", "agent invoke", "agent stream", "agent batch", "mcp"]
"""The doors whose request above writes to thread `t`."""


def post(
    app: ServedApp,
    door: str,
    number: bytes = b"1",
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> httpx.Response:
    path, body = DOORS[door]
    sent = {**JSON, **MCP_ACCEPT, **(headers or {})}
    sent = {name: value for name, value in sent.items() if value}
    return httpx.post(f"{app.url}{path}", content=body % number, headers=sent, timeout=timeout)


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def rpc_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["jsonrpc"] == "2.0"
    error: dict[str, Any] = answer["error"]
    return error


def open_service(make_settings: SettingsFactory, serve: Serve, **extra: Any) -> ServedApp:
    return serve(make_settings(**extra))


# --- 1. the pre-auth stall ----------------------------------------------------------------


def stall(size: int) -> bytes:
    """Issue 20's payload: 201 `[`, one `"`, then escaped quotes up to about `size` bytes."""
    return b"[" * 201 + b'"' + b'\\"' * ((size - 202) // 2)


@pytest.mark.parametrize("door", ["chat", "responses", "agent invoke", "admin knowledge"])
def test_without_a_key_a_stalling_body_is_refused_before_it_is_read(
    make_settings: SettingsFactory, serve: Serve, door: str
) -> None:
    app = serve(make_settings(api_keys=[KEY], admin_api_keys=[ADMIN_KEY]))
    path = DOORS[door][0]
    for size in (24_000, 100_000):
        response = httpx.post(f"{app.url}{path}", content=stall(size), headers=JSON, timeout=60)
        assert openai_error(response, 401)["code"] == "missing_api_key"


def test_without_a_key_the_mcp_door_refuses_a_stalling_body_itself(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(api_keys=[KEY]))
    headers = {**JSON, **MCP_ACCEPT}
    response = httpx.post(f"{app.url}/mcp", content=stall(100_000), headers=headers, timeout=60)
    assert openai_error(response, 401)["code"] == "missing_api_key"


@pytest.mark.parametrize("keys", [False, True], ids=["open", "keyed"])
def test_health_answers_while_stalling_bodies_are_posted(
    make_settings: SettingsFactory, serve: Serve, keys: bool
) -> None:
    """100 KB stalls, four at a time: each is answered, and `/health` all along.

    Open, the body is scanned (and refused: it nests too deeply); keyed, it is never read.
    The old scan took minutes on each: the posts would time out, and `/health` with them.
    """
    app = serve(make_settings(api_keys=[KEY] if keys else []))
    body = stall(100_000)
    url = f"{app.url}/v1/chat/completions"
    with ThreadPoolExecutor(4) as pool:
        posts = [
            pool.submit(httpx.post, url, content=body, headers=JSON, timeout=60) for _ in range(4)
        ]
        health = [httpx.get(f"{app.url}/health", timeout=30)]
        while not all(post.done() for post in posts):
            health.append(httpx.get(f"{app.url}/health", timeout=30))
        answers = [post.result() for post in posts]
    assert all(answer.status_code == 200 for answer in health)
    for answer in answers:
        error = openai_error(answer, 401 if keys else 400)
        assert error["code"] == ("missing_api_key" if keys else "invalid_json")


# --- 2. numbers no decoder reads ----------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_a_5000_digit_integer_is_a_400_in_the_doors_own_shape(
    make_settings: SettingsFactory, serve: Serve, door: str
) -> None:
    app = open_service(make_settings, serve)

    response = post(app, door, b"9" * 5000)

    if door == "mcp":
        error = rpc_error(response, 400)
        assert error["code"] == -32700  # JSON-RPC's parse error, as MCP answers unreadable JSON
        assert "4300 digits" in error["message"]
    else:
        error = openai_error(response, 400)
        assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_json")
        assert "4300 digits" in error["message"]


async def test_a_number_too_long_stores_nothing(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings()
    app = serve(settings)
    for door in THREAD_DOORS:
        assert post(app, door, b"9" * 5000).status_code == 400
    assert await thread_messages(settings, "t") == []


# --- 3. JSON content types only -----------------------------------------------------------

NOT_JSON = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", ""]


@pytest.mark.parametrize("content_type", NOT_JSON, ids=["text", "text utf-8", "form", "none"])
@pytest.mark.parametrize("door", DOORS)
def test_a_body_that_is_not_json_by_its_type_is_a_415_on_every_door(
    make_settings: SettingsFactory, serve: Serve, door: str, content_type: str
) -> None:
    app = open_service(make_settings, serve)

    response = post(app, door, headers={"content-type": content_type})

    if door == "mcp":
        assert rpc_error(response, 415)["code"] == -32600
    else:
        error = openai_error(response, 415)
        assert (error["type"], error["code"]) == ("invalid_request_error", "unsupported_media_type")
        assert "application/json" in error["message"]


FORM_BODIES = {
    "not utf-8": b'{"input":{"messages":[{"type":"human","content":"a\xff\xfe"}]}}',
    "3000 deep": b'{"input":{"messages":[{"type":"human","content":"a"}]},"x":'
    + b"[" * 3000
    + b"]" * 3000
    + b"}",
    "lone surrogate": rb'{"input":{"messages":[{"type":"human","content":"a\ud800"}]}}',
}


@pytest.mark.parametrize("endpoint", ["invoke", "stream", "batch", "stream_events", "stream_log"])
@pytest.mark.parametrize("body", FORM_BODIES)
async def test_a_form_body_on_agent_is_a_415_not_a_500_nor_a_stored_turn(
    make_settings: SettingsFactory, serve: Serve, endpoint: str, body: str
) -> None:
    settings = make_settings()
    app = serve(settings)
    sent = FORM_BODIES[body]
    if endpoint == "batch":
        sent = sent.replace(b'{"input":', b'{"inputs":[', 1).replace(b"]}}", b"]}]}", 1)
    headers = {"content-type": "application/x-www-form-urlencoded"}

    response = httpx.post(f"{app.url}/agent/{endpoint}", content=sent, headers=headers)

    assert openai_error(response, 415)["code"] == "unsupported_media_type"


async def test_a_text_plain_post_from_a_web_page_is_not_answered_nor_stored(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    """What a page can send without a CORS preflight (an old browser: no Fetch Metadata)."""
    settings = make_settings()
    app = serve(settings)
    for endpoint in ("invoke", "stream", "batch"):
        response = post(app, f"agent {endpoint}", headers={"content-type": "text/plain"})
        assert response.status_code == 415
    assert await thread_messages(settings, "t") == []


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/x+json"]
)
@pytest.mark.parametrize("door", ["chat", "agent invoke"])
def test_json_with_parameters_or_a_json_suffix_is_json(
    make_settings: SettingsFactory, serve: Serve, door: str, content_type: str
) -> None:
    app = open_service(make_settings, serve)
    assert post(app, door, headers={"content-type": content_type}).status_code == 200


# --- 4. cross-site writes on an open service ----------------------------------------------

CROSS_SITE = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}


@pytest.mark.parametrize("door", DOORS)
async def test_a_cross_site_write_to_an_open_service_is_a_403_and_stores_nothing(
    make_settings: SettingsFactory, serve: Serve, door: str
) -> None:
    settings = make_settings()
    app = serve(settings)

    error = openai_error(post(app, door, headers=CROSS_SITE), 403)

    assert (error["type"], error["code"]) == ("permission_error", "cross_site_request")
    assert "CORS_ORIGINS" in error["message"]
    assert await thread_messages(settings, "t") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/cache/clear"),
        ("DELETE", "/admin/knowledge/a"),
        ("DELETE", "/v1/responses/resp_x"),
    ],
)
def test_a_cross_site_write_without_a_body_is_a_403_too(
    make_settings: SettingsFactory, serve: Serve, method: str, path: str
) -> None:
    app = open_service(make_settings, serve)
    response = httpx.request(method, f"{app.url}{path}", headers=CROSS_SITE)
    assert openai_error(response, 403)["code"] == "cross_site_request"


@pytest.mark.parametrize("site", ["same-origin", "same-site", "none"])
@pytest.mark.parametrize("door", ["chat", "agent invoke", "mcp"])
async def test_a_write_from_the_same_site_or_the_user_is_answered(
    make_settings: SettingsFactory, serve: Serve, door: str, site: str
) -> None:
    settings = make_settings()
    app = serve(settings)
    assert post(app, door, headers={"sec-fetch-site": site}).status_code == 200
    assert await thread_messages(settings, "t") != []


@pytest.mark.parametrize("door", ["chat", "agent invoke", "mcp"])
def test_a_cross_site_write_from_an_origin_cors_allows_is_answered(
    make_settings: SettingsFactory, serve: Serve, door: str
) -> None:
    origin = "https://chat.example"
    app = open_service(make_settings, serve, cors_origins=[origin])
    headers = {"sec-fetch-site": "cross-site", "origin": origin}

    response = post(app, door, headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == origin
    refused = post(app, door, headers=CROSS_SITE)
    assert openai_error(refused, 403)["code"] == "cross_site_request"


@pytest.mark.parametrize("door", ["chat", "agent invoke", "mcp"])
def test_with_keys_a_cross_site_write_is_judged_by_its_key(
    make_settings: SettingsFactory, serve: Serve, door: str
) -> None:
    """A page cannot send the key cross-site without a preflight; one that holds it may write."""
    app = serve(make_settings(api_keys=[KEY]))
    keyed = {**CROSS_SITE, "authorization": f"Bearer {KEY}"}
    assert post(app, door, headers=keyed).status_code == 200
    assert post(app, door, headers=CROSS_SITE).status_code == 401


def test_with_admin_keys_only_the_open_client_doors_still_refuse_cross_site_writes(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    """Admin keys only: `/v1` is open, so a page elsewhere may not write to it."""
    app = serve(make_settings(admin_api_keys=[ADMIN_KEY]))
    assert openai_error(post(app, "chat", headers=CROSS_SITE), 403)["code"] == "cross_site_request"
    keyed = {**CROSS_SITE, "authorization": f"Bearer {ADMIN_KEY}"}
    assert post(app, "admin knowledge", headers=keyed).status_code == 200


# --- every write route: the middleware and the door agree on the key ----------------------


def write_routes(app: ServedApp) -> list[tuple[str, str]]:
    """Every write route the app declares, path parameters filled in; and those it serves
    without declaring: `/mcp`, and LangServe's `/agent/c/{config}/…` (the playground's)."""
    paths = httpx.get(f"{app.url}/openapi.json").json()["paths"]
    routes = [
        (method.upper(), path.replace("{", "").replace("}", ""))
        for path, operations in paths.items()
        for method in operations
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE")
    ]
    undeclared = [
        ("POST", f"/agent/c/x/{name}")
        for name in ("invoke", "batch", "stream", "stream_log", "stream_events")
    ]
    return [*routes, *undeclared, ("POST", "/mcp")]


def test_every_write_route_is_refused_without_its_key_before_its_body_is_read(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    """For each route and key, a body too deep to read gets the door's own 401/403, or a 400
    (the LangGraph API door's 422).

    The 401/403 of a harmless body (`{}`) is the door's verdict on the key; the deep body must
    get the same, unread, or, once the key passes, the scan's 400.
    """
    app = serve(make_settings(api_keys=[KEY], admin_api_keys=[ADMIN_KEY]))
    routes = write_routes(app)
    assert len(routes) >= 17
    for method, path in routes:
        for key in (None, "wrong", KEY, ADMIN_KEY):
            headers = {**JSON, **MCP_ACCEPT}
            if key is not None:
                headers["authorization"] = f"Bearer {key}"
            url = f"{app.url}{path}"
            door = httpx.request(method, url, content=b"{}", headers=headers, timeout=60)
            deep = httpx.request(method, url, content=b"[" * 300, headers=headers, timeout=60)
            where = f"{method} {path} with {key}"
            if door.status_code in (401, 403):
                assert deep.status_code == door.status_code, where
                assert deep.json() == door.json(), where
            else:
                # The LangGraph API door answers a body it cannot read with its own 422.
                assert deep.status_code == (422 if is_door_path(path) else 400), where
                body = deep.json()
                assert "nests deeper" in json.dumps(body), where
