"""`AppState`: the one typed holder of what the lifespan opened.

Routes never read it from the request themselves: `server.wiring.deps` is its only reader, and
route signatures name what they use through its dependency aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from graph.builder import AgentGraph
from nodes.deps import AgentDeps
from server.auth import KeyRing
from server.knowledge.service import Knowledge
from server.settings import Settings
from server.stores.assistants import AssistantStore, MemoryAssistants
from server.stores.budgets import BudgetPolicy
from server.stores.graph_threads import MemoryThreadRecords, ThreadRecords
from server.stores.locks import ThreadLocks
from server.stores.mcp_servers import McpServers
from server.stores.resources import Operations
from server.stores.response_store import ResponseStore
from server.stores.usage_ledger import UsageLedger
from server.telemetry.metrics import Metrics
from server.turns.kit import TurnKit
from server.turns.registry import LocalRunRegistry, RunRegistry


@dataclass(frozen=True)
class AppState:
    """What the doors share, opened by the lifespan (`server.wiring.lifespan`)."""

    settings: Settings
    deps: AgentDeps
    """The graph's services: providers, tools, cooldowns."""
    checkpointer: BaseCheckpointSaver[Any]
    graph: AgentGraph
    """The graph with the checkpointer: runs on a thread."""
    stateless_graph: AgentGraph
    """The graph without one: a run that stores nothing."""
    keys: KeyRing
    ops: Operations
    """Redis, response cache, rate limiter, cooldown store (`server.stores.resources`)."""
    locks: ThreadLocks
    """One run per thread, shared by every door (a second concurrent run gets 409)."""
    turns: TurnKit
    """The turn kit: every door that runs or reads the agent goes through it."""
    metrics: Metrics = field(default_factory=Metrics)
    """This app's Prometheus instruments (its own registry), fed by `server.telemetry`."""
    usage: UsageLedger | None = None
    """Usage per key, alias and provider: the `usage` table's writer and reader."""
    budgets: BudgetPolicy = field(default_factory=BudgetPolicy)
    """Monthly budgets per key (checked before a run by the turn kit's `admit`)."""
    mcp: McpServers | None = None
    """The MCP servers of MCP_SERVERS and their state (`server.stores.mcp_servers`); None:
    none set."""
    responses: ResponseStore | None = None
    """The Responses API's stored responses (the `responses` table), by id."""
    knowledge: Knowledge | None = None
    """The knowledge base (`server.knowledge`); None: disabled, or it could not be opened."""
    graph_threads: ThreadRecords = field(default_factory=MemoryThreadRecords)
    """The LangGraph API's thread records: metadata and status (`server.stores.graph_threads`)."""
    assistants: AssistantStore = field(default_factory=MemoryAssistants)
    """The assistants clients saved (`POST /assistants`), per key and versioned
    (`server.stores.assistants`)."""
    memory: BaseStore = field(default_factory=InMemoryStore)
    """The long-term memory store: the graph's `runtime.store` and the LangGraph API's
    `/store` routes (`server.stores.memory_store`)."""
    runs: RunRegistry = field(default_factory=LocalRunRegistry)
    """The LangGraph API's runs: background tasks, their events, join and cancel
    (`server.turns.registry`)."""
