"""The error codes: one enum, each value unique, every value the service has always sent."""

from __future__ import annotations

from graph.errors import ErrorCode

#: The codes clients saw before the enum held them all; their values are the wire.
SENT_BEFORE = {
    "model_not_found",
    "all_providers_failed",
    "provider_stream_broken",
    "tool_input_invalid",
    "tool_unavailable",
    "invalid_request",
    "provider_rejected_request",
    "context_length_exceeded",
    "invalid_json",
    "request_too_large",
    "unsupported_value",
    "too_many_messages",
    "invalid_thread_id",
    "missing_api_key",
    "invalid_api_key",
    "thread_not_found",
    "thread_busy",
    "rate_limit_exceeded",
    "checkpointer_unavailable",
}


def test_every_code_has_its_own_value() -> None:
    # An Enum turns a repeated value into an alias of the first member, silently.
    values = [member.value for member in ErrorCode.__members__.values()]
    assert len(values) == len(set(values))


def test_no_code_the_service_sent_changed_or_went_missing() -> None:
    assert {member.value for member in ErrorCode} >= SENT_BEFORE


def test_a_code_is_its_string_on_the_wire() -> None:
    for member in ErrorCode:
        assert member == member.value
        assert f"{member}" == member.value
        assert member.name.lower() == member.value
