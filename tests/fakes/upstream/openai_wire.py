"""Steps rendered as OpenAI Chat Completions responses: JSON bodies, SSE chunks, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from tests.fakes.upstream.rendering import (
    Event,
    dumps,
    new_id,
    phrase,
    split_fragments,
    split_text,
    token_usage,
)
from tests.fakes.upstream.steps import ContextLengthFault, CutStreamFault, Reply, StatusFault

_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


class OpenAIWire:
    """Renders steps as OpenAI Chat Completions responses."""

    request_id_header = "x-request-id"

    @staticmethod
    def _model(reply: Reply, body: Mapping[str, Any]) -> str:
        return reply.model or str(body.get("model") or "fake-model")

    @staticmethod
    def _finish(reply: Reply) -> str:
        if reply.finish_reason is not None:
            return _OPENAI_FINISH.get(reply.finish_reason, reply.finish_reason)
        return "tool_calls" if reply.tool_calls else "stop"

    @staticmethod
    def _usage(reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
        prompt, completion = token_usage(reply, body)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def completion(self, reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text if reply.text or not reply.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if reply.reasoning is not None:
            message[reply.reasoning_field] = reply.reasoning
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or new_id("call_"),
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in reply.tool_calls
            ]
        return {
            "id": new_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model(reply, body),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish(reply),
                }
            ],
            "usage": self._usage(reply, body),
            "service_tier": "default",
            "system_fingerprint": None,
        }

    def _chunker(
        self, reply: Reply, body: Mapping[str, Any]
    ) -> Callable[[list[dict[str, Any]]], bytes]:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base: dict[str, Any] = {
            "id": new_id("chatcmpl-", 29),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._model(reply, body),
            "service_tier": "default",
            "system_fingerprint": None,
        }

        def chunk(choices: list[dict[str, Any]]) -> bytes:
            payload = {**base, "choices": choices}
            if include_usage:
                payload["usage"] = None
            return b"data: " + dumps(payload) + b"\n\n"

        return chunk

    @staticmethod
    def _delta(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    def stream(self, reply: Reply, body: Mapping[str, Any]) -> list[Event]:
        chunk = self._chunker(reply, body)
        role_content = "" if reply.text or not reply.tool_calls else None
        events = [Event(chunk(self._delta({"role": "assistant", "content": role_content})))]
        events += [
            Event(chunk(self._delta({reply.reasoning_field: part})), paced=True)
            for part in split_text(reply.reasoning or "")
        ]
        events += [
            Event(chunk(self._delta({"content": part})), paced=True)
            for part in split_text(reply.text)
        ]
        for index, call in enumerate(reply.tool_calls):
            head = {
                "index": index,
                "id": call.id or new_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(Event(chunk(self._delta({"tool_calls": [head]})), paced=True))
            for fragment in split_fragments(json.dumps(call.arguments)):
                delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                events.append(Event(chunk(self._delta(delta)), paced=True))
        events.append(Event(chunk(self._delta({}, self._finish(reply)))))
        if (body.get("stream_options") or {}).get("include_usage"):
            final = json.loads(chunk([])[len(b"data: ") :])
            final["usage"] = self._usage(reply, body)
            events.append(Event(b"data: " + dumps(final) + b"\n\n"))
        events.append(Event(b"data: [DONE]\n\n"))
        return events

    def partial_stream(self, fault: CutStreamFault, body: Mapping[str, Any]) -> list[Event]:
        reply = Reply(fault.text)
        chunk = self._chunker(reply, body)
        events = [Event(chunk(self._delta({"role": "assistant", "content": ""})))]
        events += [
            Event(chunk(self._delta({"content": part})))
            for part in split_text(fault.text)[: fault.after_chunks]
        ]
        return events

    @staticmethod
    def malformed_body() -> bytes:
        return b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"ind'

    @staticmethod
    def malformed_stream() -> list[Event]:
        return [Event(b'data: {"id": "chatcmpl-broken", "object": "chat.completion.ch\n\n')]

    @staticmethod
    def error(fault: StatusFault) -> dict[str, Any]:
        status = fault.status
        default_type = (
            "requests"
            if status == 429
            else "server_error"
            if status >= 500
            else "invalid_request_error"
        )
        default_messages = {
            400: "Invalid request.",
            401: "Incorrect API key provided: test. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            404: "The model `fake-model` does not exist or you do not have access to it.",
            429: "Rate limit reached for fake-model in organization org-fake on requests "
            "per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
            500: "The server had an error while processing your request. Sorry about that!",
            503: "The engine is currently overloaded, please try again later.",
        }
        default_codes = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}
        return {
            "error": {
                "message": fault.message or default_messages.get(status, phrase(status)),
                "type": fault.error_type or default_type,
                "param": None,
                "code": fault.error_code or default_codes.get(status),
            }
        }

    @staticmethod
    def context_length(fault: ContextLengthFault) -> dict[str, Any]:
        return {
            "error": {
                "message": (
                    f"This model's maximum context length is {fault.limit} tokens. "
                    f"However, your messages resulted in {fault.requested} tokens. "
                    "Please reduce the length of the messages."
                ),
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
