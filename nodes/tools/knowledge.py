"""The `knowledge_search` tool: passages of the caller's documents, with their sources.

The tool knows only the small `KnowledgeBase` interface; the server implements it over
pgvector or sqlite-vec (`server.knowledge`). Which documents a call may see comes from the
run, never from the model: the server passes the caller's namespace (its API key id) in the
tool call's config (`configurable.caller`), and a search covers that namespace and the shared
one, which is what `make ingest` fills by default. A result holding a passage of the caller's
own namespace is marked as the caller's (`nodes.tools.scope`), so that no cache shares it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from graph.errors import ToolUnavailableError
from nodes.tools.scope import scoped_artifact

__all__ = [
    "KNOWLEDGE_TOOL",
    "MAX_TOP_K",
    "SHARED_NAMESPACE",
    "KnowledgeBase",
    "KnowledgeInput",
    "KnowledgeUnavailableError",
    "Passage",
    "format_passages",
    "make_knowledge_tool",
    "namespaces_of",
]

KNOWLEDGE_TOOL = "knowledge_search"
SHARED_NAMESPACE = "shared"
"""Documents every caller may search (`make ingest` puts them here unless told otherwise)."""
MAX_TOP_K = 10
_MAX_QUERY_CHARS = 1_000
_PASSAGE_CHARS = 1_500
"""A passage longer than this is cut in the tool's output (chunks are ~1000 characters)."""


@dataclass(frozen=True)
class Passage:
    """One chunk of a document that matched a query."""

    text: str
    document_id: str
    title: str
    source: str | None
    """Where the document came from (a file path, a URL) when it was given; else None."""
    score: float
    """Cosine similarity to the query, in [-1, 1]; higher is closer."""
    namespace: str = SHARED_NAMESPACE


class KnowledgeUnavailableError(ToolUnavailableError):
    """The knowledge base cannot answer now (its store is down): the model is told so."""


class KnowledgeBase(Protocol):
    """What the tool and the router need from the knowledge base."""

    async def search(self, namespaces: Sequence[str], query: str, k: int) -> list[Passage]:
        """The `k` passages closest to `query` in those namespaces, best first.

        Raises:
            KnowledgeUnavailableError: The store could not be searched.
        """
        ...

    def has_documents(self, namespaces: Sequence[str]) -> bool:
        """Whether those namespaces held documents when last looked at (cheap, no I/O)."""
        ...


def namespaces_of(caller: str | None) -> list[str]:
    """The namespaces a caller searches: its own (if it has a key) and the shared one."""
    if caller is None or caller == SHARED_NAMESPACE:
        return [SHARED_NAMESPACE]
    return [caller, SHARED_NAMESPACE]


class KnowledgeInput(BaseModel):
    """Arguments of the `knowledge_search` tool."""

    query: str = Field(
        min_length=1,
        max_length=_MAX_QUERY_CHARS,
        description="What to look for in the documents, in a few words or a question.",
    )
    top_k: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOP_K,
        description="How many passages to return (1-10); leave it out for the usual number.",
    )


def format_passages(passages: Sequence[Passage]) -> str:
    """The tool's output: numbered passages, each headed by its source and score."""
    blocks = []
    for number, passage in enumerate(passages, start=1):
        text = passage.text.strip()
        if len(text) > _PASSAGE_CHARS:
            text = text[:_PASSAGE_CHARS].rstrip() + " …"
        where = f"source: {passage.source}; " if passage.source else ""
        blocks.append(
            f"[{number}] {passage.title} ({where}document {passage.document_id}; "
            f"score {passage.score:.2f})\n{text}"
        )
    return "\n\n".join(blocks)


def make_knowledge_tool(knowledge: KnowledgeBase | None, *, default_top_k: int = 4) -> BaseTool:
    """The `knowledge_search` tool over `knowledge` (None: not configured, said plainly)."""

    async def knowledge_search(
        query: str, top_k: int | None = None, *, config: RunnableConfig
    ) -> tuple[str, dict[str, Any]]:
        if knowledge is None:
            return "The knowledge base is not configured on this service.", scoped_artifact(False)
        caller: Any = (config.get("configurable") or {}).get("caller")
        namespaces = namespaces_of(caller if isinstance(caller, str) else None)
        passages = await knowledge.search(namespaces, query, top_k or default_top_k)
        if not passages:
            if not knowledge.has_documents(namespaces):
                text = "The knowledge base is empty: no documents have been added yet."
            else:
                text = f"No passage of the knowledge base matches {query!r}."
            return text, scoped_artifact(False)
        own = any(passage.namespace != SHARED_NAMESPACE for passage in passages)
        return format_passages(passages), scoped_artifact(own)

    return StructuredTool.from_function(
        coroutine=knowledge_search,
        name=KNOWLEDGE_TOOL,
        description=(
            "Search the knowledge base (the team's own documents: wiki pages, manuals, "
            "runbooks) and return the most relevant passages with their sources. Use it for "
            "questions about the docs, and name the source of what you answer from it."
        ),
        args_schema=KnowledgeInput,
        response_format="content_and_artifact",
    )
