"""Every failure leaves the service as OpenAI's `{"error": {...}}` with the right status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg_pool
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from graph.errors import (
    AgentError,
    AllProvidersFailedError,
    ErrorCode,
    ErrorKind,
    ModelNotFoundError,
    ProviderFailure,
    ProviderRejectedError,
    ProviderStreamBrokenError,
    ToolInputError,
)
from server.errors import (
    OpenAIHTTPError,
    agent_error_status,
    error_body,
    install_error_handlers,
)
from server.refusals import STORE_RETRY_AFTER
from server.turns.disconnect import ClientGone


def rejected(status: int | None, kind: ErrorKind = ErrorKind.BAD_REQUEST) -> ProviderRejectedError:
    failure = ProviderFailure(kind=kind, detail="bad", status=status)
    return ProviderRejectedError("m", [], provider="openai:x", failure=failure)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "conflict_error"),
        (413, "invalid_request_error"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
    ],
)
def test_the_error_type_follows_the_status(status: int, kind: str) -> None:
    body = error_body(status, "msg", code=ErrorCode.INVALID_REQUEST, param="p")
    assert body == {
        "error": {"message": "msg", "type": kind, "param": "p", "code": "invalid_request"}
    }


@pytest.mark.parametrize(
    ("error", "status", "headers"),
    [
        (ModelNotFoundError("x", ["m"]), 404, {}),
        (AllProvidersFailedError("m", []), 502, {"x-should-retry": "false"}),
        (ProviderStreamBrokenError("p", "reset"), 502, {"x-should-retry": "false"}),
        (rejected(413), 413, {"x-should-retry": "false"}),
        (rejected(401), 400, {"x-should-retry": "false"}),  # one the client cannot act on
        (rejected(None), 400, {"x-should-retry": "false"}),
        (ToolInputError("bad args"), 400, {}),
        (AgentError("anything else"), 400, {}),
    ],
)
def test_agent_errors_map_to_a_status_and_whether_to_retry(
    error: AgentError, status: int, headers: dict[str, str]
) -> None:
    assert agent_error_status(error) == (status, headers)


def test_a_context_length_rejection_keeps_its_own_code() -> None:
    error = rejected(400, ErrorKind.CONTEXT_LENGTH)
    assert error.code.value == "context_length_exceeded"
    assert "openai:x" in error.message


# --- the handlers, on an app of their own ---------------------------------------------------


class Body(BaseModel):
    count: int


RAISED: dict[str, Exception] = {
    "openai": OpenAIHTTPError(
        409, "busy", code=ErrorCode.THREAD_BUSY, param="thread", headers={"retry-after": "1"}
    ),
    "model": ModelNotFoundError("gpt-x", ["offline"]),
    "rejected": rejected(422),
    "store-down": psycopg_pool.PoolTimeout("pool timeout"),
    "db-bug": psycopg.errors.LockNotAvailable("lock timeout"),
    "gone": ClientGone(),
    "bug": RuntimeError("secret internals"),
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{name}")
    async def raise_it(name: str) -> None:
        raise RAISED[name]

    @app.post("/body")
    async def body(payload: Body) -> dict[str, Any]:
        return {"count": payload.count}

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def error_of(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_a_deliberate_error_keeps_its_status_fields_and_headers(client: TestClient) -> None:
    response = client.get("/raise/openai")
    assert (response.status_code, response.headers["retry-after"]) == (409, "1")
    assert error_of(response) == {
        "message": "busy",
        "type": "conflict_error",
        "param": "thread",
        "code": "thread_busy",
    }


def test_an_unknown_model_is_a_404_about_the_model_field(client: TestClient) -> None:
    response = client.get("/raise/model")
    error = error_of(response)
    assert response.status_code == 404
    assert (error["param"], error["code"], error["type"]) == (
        "model",
        "model_not_found",
        "not_found_error",
    )
    assert "gpt-x" in error["message"]


def test_a_provider_rejection_keeps_the_provider_s_status(client: TestClient) -> None:
    response = client.get("/raise/rejected")
    assert (response.status_code, response.headers["x-should-retry"]) == (422, "false")
    assert error_of(response)["code"] == "provider_rejected_request"


def test_a_store_that_is_down_is_a_503_to_retry_and_other_db_errors_a_500(
    client: TestClient,
) -> None:
    down = client.get("/raise/store-down")
    assert (down.status_code, down.headers["retry-after"]) == (503, STORE_RETRY_AFTER)
    assert error_of(down)["code"] == "checkpointer_unavailable"
    bug = client.get("/raise/db-bug")
    assert bug.status_code == 500
    assert "retry-after" not in bug.headers


def test_an_unexpected_error_is_a_500_without_its_internals(client: TestClient) -> None:
    response = client.get("/raise/bug")
    assert response.status_code == 500
    assert "secret" not in response.text
    assert error_of(response)["type"] == "api_error"


def test_a_client_that_left_gets_499_for_the_access_log(client: TestClient) -> None:
    assert client.get("/raise/gone").status_code == 499


def test_an_unknown_route_is_an_openai_404(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert error_of(response)["type"] == "not_found_error"


def test_a_body_that_is_not_json_is_invalid_json(client: TestClient) -> None:
    response = client.post("/body", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_json"
    assert error["message"].startswith("We could not parse the JSON body")


def test_a_body_that_does_not_validate_names_the_field(client: TestClient) -> None:
    response = client.post("/body", json={"count": "many"})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["param"]) == ("invalid_request", "count")
    assert error["message"].startswith("Invalid request: count: ")
