"""The graph's nodes, one module each, plus the provider and tool catalogues.

`server/` uses only the modules of `SERVER_FACE` (its public face; the rest is the agent's
inside, reached through `graph/`). `tests/unit/test_layers.py` checks that every `server`
import from `nodes` names one of them, and that each is still used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

SERVER_FACE: Final[Mapping[str, tuple[str, ...]]] = {
    "assembling the agent": (
        "nodes.deps",  # AgentDeps, RetryPolicy
        "nodes.tools",  # ToolConfig, ToolRegistry, build_tool_registry
        "nodes.providers.registry",  # the provider kinds, their settings and prices
        "nodes.providers.catalogue",  # ProviderCatalogue, ProviderTarget
    ),
    "what the server's stores implement or feed": (
        "nodes.providers.cooldown",  # CooldownStore and its in-process and Redis forms
        "nodes.images",  # ImageStore, StoredImage, image URL checks
        "nodes.tools.knowledge",  # KnowledgeBase, Passage, the knowledge tool
        "nodes.tools.mcp_tools",  # McpLink, open_link, server_tool
    ),
    "watching a turn": (
        "nodes.observe",  # TurnObservers, NodeOutcome, ToolOutcome
    ),
    "reading messages": (
        "nodes.messages",  # text, digests and client ids of messages
        "nodes.providers.reasoning",  # reasoning_text
        "nodes.redact",  # redact_urls
    ),
    "one tool call outside the graph (the /mcp door)": (
        "nodes.tool_node",  # run_tool_call
    ),
}
"""What `server/` may import of `nodes/`, by what it is for: module names."""
