"""Steps rendered as Anthropic Messages responses: JSON bodies, named SSE events, errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
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

_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def thinking_signature(reasoning: str) -> str:
    """The signature the fake puts on a thinking block (Anthropic's is opaque; this is stable)."""
    return "sig-" + hashlib.sha256(reasoning.encode()).hexdigest()[:32]


class AnthropicWire:
    """Renders steps as Anthropic Messages responses."""

    request_id_header = "request-id"

    @staticmethod
    def _model(reply: Reply, body: Mapping[str, Any]) -> str:
        return reply.model or str(body.get("model") or "claude-fake")

    @staticmethod
    def _stop(reply: Reply) -> str:
        if reply.finish_reason is not None:
            return _ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason)
        return "tool_use" if reply.tool_calls else "end_turn"

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    @staticmethod
    def _event(name: str, payload: dict[str, Any], *, paced: bool = False) -> Event:
        return Event(f"event: {name}\ndata: ".encode() + dumps(payload) + b"\n\n", paced)

    def _message(self, reply: Reply, body: Mapping[str, Any], input_tokens: int) -> dict[str, Any]:
        return {
            "id": new_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": self._model(reply, body),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(input_tokens, 1),
        }

    def completion(self, reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
        prompt, completion = token_usage(reply, body)
        content: list[dict[str, Any]] = []
        if reply.reasoning is not None:
            content.append(
                {
                    "type": "thinking",
                    "thinking": reply.reasoning,
                    "signature": thinking_signature(reply.reasoning),
                }
            )
        if reply.text or not reply.tool_calls:
            content.append({"type": "text", "text": reply.text})
        content += [
            {
                "type": "tool_use",
                "id": call.id or new_id("toolu_01", 22),
                "name": call.name,
                "input": call.arguments,
            }
            for call in reply.tool_calls
        ]
        message = self._message(reply, body, prompt)
        message.update(
            content=content, stop_reason=self._stop(reply), usage=self._usage(prompt, completion)
        )
        return message

    def _text_block(self, index: int, parts: list[str]) -> list[Event]:
        events = [
            self._event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        ]
        events += [
            self._event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": part},
                },
                paced=True,
            )
            for part in parts
        ]
        return events

    def _thinking_block(self, index: int, reasoning: str) -> list[Event]:
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": part} for part in split_text(reasoning)]
        deltas.append({"type": "signature_delta", "signature": thinking_signature(reasoning)})
        events = [
            self._event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        ]
        events += [
            self._event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
                paced=True,
            )
            for delta in deltas
        ]
        events.append(self._stop_block(index))
        return events

    def _stop_block(self, index: int) -> Event:
        return self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def stream(self, reply: Reply, body: Mapping[str, Any]) -> list[Event]:
        prompt, completion = token_usage(reply, body)
        message = self._message(reply, body, prompt)
        events = [
            self._event("message_start", {"type": "message_start", "message": message}),
            self._event("ping", {"type": "ping"}),
        ]
        index = 0
        if reply.reasoning is not None:
            events += self._thinking_block(index, reply.reasoning)
            index += 1
        if reply.text or not reply.tool_calls:
            events += self._text_block(index, split_text(reply.text))
            events.append(self._stop_block(index))
            index += 1
        for call in reply.tool_calls:
            block = {
                "type": "tool_use",
                "id": call.id or new_id("toolu_01", 22),
                "name": call.name,
                "input": {},
            }
            events.append(
                self._event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
            for fragment in ["", *split_fragments(json.dumps(call.arguments))]:
                delta = {"type": "input_json_delta", "partial_json": fragment}
                events.append(
                    self._event(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                        paced=True,
                    )
                )
            events.append(self._stop_block(index))
            index += 1
        events.append(
            self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self._stop(reply), "stop_sequence": None},
                    "usage": {"output_tokens": completion},
                },
            )
        )
        events.append(self._event("message_stop", {"type": "message_stop"}))
        return events

    def partial_stream(self, fault: CutStreamFault, body: Mapping[str, Any]) -> list[Event]:
        reply = Reply(fault.text)
        prompt, _ = token_usage(reply, body)
        message = self._message(reply, body, prompt)
        events = [self._event("message_start", {"type": "message_start", "message": message})]
        events += self._text_block(0, split_text(fault.text)[: fault.after_chunks])
        return events

    @staticmethod
    def malformed_body() -> bytes:
        return b'{"id": "msg_broken", "type": "message", "content": [{"ty'

    @staticmethod
    def malformed_stream() -> list[Event]:
        return [Event(b'event: message_start\ndata: {"type": "message_start", "mess\n\n')]

    @staticmethod
    def error(fault: StatusFault) -> dict[str, Any]:
        status = fault.status
        default_types = {
            400: "invalid_request_error",
            401: "authentication_error",
            402: "billing_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            504: "timeout_error",
            529: "overloaded_error",
        }
        default_messages = {
            401: "invalid x-api-key",
            404: "model: claude-fake",
            429: "This request would exceed the rate limit for your organization "
            "of 50 requests per minute. Please try again later.",
            500: "Internal server error",
            529: "Overloaded",
        }
        error_type = fault.error_type or default_types.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {
            "type": "error",
            "error": {
                "type": error_type,
                "message": fault.message or default_messages.get(status, phrase(status)),
            },
            "request_id": new_id("req_01", 22),
        }

    @staticmethod
    def context_length(fault: ContextLengthFault) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {
                "type": "invalid_request_error",
                "message": f"prompt is too long: {fault.requested} tokens > {fault.limit} maximum",
            },
            "request_id": new_id("req_01", 22),
        }
