"""The compact node: keeps the prompt of every model call within the model's context budget.

It runs before each call (after the router, and again after every tool round), measures
the prompt that `fallback_provider` would send (the thread seen through its summary, plus
the tool schemas), and when that is over the budget of the chain's first model, summarises
the oldest whole turns into the state's `summary` (or drops them, when summarising fails).
The stored thread keeps every message: only what is sent changes.

Budget: the first target's context window, less the answer (`max_tokens`, else 4096 or a
quarter of the window) and a margin (`nodes/compaction/budget.py`). Estimates err high and
are scaled by what the provider counted for the last prompt (`prompt_tokens`). When the
latest turn alone is over (long tool results), its longest tool results are sent cut short
(`clipped`).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context
from graph.prompts import SYSTEM_PROMPT
from graph.state import PromptTokens, State, add_usage, empty_usage
from nodes.compaction.budget import prompt_budget
from nodes.compaction.compactor import Request, compact
from nodes.compaction.tokens import TokenCounter, calibrated
from nodes.deps import DepsSource, Node
from nodes.fallback_provider import ChainSummariser
from nodes.tool_offer import offered_tools


def make_compact(deps: DepsSource) -> Node:
    """Build the compact node over the given dependencies.

    The node keeps one `TokenCounter`, so each message of a thread is measured once.
    """
    counter = TokenCounter()

    async def compact_prompt(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
        """Fit the next model call's prompt into the budget; say what was done."""
        context = runtime.context or Context()
        services = deps()
        chain = [services.providers.target(spec) for spec in state.get("provider_chain", [])]
        if not chain:
            return {}
        last = state.get("prompt_tokens")
        scale = calibrated(last)
        window = services.providers.context_window(chain[0])
        summariser = ChainSummariser.for_turn(services, chain)
        request = Request(
            messages=state["messages"],
            summary=state.get("summary"),
            budget=prompt_budget(window, context.max_tokens),
            scale=scale,
            extra=counter.tools(offered_tools(services, state, context)),
            default_system=SYSTEM_PROMPT,
            instructions=context.instructions,
        )
        outcome = await compact(request, counter, summariser)
        update: dict[str, Any] = {
            "prompt_tokens": PromptTokens(estimated=outcome.estimate, reported=None, scale=scale)
        }
        if outcome.compacted is not None:
            update["compacted"] = outcome.compacted
            update["summary"] = outcome.summary
        if outcome.clipped != state.get("clipped", {}):
            update["clipped"] = outcome.clipped
        if summariser.attempts:
            update["attempts"] = [*state.get("attempts", []), *summariser.attempts]
            update["usage"] = add_usage(state.get("usage", empty_usage()), summariser.usage)
        return update

    return compact_prompt
