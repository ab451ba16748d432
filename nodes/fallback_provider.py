"""The fallback_provider node: calls the provider chain in order until one answers.

Per provider: retries with backoff on retryable errors (rate limit, 5xx, timeout, connection),
then falls through to the next provider; a provider that keeps failing cools down and is
skipped. Once a token has been produced the provider is never switched: a broken stream is an
error, because the client may already have shown the first half of the answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    SystemMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import Runnable
from langgraph.runtime import Runtime

from graph.context import Context
from graph.errors import (
    RETRYABLE_KINDS,
    AllProvidersFailedError,
    ErrorKind,
    ProviderError,
    ProviderFailure,
    ProviderStreamBrokenError,
)
from graph.prompts import SYSTEM_PROMPT
from graph.state import Attempt, State, Usage, add_usage, empty_usage
from nodes.deps import AgentDeps, DepsSource, Node, RetryPolicy
from nodes.messages import content_text
from nodes.providers.catalogue import OPENAI_WIRE, ProviderKind, ProviderTarget
from nodes.providers.errors import HEALTH_KINDS, PROVIDER_EXCEPTIONS, classify

logger = logging.getLogger(__name__)


@dataclass
class Answer:
    """A provider's successful answer."""

    message: AIMessage
    provider: str


def _usage_of(message: AIMessage) -> Usage:
    meta = message.usage_metadata
    if meta is None:
        return empty_usage()
    return Usage(
        input_tokens=meta["input_tokens"],
        output_tokens=meta["output_tokens"],
        total_tokens=meta["total_tokens"],
    )


async def stream_once(
    model: Runnable[LanguageModelInput, Any], messages: Sequence[BaseMessage], provider: str
) -> AIMessage:
    """Call one provider, streaming, and assemble its answer.

    Raises ProviderError before the first token, ProviderStreamBrokenError after it.
    """
    merged: AIMessageChunk | None = None
    started = False
    try:
        async for chunk in model.astream(list(messages)):
            if not isinstance(chunk, AIMessageChunk):
                continue
            started = started or bool(chunk.content or chunk.tool_call_chunks)
            merged = chunk if merged is None else merged + chunk
    except PROVIDER_EXCEPTIONS as exc:
        failure = classify(exc) or ProviderFailure(ErrorKind.BAD_RESPONSE, str(exc))
        if started:
            raise ProviderStreamBrokenError(provider, failure.detail) from exc
        raise ProviderError(provider, failure) from exc
    if merged is None:
        return AIMessage(content="")
    message = message_chunk_to_message(merged)
    if not isinstance(message, AIMessage):
        raise ProviderError(
            provider, ProviderFailure(ErrorKind.BAD_RESPONSE, "the provider sent no AI message")
        )
    if isinstance(message.content, list):
        # Keep threads provider-neutral: text blocks become plain text, tool calls stay typed.
        message.content = content_text(message.content)
    return message


def _delay(policy: RetryPolicy, try_number: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return float(retry_after)
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0**try_number)
    jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
    return ceiling * jitter


async def call_chain(
    services: AgentDeps,
    chain: Sequence[ProviderTarget],
    messages: Sequence[BaseMessage],
    bind: Callable[[ProviderTarget], Runnable[LanguageModelInput, Any]],
    attempts: list[Attempt],
) -> Answer:
    """Walk the chain; append every try to `attempts`; the first answer wins."""
    for target in chain:
        if await services.cooldowns.is_cooling(target.id):
            attempts.append(
                Attempt(
                    provider=target.id,
                    outcome="skipped",
                    error=ErrorKind.COOLDOWN.value,
                    detail="cooling down after repeated failures",
                    duration_ms=0.0,
                )
            )
            continue
        tries = services.providers.config(target.kind).max_retries + 1
        for try_number in range(tries):
            started = time.perf_counter()
            try:
                message = await stream_once(bind(target), messages, target.id)
            except ProviderError as err:
                failure = err.failure
                attempts.append(
                    Attempt(
                        provider=target.id,
                        outcome="error",
                        error=failure.kind.value,
                        detail=failure.detail[:300],
                        duration_ms=(time.perf_counter() - started) * 1000,
                    )
                )
                logger.warning(
                    "provider %s failed (%s), try %d of %d",
                    target.id,
                    failure.kind.value,
                    try_number + 1,
                    tries,
                )
                opened = failure.kind in HEALTH_KINDS and await services.cooldowns.record_failure(
                    target.id
                )
                wait = _delay(services.retry, try_number, failure.retry_after)
                retry = (
                    failure.kind in RETRYABLE_KINDS
                    and try_number + 1 < tries
                    and not opened
                    and wait <= services.retry.max_retry_after
                )
                if not retry:
                    break
                await asyncio.sleep(wait)
                continue
            await services.cooldowns.record_success(target.id)
            attempts.append(
                Attempt(
                    provider=target.id,
                    outcome="ok",
                    error=None,
                    detail=None,
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
            )
            return Answer(message=message, provider=target.id)
    raise AllProvidersFailedError(",".join(t.id for t in chain), [dict(a) for a in attempts])


def _with_system_prompt(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    if any(isinstance(m, SystemMessage) for m in messages):
        return list(messages)
    return [SystemMessage(content=SYSTEM_PROMPT), *messages]


def _client_specs(context: Context, offered: list[str]) -> list[dict[str, Any]]:
    wanted = set(offered)
    return [
        spec
        for spec in context.client_tools
        if isinstance(spec.get("function"), dict) and spec["function"].get("name") in wanted
    ]


def _tool_options(context: Context, kind: ProviderKind) -> dict[str, Any]:
    """`tool_choice`/`parallel_tool_calls` for providers that understand OpenAI's values.

    The offline model reads OpenAI's `tool_choice` too: it is the model client tests meet
    first, so a forced tool must be called there as it would be by a real model.
    """
    options: dict[str, Any] = {}
    if kind not in OPENAI_WIRE and kind is not ProviderKind.OFFLINE:
        return options
    if context.tool_choice not in (None, "auto", "none"):
        options["tool_choice"] = context.tool_choice
    if context.parallel_tool_calls is not None and kind in OPENAI_WIRE:
        options["parallel_tool_calls"] = context.parallel_tool_calls
    return options


def make_fallback_provider(deps: DepsSource) -> Node:
    """Build the fallback_provider node over the given dependencies."""

    async def fallback_provider(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
        """Ask the provider chain for the next AI message of this turn."""
        context = runtime.context or Context()
        services = deps()
        chain = [ProviderTarget.parse(spec) for spec in state.get("provider_chain", [])]
        within_budget = state.get("tool_rounds", 0) < state.get("tool_budget", 0)
        tools: list[Any] = []
        if within_budget:
            tools = list(services.tools.tools(state.get("tools_offered", [])))
            tools += _client_specs(context, state.get("client_tools_offered", []))
        params = context.sampling()

        def bind(target: ProviderTarget) -> Runnable[LanguageModelInput, Any]:
            model = services.providers.chat_model(target)
            speaks_openai = target.kind in OPENAI_WIRE
            bound = (
                model.bind_tools(tools, **_tool_options(context, target.kind)) if tools else model
            )
            extra = dict(params)
            if speaks_openai:
                extra.update(context.openai_params)
                if context.response_format is not None:
                    extra["response_format"] = context.response_format
            return bound.bind(**extra) if extra else bound

        attempts = list(state.get("attempts", []))
        answer = await call_chain(
            services, chain, _with_system_prompt(state["messages"]), bind, attempts
        )
        answer.message.response_metadata["provider"] = answer.provider
        return {
            "messages": [answer.message],
            "provider": answer.provider,
            "attempts": attempts,
            "usage": add_usage(state.get("usage", empty_usage()), _usage_of(answer.message)),
        }

    return fallback_provider
