"""A refusal carries a code, never a status: `server.errors` gives every door the same one."""

from __future__ import annotations

import pytest

from graph.errors import ErrorCode
from server.auth import KeyRing, digest
from server.errors import http_error, status_of
from server.refusals import (
    Refused,
    checkpoint_not_found,
    invalid_request,
    store_away,
    thread_busy,
    thread_not_found,
)


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (thread_busy(), 409, ErrorCode.THREAD_BUSY),
        (thread_not_found("t"), 404, ErrorCode.THREAD_NOT_FOUND),
        (checkpoint_not_found("t"), 404, ErrorCode.CHECKPOINT_NOT_FOUND),
        (invalid_request("no"), 400, ErrorCode.INVALID_REQUEST),
        (store_away(), 503, ErrorCode.CHECKPOINTER_UNAVAILABLE),
        (Refused(ErrorCode.RATE_LIMIT_EXCEEDED, "slow down"), 429, ErrorCode.RATE_LIMIT_EXCEEDED),
        (Refused(ErrorCode.INSUFFICIENT_QUOTA, "spent"), 429, ErrorCode.INSUFFICIENT_QUOTA),
        (Refused(ErrorCode.TOO_MANY_MESSAGES, "many"), 400, ErrorCode.TOO_MANY_MESSAGES),
        (Refused(ErrorCode.INVALID_THREAD_ID, "bad"), 400, ErrorCode.INVALID_THREAD_ID),
    ],
)
def test_each_refusal_has_one_status_for_every_door(
    refusal: Refused, status: int, code: ErrorCode
) -> None:
    assert (refusal.code, status_of(refusal)) == (code, status)
    error = http_error(refusal)
    assert (error.status, error.code, error.message) == (status, code, refusal.message)
    assert error.headers == refusal.headers


def test_advice_travels_with_the_refusal() -> None:
    """`Retry-After` is advice for any shape: it stays with the refusal, not its status."""
    assert thread_busy().headers == {"retry-after": "1"}
    assert store_away().headers["retry-after"]


def test_a_wrong_key_is_a_401_with_its_challenge_and_a_client_key_on_admin_a_403() -> None:
    ring = KeyRing(frozenset({digest("client")}), frozenset({digest("admin")}))
    with pytest.raises(Refused) as missing:
        ring.caller(None)
    with pytest.raises(Refused) as wrong:
        ring.caller("Bearer nope")
    with pytest.raises(Refused) as client_on_admin:
        ring.operator("Bearer client")
    assert (missing.value.code, status_of(missing.value)) == (ErrorCode.MISSING_API_KEY, 401)
    assert (wrong.value.code, status_of(wrong.value)) == (ErrorCode.INVALID_API_KEY, 401)
    assert 'error="invalid_token"' in wrong.value.headers["www-authenticate"]
    assert status_of(client_on_admin.value) == 403
