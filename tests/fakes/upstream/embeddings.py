"""``POST /v1/embeddings`` bodies: a deterministic bag-of-words embedding in OpenAI's shape.

Each text becomes the counts of its words (lower-cased, a few stop words left out), hashed
into ``EMBEDDING_DIMENSION`` buckets and scaled to unit length: texts that share words are
close, so a test can assert which document ranks first. The request is checked as an
OpenAI-compatible server checks it: ``input`` is a string or a list of strings (token arrays
are refused with a 400, as servers without a tokenizer endpoint do), ``encoding_format`` is
``float`` or ``base64`` (the openai SDK asks for base64 unless told otherwise: little-endian
float32, base64-encoded).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections import Counter
from collections.abc import Mapping
from typing import Any

EMBEDDING_DIMENSION = 64
"""Length of every vector the fake returns (what the dimension probe should find)."""

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how"}
    | {"i", "in", "is", "it", "of", "on", "or", "the", "to", "what", "when", "with"}
)


class EmbeddingRequestError(ValueError):
    """The request is not one an OpenAI-compatible server would embed (answered 400)."""


def embed(text: str) -> list[float]:
    """The fake's vector of ``text`` (all zeros for a text without words)."""
    vector = [0.0] * EMBEDDING_DIMENSION
    words = Counter(w for w in _WORD.findall(text.lower()) if w not in _STOP)
    for word, count in words.items():
        digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
        vector[int.from_bytes(digest, "big") % EMBEDDING_DIMENSION] += count
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def _inputs(body: Mapping[str, Any]) -> list[str]:
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    if isinstance(value, list) and value:
        raise EmbeddingRequestError(
            "input must be a string or a list of strings; token arrays are not supported"
        )
    raise EmbeddingRequestError("input must be a non-empty string or list of strings")


def embeddings_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The response to an embeddings request.

    Raises:
        EmbeddingRequestError: ``model``, ``input`` or ``encoding_format`` is wrong.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise EmbeddingRequestError("model is required")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise EmbeddingRequestError(f"encoding_format must be float or base64, not {encoding!r}")
    texts = _inputs(body)
    data = []
    for index, text in enumerate(texts):
        vector = embed(text)
        encoded: list[float] | str = vector
        if encoding == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(_WORD.findall(text.lower())) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
