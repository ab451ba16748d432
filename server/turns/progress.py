"""Graph progress as short human-readable lines (shown as `reasoning_content` by chat UIs).

Built from the `updates` stream of a run: the router's decision, context compactions, the
tool calls the model made, the tools' results, and provider fallbacks. Only names and
outcomes, never tool output.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from graph.routing import COMPACT, FALLBACK_PROVIDER, ROUTER, TOOLS


def progress_lines(update: dict[str, Any]) -> Iterator[str]:
    """Lines for one `updates` event (`{node: state_update}`)."""
    for node, change in update.items():
        if not isinstance(change, dict):
            continue
        if node == ROUTER:
            tools = [*change.get("tools_offered", []), *change.get("client_tools_offered", [])]
            offered = f", tools: {', '.join(tools)}" if tools else ""
            yield f"Route: {change.get('route')} ({change.get('route_reason')}{offered})\n"
        elif node == COMPACT:
            yield from _compaction_lines(change)
        elif node == FALLBACK_PROVIDER:
            yield from _compaction_lines(change)
            yield from _provider_lines(change)
        elif node == TOOLS:
            for message in change.get("messages", []):
                if isinstance(message, ToolMessage):
                    outcome = "failed" if message.status == "error" else "done"
                    yield f"Tool {message.name}: {outcome}\n"


_HOW = {
    "summary": "older turns summarised",
    "trim": "older turns left out",
    "clip": "tool results cut short",
    "failed": "still too long",
}


def _compaction_lines(change: dict[str, Any]) -> Iterator[str]:
    compacted = change.get("compacted")
    if isinstance(compacted, dict):
        how = _HOW.get(str(compacted.get("how")), "compacted")
        before, after = compacted.get("before"), compacted.get("after")
        yield f"Context: {how} (~{before} → ~{after} tokens)\n"


def _provider_lines(change: dict[str, Any]) -> Iterator[str]:
    attempts = change.get("attempts", [])
    for before, after in itertools.pairwise(attempts):
        if before["outcome"] != "ok" and before["provider"] != after["provider"]:
            yield f"Provider {before['provider']} {before['error']}: trying {after['provider']}\n"
    for message in change.get("messages", []):
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                yield f"Calling {call['name']} (via {change.get('provider')})\n"
