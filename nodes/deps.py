"""What the nodes need from the outside world, handed to them when the graph is built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State
from nodes.images import ImageStore
from nodes.observe import TurnObserver
from nodes.providers.catalogue import ProviderCatalogue
from nodes.providers.cooldown import CooldownStore
from nodes.tools import ToolRegistry
from nodes.tools.knowledge import KnowledgeBase


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before retrying a provider on a retryable error."""

    backoff_base: float = 0.5
    """First retry delay in seconds; doubles on each further try."""
    backoff_max: float = 8.0
    max_retry_after: float = 10.0
    """A provider's Retry-After longer than this falls through to the next provider at once."""


@dataclass
class AgentDeps:
    """Long-lived services of the graph: providers, tools, provider health."""

    providers: ProviderCatalogue
    tools: ToolRegistry
    cooldowns: CooldownStore
    """Provider health; the server builds it once and shares it with its routes."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    observer: TurnObserver | None = None
    """Told what each node and tool did (the server's metrics); None: nobody listens."""
    images: ImageStore | None = None
    """Where threads keep their images (`nodes.images`); None: no thread stores any."""
    knowledge: KnowledgeBase | None = None
    """The knowledge base `knowledge_search` searches; the router offers the tool only when
    the caller's namespaces hold documents. None: no knowledge base."""


class Node(Protocol):
    """The signature of a node built over dependencies (LangGraph injects `runtime`)."""

    def __call__(self, state: State, *, runtime: Runtime[Context]) -> Awaitable[dict[str, Any]]:
        """Run the node on the state."""
        ...


DepsSource = Callable[[], AgentDeps]
"""Nodes call this at run time, so a module-level graph can be built without I/O."""
