"""The fallback_provider node: asks the provider chain for the turn's next AI message.

The chain is walked by `nodes/provider_chain.py` (retries, fall-through, cooldowns, never a
switch after the first token); this node builds each call: the prompt seen through the
thread's summary, the tools offered and the `tool_choice` (`nodes/tool_offer.py`), the
client's sampling options, and one harder compaction after a context-length error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langgraph.config import get_config
from langgraph.runtime import Runtime

from graph.context import Context
from graph.errors import AllProvidersFailedError
from graph.prompts import SYSTEM_PROMPT
from graph.state import Attempt, PromptTokens, State, Usage, add_usage, empty_usage
from nodes.compaction.budget import prompt_budget
from nodes.compaction.compactor import Request, SummaryFailedError, compact
from nodes.compaction.prompt import sent_prompt
from nodes.compaction.tokens import TokenCounter
from nodes.deps import AgentDeps, DepsSource, Node
from nodes.images import resolve as resolve_images
from nodes.messages import content_text
from nodes.provider_chain import call_chain, tokens_listened, usage_of
from nodes.providers.catalogue import ProviderTarget
from nodes.tool_offer import for_kind, offer_for, tool_options

logger = logging.getLogger(__name__)


@dataclass
class ChainSummariser:
    """Summarises old turns through a provider chain (`call_chain`): no tools, one answer.

    Its calls are counted like the turn's others: `attempts` and `usage` collect them. No
    callback handler sees them, so a summary never streams to the client as the answer.
    """

    services: AgentDeps
    chain: list[ProviderTarget]
    budget: int
    """Prompt tokens the chain's first model takes."""
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage = field(default_factory=empty_usage)

    @classmethod
    def for_turn(cls, services: AgentDeps, chain: list[ProviderTarget]) -> ChainSummariser:
        """The summariser of a turn: the summary alias's chain when set, else the turn's."""
        alias = services.providers.summary_alias
        own = list(services.providers.resolve(alias)) if alias else chain
        budget = prompt_budget(services.providers.context_window(own[0]), None) if own else 0
        return cls(services=services, chain=own, budget=budget)

    async def __call__(self, prompt: list[BaseMessage], max_tokens: int) -> str:
        """The chain's summary of `prompt`, at most `max_tokens` long."""

        def bind(target: ProviderTarget) -> Runnable[LanguageModelInput, Any]:
            model = self.services.providers.chat_model(target).bind(max_tokens=max_tokens)
            return model.with_config(callbacks=[])

        try:
            answer = await call_chain(
                self.services, self.chain, prompt, bind, self.attempts, stream=False
            )
        except AllProvidersFailedError as error:
            raise SummaryFailedError(str(error)) from error
        self.usage = add_usage(self.usage, usage_of(answer.message))
        return content_text(answer.message.content)


def make_fallback_provider(deps: DepsSource) -> Node:
    """Build the fallback_provider node over the given dependencies."""

    async def fallback_provider(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
        """Ask the provider chain for the next AI message of this turn."""
        context = runtime.context or Context()
        services = deps()
        chain = [services.providers.target(spec) for spec in state.get("provider_chain", [])]
        offer = offer_for(state, context)
        tools = [*services.tools.tools(offer.server), *offer.client]
        params = context.sampling()

        def bind(target: ProviderTarget) -> Runnable[LanguageModelInput, Any]:
            spec = target.spec
            kind_offer = for_kind(offer, spec)
            bound: Runnable[LanguageModelInput, Any] = (
                services.providers.with_tools(
                    target,
                    [*services.tools.tools(kind_offer.server), *kind_offer.client],
                    tool_options(kind_offer, spec, context),
                )
                if kind_offer
                else services.providers.chat_model(target)
            )
            # The endpoint's default parameters, under the ones the client set.
            extra = {**services.providers.config(target.endpoint).params, **params}
            if spec.speaks_openai:
                extra.update(context.openai_params)
            if context.response_format is not None and (
                spec.speaks_openai or spec.openai_response_format
            ):
                extra["response_format"] = context.response_format
            return bound.bind(**extra) if extra else bound

        attempts = list(state.get("attempts", []))
        harder = _Harder(services, state, context, chain, tools, attempts)
        answer = await call_chain(
            services,
            chain,
            # The thread seen through its summary (the compact node fitted it to the budget);
            # it keeps its images by reference (`nodes.images`): the provider gets bytes.
            await resolve_images(
                sent_prompt(
                    state["messages"],
                    state.get("summary"),
                    SYSTEM_PROMPT,
                    state.get("clipped"),
                    context.instructions,
                ),
                services.images,
            ),
            bind,
            attempts,
            # langchain-openai answers `response_format` without streaming through the SDK's
            # `parse`, which refuses tools that are not `strict`: such a turn streams.
            stream=tokens_listened(get_config()) or context.response_format is not None,
            shrink=harder,
        )
        answer.message.response_metadata["provider"] = answer.provider
        usage = add_usage(state.get("usage", empty_usage()), usage_of(answer.message))
        update: dict[str, Any] = {"messages": [answer.message], "provider": answer.provider}
        if harder.summariser is not None:  # compacted again: the summary calls' tokens too
            usage = add_usage(usage, harder.summariser.usage)
            update.update(harder.update)
        sent = update.get("prompt_tokens") or state.get("prompt_tokens")
        if sent is not None:
            reported = usage_of(answer.message)["input_tokens"] or None
            update["prompt_tokens"] = PromptTokens(
                estimated=sent["estimated"], reported=reported, scale=sent["scale"]
            )
        return {**update, "attempts": attempts, "usage": usage}

    return fallback_provider


HARDER: float = 0.5
"""After a context-length error, the prompt is compacted to this share of what was sent."""


class _Harder:
    """The `shrink` of one model call: one compaction to half the size the provider refused.

    What it did (the new summary, the compaction record) is left in `update` for the node
    to return, the summary calls' usage in `summariser`; their attempts join the call's own,
    in the order they happen.
    """

    def __init__(
        self,
        services: AgentDeps,
        state: State,
        context: Context,
        chain: list[ProviderTarget],
        tools: list[Any],
        attempts: list[Attempt],
    ) -> None:
        self._services, self._state, self._context = services, state, context
        self._chain, self._tools, self._attempts = chain, tools, attempts
        self.summariser: ChainSummariser | None = None
        self.update: dict[str, Any] = {}

    async def __call__(self) -> Sequence[BaseMessage] | None:
        state, counter = self._state, TokenCounter()
        extra = counter.tools(self._tools)
        sent = state.get("prompt_tokens")
        window = self._services.providers.context_window(self._chain[0])
        budget = prompt_budget(window, self._context.max_tokens)
        if sent is not None:
            budget = min(budget, int(sent["estimated"] * sent["scale"]))
        self.summariser = ChainSummariser.for_turn(self._services, self._chain)
        self.summariser.attempts = self._attempts
        request = Request(
            messages=state["messages"],
            summary=state.get("summary"),
            budget=int(budget * HARDER),
            scale=sent["scale"] if sent is not None else 1.0,
            extra=extra,
            default_system=SYSTEM_PROMPT,
            instructions=self._context.instructions,
        )
        outcome = await compact(request, counter, self.summariser)
        if outcome.compacted is None or outcome.compacted["how"] == "failed":
            logger.warning("a provider refused the prompt as too long, and it cannot be cut")
            return None
        scale = request.scale
        self.update = {
            "summary": outcome.summary,
            "compacted": outcome.compacted,
            "clipped": outcome.clipped,
            "prompt_tokens": PromptTokens(estimated=outcome.estimate, reported=None, scale=scale),
        }
        prompt = sent_prompt(
            state["messages"],
            outcome.summary,
            SYSTEM_PROMPT,
            outcome.clipped,
            self._context.instructions,
        )
        return await resolve_images(prompt, self._services.images)
