"""Embeddings of the knowledge base: the offline lexical one, and choosing by setting.

`OfflineEmbeddings` needs no network and no model: it hashes a text's words, word pairs and
character trigrams into a fixed number of buckets (the "hashing trick"), weighs each by
`1 + log(count)`, and normalises the vector to unit length, so a cosine similarity measures
shared vocabulary. It finds passages that use the words of the question (and near spellings:
"restart" matches "restarting" through trigrams), not paraphrases: a real embedding model
(`KNOWLEDGE_EMBEDDINGS=<endpoint>:<model>`) is better at meaning. Its name records the
scheme's version: a change of scheme is a new model, so old vectors are never mixed in.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import Counter

from langchain_core.embeddings import Embeddings

from server.knowledge.store import EmbeddingSpec
from server.settings import Settings

__all__ = [
    "OFFLINE_DIMENSION",
    "OFFLINE_MODEL",
    "OfflineEmbeddings",
    "embeddings_for",
    "offline_spec",
]

OFFLINE_MODEL = "offline-hash-v1"
OFFLINE_DIMENSION = 512

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "say",
        "says",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "you",
        "your",
        "docs",
        "doc",
        "documents",
        "about",
        "search",
        "knowledge",
        "base",
    }
)
"""Words too common to tell passages apart (and those of the questions that name the tool)."""
_WEIGHTS = {"word": 1.0, "pair": 0.5, "trigram": 0.25}


def _features(text: str) -> Counter[tuple[str, str]]:
    words = [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP_WORDS]
    features: Counter[tuple[str, str]] = Counter()
    for word in words:
        features["word", word] += 1
        padded = f"^{word}$"
        for start in range(len(padded) - 2):
            features["trigram", padded[start : start + 3]] += 1
    for first, second in itertools.pairwise(words):
        features["pair", f"{first} {second}"] += 1
    return features


def _bucket(kind: str, feature: str, dimension: int) -> tuple[int, float]:
    digest = hashlib.blake2b(f"{kind}:{feature}".encode(), digest_size=8).digest()
    number = int.from_bytes(digest, "big")
    sign = 1.0 if number & 1 else -1.0  # signed hashing: collisions cancel out on average
    return (number >> 1) % dimension, sign


class OfflineEmbeddings(Embeddings):
    """A lexical embedding: hashed words, word pairs and character trigrams, unit length."""

    def __init__(self, dimension: int = OFFLINE_DIMENSION) -> None:
        self.dimension = dimension

    def embed_one(self, text: str) -> list[float]:
        """The vector of one text (all zeros for a text without words)."""
        vector = [0.0] * self.dimension
        for (kind, feature), count in _features(text).items():
            index, sign = _bucket(kind, feature, self.dimension)
            vector[index] += sign * _WEIGHTS[kind] * (1.0 + math.log(count))
        norm = math.sqrt(sum(value * value for value in vector))
        if norm == 0.0:
            return vector
        return [value / norm for value in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed chunks of documents."""
        return [self.embed_one(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (the same way as a document: the embedding is symmetric)."""
        return self.embed_one(text)


def offline_spec(dimension: int = OFFLINE_DIMENSION) -> EmbeddingSpec:
    """The spec recorded with a store filled by the offline embedding."""
    return EmbeddingSpec(OFFLINE_MODEL, dimension)


async def embeddings_for(settings: Settings) -> tuple[Embeddings, EmbeddingSpec]:
    """The embedding KNOWLEDGE_EMBEDDINGS names, and the spec its vectors are recorded with.

    Any other value than `offline` is a provider endpoint's model, probed once for its
    dimension (`server/knowledge/provider_embeddings.py`, imported only then: it loads the
    provider SDK).

    Raises:
        ValueError: The setting names no known embedding.
        EmbeddingsUnavailableError: The provider endpoint cannot be reached or refused.
    """
    name = settings.knowledge_embeddings.strip()
    if name == "offline":
        return OfflineEmbeddings(), offline_spec()
    from server.knowledge.provider_embeddings import open_embeddings

    return await open_embeddings(settings)
