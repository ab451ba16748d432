"""What the OpenAI and Anthropic wires share: chunking, token counts, ids, JSON, SSE events."""

from __future__ import annotations

import http
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.upstream.steps import Reply

_WORDS = re.compile(r"\s*\S+")


def split_text(text: str) -> list[str]:
    """Split ``text`` into word chunks (leading spaces kept) that join back to ``text``."""
    parts = _WORDS.findall(text)
    if not parts:
        return [text] if text else []
    tail = text[sum(len(p) for p in parts) :]
    if tail:
        parts[-1] += tail
    return parts


def split_fragments(data: str, pieces: int = 3) -> list[str]:
    """Split ``data`` into at least two fragments (when it has 2+ characters)."""
    if len(data) < 2:
        return [data]
    size = max(1, -(-len(data) // pieces))
    return [data[i : i + size] for i in range(0, len(data), size)]


def _count_words(value: object) -> int:
    """Count words in message-like JSON: strings, ``text``/``content`` of parts, lists."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_count_words(item) for item in value)
    if isinstance(value, dict):
        return sum(_count_words(value.get(key)) for key in ("text", "content"))
    return 0


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """The prompt's size as this fake counts it: the words of its messages and system."""
    return _count_words(body.get("messages")) + _count_words(body.get("system"))


def token_usage(reply: Reply, body: Mapping[str, Any]) -> tuple[int, int]:
    if reply.usage is not None:
        return reply.usage
    prompt = prompt_tokens(body)
    completion = len(reply.text.split()) + sum(
        len(json.dumps(call.arguments).split()) for call in reply.tool_calls
    )
    return prompt, completion


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Event:
    """One SSE event; ``paced`` events are separated by ``Reply.chunk_delay``."""

    data: bytes
    paced: bool = False


def phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
