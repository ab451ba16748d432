"""The /v1 response wire, byte for byte: what the adapter builds, serialised as the door does.

The expected bytes were captured from the adapter before it was typed; they pin which fields
are null and which are absent, the key order, and the escaping of each transport. The
non-streamed answer and error bodies go out through Starlette's `JSONResponse` (UTF-8 as is);
each SSE event is `json.dumps(payload, separators=(",", ":"))` (non-ASCII escaped), as
`server/chat/routes.py` writes it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from langchain_core.messages import ToolCall
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from graph.errors import ErrorCode
from graph.state import Usage
from server.chat.adapter import chunk, completion, tool_call_deltas
from server.errors import error_body

COMMON: dict[str, Any] = {"cid": "chatcmpl-1", "model": "m", "created": 1}
USAGE = Usage(input_tokens=7, output_tokens=3, total_tokens=10)
#: Non-ASCII, DEL and an astral character: each transport escapes them its own way.
ODD_TEXT = "H\u00e9\x7f\U0001f600"
CALLS = [
    ToolCall(name="get_weather", args={"city": "Oslo"}, id="c1"),
    ToolCall(name="now", args={}, id="c2"),
]
HEAD = '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":'
CHUNK_HEAD = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
USAGE_JSON = '"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}'
WEATHER_CALL = (
    '{"id":"c1","type":"function","function":'
    '{"name":"get_weather","arguments":"{\\"city\\": \\"Oslo\\"}"}}'
)
NOW_CALL = '{"id":"c2","type":"function","function":{"name":"now","arguments":"{}"}}'


def as_json_response(payload: Any) -> str:
    return bytes(JSONResponse(payload).body).decode()


def as_sse_data(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _choice(delta: str, finish: str = "null") -> str:
    return f'"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]'


COMPLETIONS = [
    pytest.param(
        {"text": ODD_TEXT, "finish_reason": "stop", "usage": USAGE},
        HEAD + '[{"index":0,"message":{"role":"assistant","content":"H\u00e9\x7f\U0001f600",'
        '"refusal":null},"logprobs":null,"finish_reason":"stop"}],' + USAGE_JSON + "}",
        id="text",
    ),
    pytest.param(
        {"text": "", "finish_reason": "tool_calls", "usage": None, "tool_calls": CALLS},
        HEAD + '[{"index":0,"message":{"role":"assistant","content":null,"refusal":null,'
        f'"tool_calls":[{WEATHER_CALL},{NOW_CALL}]}},"logprobs":null,'
        '"finish_reason":"tool_calls"}],'
        '"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}',
        id="tool-calls-no-text-no-usage",
    ),
    pytest.param(
        {
            "text": "Let me look.",
            "finish_reason": "tool_calls",
            "usage": USAGE,
            "tool_calls": CALLS[:1],
        },
        HEAD + '[{"index":0,"message":{"role":"assistant","content":"Let me look.",'
        f'"refusal":null,"tool_calls":[{WEATHER_CALL}]}},"logprobs":null,'
        '"finish_reason":"tool_calls"}],' + USAGE_JSON + "}",
        id="tool-call-with-text",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), COMPLETIONS)
def test_a_completion_is_today_s_json_and_an_sdk_chat_completion(
    fields: dict[str, Any], expected: str
) -> None:
    payload = completion(**COMMON, **fields)
    assert as_json_response(payload) == expected
    parsed = ChatCompletion.model_validate(json.loads(expected))
    assert parsed.choices[0].finish_reason == fields["finish_reason"]
    assert len(parsed.choices[0].message.tool_calls or []) == len(fields.get("tool_calls") or [])


CHUNKS = [
    pytest.param(
        {"delta": {"role": "assistant", "content": ""}, "with_usage_field": True},
        CHUNK_HEAD + _choice('{"role":"assistant","content":""}') + ',"usage":null}',
        id="first-with-usage-field",
    ),
    pytest.param(
        {"delta": {"content": ODD_TEXT}},
        CHUNK_HEAD + _choice('{"content":"H\\u00e9\\u007f\\ud83d\\ude00"}') + "}",
        id="content",
    ),
    pytest.param(
        {"delta": {"reasoning_content": "thinking"}, "with_usage_field": True},
        CHUNK_HEAD + _choice('{"reasoning_content":"thinking"}') + ',"usage":null}',
        id="reasoning",
    ),
    pytest.param(
        {"finish_reason": "tool_calls", "with_usage_field": True},
        CHUNK_HEAD + _choice("{}", '"tool_calls"') + ',"usage":null}',
        id="finish-with-usage-field",
    ),
    pytest.param(
        {"finish_reason": "stop"}, CHUNK_HEAD + _choice("{}", '"stop"') + "}", id="finish"
    ),
    pytest.param(
        {"usage": USAGE, "with_usage_field": True},
        CHUNK_HEAD + '"choices":[],' + USAGE_JSON + "}",
        id="usage",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), CHUNKS)
def test_a_chunk_is_today_s_json_and_an_sdk_chat_completion_chunk(
    fields: dict[str, Any], expected: str
) -> None:
    payload = chunk(**COMMON, **fields)
    assert as_sse_data(payload) == expected
    parsed = ChatCompletionChunk.model_validate(json.loads(expected))
    assert (parsed.usage is None) == (fields.get("usage") is None)
    assert [c.finish_reason for c in parsed.choices] == (
        [] if "usage" in fields else [fields.get("finish_reason")]
    )


def test_tool_calls_stream_as_one_complete_delta_each_with_its_index() -> None:
    deltas = tool_call_deltas(CALLS)
    sent = [as_sse_data(chunk(**COMMON, delta=delta)) for delta in deltas]
    assert sent == [
        CHUNK_HEAD + _choice('{"tool_calls":[{"index":0,' + WEATHER_CALL[1:] + "]}") + "}",
        CHUNK_HEAD + _choice('{"tool_calls":[{"index":1,' + NOW_CALL[1:] + "]}") + "}",
    ]
    parsed = [ChatCompletionChunk.model_validate(json.loads(s)) for s in sent]
    calls = [d for c in parsed for d in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.id) for d in calls] == [(0, "c1"), (1, "c2")]
    assert tool_call_deltas([]) == []


def test_a_tool_call_without_an_id_goes_out_with_an_empty_one() -> None:
    (delta,) = tool_call_deltas([ToolCall(name="now", args={}, id=None)])
    assert '"id":""' in as_sse_data(chunk(**COMMON, delta=delta))


def test_an_error_body_is_today_s_json_in_both_transports() -> None:
    found = error_body(404, "No such model.", code=ErrorCode.MODEL_NOT_FOUND, param="model")
    expected = (
        '{"error":{"message":"No such model.","type":"not_found_error",'
        '"param":"model","code":"model_not_found"}}'
    )
    assert as_json_response(found) == expected
    assert as_sse_data(found) == expected
    crash = error_body(500, "H\u00e9")
    assert as_sse_data(crash) == (
        '{"error":{"message":"H\\u00e9","type":"api_error","param":null,"code":null}}'
    )
    assert error_body(429, "slow")["error"]["type"] == "rate_limit_error"
    assert error_body(413, "big")["error"]["type"] == "invalid_request_error"
    assert error_body(503, "later")["error"]["type"] == "api_error"
