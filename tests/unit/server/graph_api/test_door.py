"""The LangGraph API door's frame, through the whole app in process: its key header, its
error shape, and the JSON it reads whatever the `Content-Type` says (Studio's `text/plain`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import Body
from fastapi.testclient import TestClient

from server.app import create_app
from server.graph_api.door import door_router, is_door_path, not_found
from tests.conftest import SettingsFactory

KEY = "sk-door-test"


@pytest.fixture
def client(make_settings: SettingsFactory) -> Iterator[TestClient]:
    """The app with one client key, and a probe route of this door that echoes its body."""
    app = create_app(make_settings(api_keys=[KEY]))
    probe = door_router(tags=["probe"])

    @probe.post("/threads/probe/echo")
    async def echo(body: dict[str, int] = Body()) -> dict[str, int]:  # noqa: B008
        return body

    @probe.get("/threads/probe/missing")
    async def missing() -> None:
        raise not_found("run", "r-1")

    app.include_router(probe)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_sdk_key_header_is_accepted_beside_bearer(client: TestClient) -> None:
    assert client.get("/info", headers={"x-api-key": KEY}).status_code == 200
    assert client.get("/info", headers={"authorization": f"Bearer {KEY}"}).status_code == 200
    # The same header on the other doors too: a key is a key.
    assert client.get("/v1/models", headers={"x-api-key": KEY}).status_code == 200


def test_a_missing_or_wrong_key_is_a_401_in_the_door_shape(client: TestClient) -> None:
    for headers in ({}, {"x-api-key": "sk-wrong"}):
        response = client.get("/info", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] in ("missing_api_key", "invalid_api_key")
        assert isinstance(response.json()["detail"], str)


def test_a_write_without_a_key_is_refused_before_its_body_in_the_door_shape(
    client: TestClient,
) -> None:
    response = client.post("/threads/probe/echo", json={"a": 1})
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}


def test_json_sent_as_text_plain_is_read_on_this_door_only(client: TestClient) -> None:
    headers = {"x-api-key": KEY, "content-type": "text/plain;charset=UTF-8"}
    response = client.post("/threads/probe/echo", content=b'{"a": 1}', headers=headers)
    assert (response.status_code, response.json()) == (200, {"a": 1})
    # The OpenAI door keeps its rule: a body must say it is JSON.
    other = client.post("/v1/chat/completions", content=b"{}", headers=headers)
    assert other.status_code == 415


def test_a_body_that_is_not_json_or_not_valid_is_a_422_with_a_json_detail(
    client: TestClient,
) -> None:
    headers = {"x-api-key": KEY, "content-type": "application/json"}
    for body in (b"{not json", b'{"a": "not a number"}', b"[1, 2]"):
        response = client.post("/threads/probe/echo", content=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["detail"], body


def test_a_refusal_keeps_its_status_with_the_door_shape(client: TestClient) -> None:
    response = client.get("/threads/probe/missing", headers={"x-api-key": KEY})
    assert response.status_code == 404
    assert response.json() == {"detail": "Run 'r-1' not found.", "code": "not_found"}


@pytest.mark.parametrize(
    ("path", "door"),
    [
        ("/info", True),
        ("/threads", True),
        ("/threads/t/runs/stream", True),
        ("/runs/wait", True),
        ("/store/items", True),
        ("/assistants/search", True),
        ("/threadsx", False),
        ("/v1/chat/completions", False),
        ("/agent/invoke", False),
    ],
)
def test_the_door_paths(path: str, door: bool) -> None:
    assert is_door_path(path) is door


def test_a_cross_site_page_cannot_post_text_plain_to_an_open_door(
    make_settings: SettingsFactory,
) -> None:
    """Text/plain is a type a page may send cross-site without asking (no CORS preflight):
    on an open service the browser's `Sec-Fetch-Site: cross-site` still refuses it."""
    app = create_app(make_settings())
    with TestClient(app, raise_server_exceptions=False) as open_client:
        headers = {"content-type": "text/plain", "sec-fetch-site": "cross-site"}
        response = open_client.post("/threads", content=b"{}", headers=headers)
        assert response.status_code == 403
        assert response.json()["code"] == "cross_site_request"
        same_site = {**headers, "sec-fetch-site": "same-site"}
        assert open_client.post("/threads", content=b"{}", headers=same_site).status_code == 200
