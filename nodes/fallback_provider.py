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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import Runnable, RunnableConfig

# The marker of handlers that stream tokens; LangChain's chat models check for it themselves.
from langchain_core.tracers._streaming import _StreamingCallbackHandler
from langgraph.config import get_config
from langgraph.runtime import Runtime

from graph.context import Context
from graph.errors import (
    REJECTION_KINDS,
    RETRYABLE_KINDS,
    AllProvidersFailedError,
    ErrorKind,
    ProviderError,
    ProviderFailure,
    ProviderRejectedError,
    ProviderStreamBrokenError,
)
from graph.prompts import SYSTEM_PROMPT
from graph.state import Attempt, PromptTokens, State, Usage, add_usage, empty_usage
from nodes.compaction.budget import prompt_budget
from nodes.compaction.compactor import Request, SummaryFailedError, compact
from nodes.compaction.prompt import sent_prompt
from nodes.compaction.tokens import TokenCounter
from nodes.deps import AgentDeps, DepsSource, Node, RetryPolicy
from nodes.images import resolve as resolve_images
from nodes.messages import clean_text, content_text
from nodes.providers.catalogue import ProviderTarget
from nodes.providers.errors import HEALTH_KINDS, classify, provider_exceptions
from nodes.providers.reasoning import reasoning_text, settle_reasoning
from nodes.providers.registry import ProviderSpec
from nodes.providers.wire_note import NO_CHUNKS_MESSAGE, ResponseNote, noting_response

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


def _settled(message: BaseMessage, provider: str) -> AIMessage:
    """A provider's answer made fit to store: an AI message with plain, storable text."""
    if not isinstance(message, AIMessage):
        raise ProviderError(
            provider, ProviderFailure(ErrorKind.MALFORMED, "the provider sent no AI message")
        )
    # Reasoning (Anthropic's thinking blocks too) moves to `additional_kwargs`, kept.
    settle_reasoning(message)
    if isinstance(message.content, list):
        # Keep threads provider-neutral: text blocks become plain text, tool calls stay typed.
        message.content = content_text(message.content)
    # A provider's valid JSON may carry a lone surrogate or a NUL too: the thread must be
    # storable and the answer encodable, whoever wrote it.
    message.content = clean_text(message.content)
    return message


def _no_answer(provider: str, exc: ValueError, note: ResponseNote) -> ProviderError:
    """LangChain's only report of an answer without content (see `wire_note`), in words.

    Anything else that raises ValueError is a bug and goes on up.
    """
    if NO_CHUNKS_MESSAGE not in str(exc):
        raise exc
    detail = f"{provider} sent no answer: {note.describe()}"
    return ProviderError(provider, ProviderFailure(ErrorKind.MALFORMED, detail))


@dataclass
class Reply:
    """One provider's answer, and when its first token came (seconds after the call)."""

    message: AIMessage
    first_token: float


async def stream_once(
    model: Runnable[LanguageModelInput, Any], messages: Sequence[BaseMessage], provider: str
) -> Reply:
    """Call one provider, streaming, and assemble its answer.

    Raises ProviderError before the first token, ProviderStreamBrokenError after it.
    """
    merged: AIMessageChunk | None = None
    started = False
    called = time.perf_counter()
    first_token: float | None = None
    try:
        with noting_response() as note:
            async for chunk in model.astream(list(messages)):
                if not isinstance(chunk, AIMessageChunk):
                    continue
                if not started and (
                    chunk.content or chunk.tool_call_chunks or reasoning_text(chunk)
                ):
                    started, first_token = True, time.perf_counter() - called
                merged = chunk if merged is None else merged + chunk
    except provider_exceptions() as exc:
        failure = classify(exc) or ProviderFailure(ErrorKind.MALFORMED, str(exc))
        if started:
            raise ProviderStreamBrokenError(provider, failure.detail) from exc
        raise ProviderError(provider, failure) from exc
    except ValueError as exc:
        # A server that does not stream when asked, an empty stream, an HTML error page.
        if merged is not None:
            raise
        raise _no_answer(provider, exc, note) from exc
    took = time.perf_counter() - called
    if merged is None:
        return Reply(AIMessage(content=""), took)
    message = _settled(message_chunk_to_message(merged), provider)
    return Reply(message, took if first_token is None else first_token)


async def invoke_once(
    model: Runnable[LanguageModelInput, Any], messages: Sequence[BaseMessage], provider: str
) -> Reply:
    """Call one provider for a whole answer, when nobody listens for tokens.

    One request, one JSON response, no event stream to parse. Nothing reached the client
    before an error, so every failure may fall through (ProviderError). The first token
    comes with the whole answer.
    """
    called = time.perf_counter()
    try:
        with noting_response() as note:
            message = await model.ainvoke(list(messages))
    except provider_exceptions() as exc:
        failure = classify(exc) or ProviderFailure(ErrorKind.MALFORMED, str(exc))
        raise ProviderError(provider, failure) from exc
    except ValueError as exc:
        # An HTML error page or an empty body sent with status 200; other ValueErrors are bugs.
        if note.status is None or note.json:
            raise
        detail = f"{provider} sent no answer: {note.describe_whole()}"
        raise ProviderError(provider, ProviderFailure(ErrorKind.MALFORMED, detail)) from exc
    return Reply(_settled(message, provider), time.perf_counter() - called)


def tokens_listened(config: RunnableConfig) -> bool:
    """Whether a handler of this run streams tokens somewhere.

    LangGraph's `messages` stream, `astream_log` and `astream_events` do; their handlers
    carry the marker class LangChain's chat models check to decide whether `ainvoke` streams.
    Without one, the provider is asked for one JSON answer.
    """
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        handlers: Sequence[Any] = callbacks.handlers
    else:
        handlers = callbacks or []
    return any(isinstance(handler, _StreamingCallbackHandler) for handler in handlers)


def _delay(policy: RetryPolicy, try_number: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return float(retry_after)
    ceiling = min(policy.backoff_max, policy.backoff_base * 2.0**try_number)
    jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography  # nosec B311
    return ceiling * jitter


async def _half_open_trial(
    services: AgentDeps, chain: Sequence[ProviderTarget]
) -> tuple[dict[str, float], ProviderTarget | None]:
    """Cooldown left per target, and the target to try when every one is cooling down.

    A breaker that refused the whole chain would turn a blip of every provider into an
    outage for the length of the cooldown; instead the target whose cooldown ends first gets
    one trial call (and a success closes its breaker for everyone).
    """
    left = {t.id: await services.cooldowns.cooldown_left(t.id) for t in chain}
    if not chain or not all(left[t.id] > 0.0 for t in chain):
        return left, None
    return left, min(chain, key=lambda t: left[t.id])


def _attempt(
    target: ProviderTarget,
    outcome: Literal["ok", "error"],
    started: float,
    *,
    error: str | None = None,
    detail: str | None = None,
    half_open: bool = False,
) -> Attempt:
    attempt = Attempt(
        provider=target.id,
        outcome=outcome,
        error=error,
        detail=detail,
        duration_ms=(time.perf_counter() - started) * 1000,
    )
    if half_open:
        attempt["half_open"] = True
    return attempt


def _rejection(
    chain: Sequence[ProviderTarget], attempts: list[Attempt], failures: list[ProviderError]
) -> AllProvidersFailedError:
    """The error of a chain that ran out: the provider's own 4xx when every call was refused."""
    model = ",".join(t.id for t in chain)
    wired = [dict(a) for a in attempts]
    if failures and all(f.failure.kind in REJECTION_KINDS for f in failures):
        last = failures[-1]
        return ProviderRejectedError(model, wired, provider=last.provider, failure=last.failure)
    return AllProvidersFailedError(model, wired)


Shrink = Callable[[], Awaitable[Sequence[BaseMessage] | None]]
"""Compacts the prompt harder after a context-length error: the smaller prompt, or None."""


async def call_chain(
    services: AgentDeps,
    chain: Sequence[ProviderTarget],
    messages: Sequence[BaseMessage],
    bind: Callable[[ProviderTarget], Runnable[LanguageModelInput, Any]],
    attempts: list[Attempt],
    *,
    stream: bool = True,
    shrink: Shrink | None = None,
) -> Answer:
    """Walk the chain; append every try to `attempts`; the first answer wins.

    `stream`: call each provider streaming (someone listens for tokens), else for one answer.
    `shrink`: on the first context-length error, the prompt is compacted harder and the
    same provider tried once more with it (the smaller prompt then goes to the rest).

    Raises:
        ProviderRejectedError: Every provider called refused the request itself (its 4xx).
        AllProvidersFailedError: No provider answered.
    """
    cooldown_left, trial = await _half_open_trial(services, chain)
    failures: list[ProviderError] = []
    once = stream_once if stream else invoke_once
    shrunk = False
    for target in chain:
        if cooldown_left[target.id] > 0.0 and target is not trial:
            attempts.append(
                Attempt(
                    provider=target.id,
                    outcome="skipped",
                    error=ErrorKind.COOLDOWN.value,
                    detail=f"cooling down ({cooldown_left[target.id]:.1f} s left)",
                    duration_ms=0.0,
                )
            )
            continue
        # A half-open trial is one call: the provider is still suspect.
        tries = 1 if target is trial else services.providers.config(target.endpoint).max_retries + 1
        half_open = target is trial
        try_number = 0
        while try_number < tries:
            started = time.perf_counter()
            try:
                reply = await once(bind(target), messages, target.id)
            except ProviderError as err:
                failure = err.failure
                failures.append(err)
                attempts.append(
                    _attempt(
                        target,
                        "error",
                        started,
                        error=failure.kind.value,
                        detail=failure.detail[:300],
                        half_open=half_open,
                    )
                )
                logger.warning(
                    "provider %s failed (%s), try %d of %d%s",
                    target.id,
                    failure.kind.value,
                    try_number + 1,
                    tries,
                    " (half-open trial)" if half_open else "",
                )
                if failure.kind is ErrorKind.CONTEXT_LENGTH and shrink is not None and not shrunk:
                    shrunk = True
                    smaller = await shrink()
                    if smaller is not None:
                        messages, tries, try_number = smaller, try_number + 2, try_number + 1
                        continue
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
                try_number += 1
                continue
            await services.cooldowns.record_success(target.id)
            detail = "half-open trial: every provider was cooling down" if half_open else None
            ok = _attempt(target, "ok", started, detail=detail, half_open=half_open)
            ok["first_token_ms"] = reply.first_token * 1000
            attempts.append(ok)
            return Answer(message=reply.message, provider=target.id)
    raise _rejection(chain, attempts, failures)


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
        self.usage = add_usage(self.usage, _usage_of(answer.message))
        return content_text(answer.message.content)


def offered_tools(services: AgentDeps, state: State, context: Context) -> list[Any]:
    """The tools sent with the model call: none once the turn's tool budget is used up."""
    if state.get("tool_rounds", 0) >= state.get("tool_budget", 0):
        return []
    tools: list[Any] = list(services.tools.tools(state.get("tools_offered", [])))
    return tools + _client_specs(context, state.get("client_tools_offered", []))


def _client_specs(context: Context, offered: list[str]) -> list[dict[str, Any]]:
    wanted = set(offered)
    return [
        spec
        for spec in context.client_tools
        if isinstance(spec.get("function"), dict) and spec["function"].get("name") in wanted
    ]


def _tool_options(context: Context, spec: ProviderSpec) -> dict[str, Any]:
    """`tool_choice`/`parallel_tool_calls` for providers that understand OpenAI's values.

    The offline model reads OpenAI's `tool_choice` too: it is the model client tests meet
    first, so a forced tool must be called there as it would be by a real model.
    """
    options: dict[str, Any] = {}
    if not spec.openai_tool_choice:
        return options
    if context.tool_choice not in (None, "auto", "none"):
        options["tool_choice"] = context.tool_choice
    if context.parallel_tool_calls is not None and spec.speaks_openai:
        options["parallel_tool_calls"] = context.parallel_tool_calls
    return options


def make_fallback_provider(deps: DepsSource) -> Node:
    """Build the fallback_provider node over the given dependencies."""

    async def fallback_provider(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
        """Ask the provider chain for the next AI message of this turn."""
        context = runtime.context or Context()
        services = deps()
        chain = [services.providers.target(spec) for spec in state.get("provider_chain", [])]
        tools = offered_tools(services, state, context)
        params = context.sampling()

        def bind(target: ProviderTarget) -> Runnable[LanguageModelInput, Any]:
            spec = target.spec
            bound: Runnable[LanguageModelInput, Any] = (
                services.providers.with_tools(target, tools, _tool_options(context, spec))
                if tools
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
        usage = add_usage(state.get("usage", empty_usage()), _usage_of(answer.message))
        update: dict[str, Any] = {"messages": [answer.message], "provider": answer.provider}
        if harder.summariser is not None:  # compacted again: the summary calls' tokens too
            usage = add_usage(usage, harder.summariser.usage)
            update.update(harder.update)
        sent = update.get("prompt_tokens") or state.get("prompt_tokens")
        if sent is not None:
            reported = _usage_of(answer.message)["input_tokens"] or None
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
