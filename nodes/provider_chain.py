"""Calling a provider chain: each provider in order, until one answers (`call_chain`).

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
from dataclasses import dataclass
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
from graph.state import Attempt, Usage, empty_usage
from nodes.deps import AgentDeps, RetryPolicy
from nodes.messages import clean_text, content_text
from nodes.providers.catalogue import ProviderTarget
from nodes.providers.errors import HEALTH_KINDS, classify, provider_exceptions
from nodes.providers.reasoning import reasoning_text, settle_reasoning
from nodes.providers.wire_note import NO_CHUNKS_MESSAGE, ResponseNote, noting_response

logger = logging.getLogger(__name__)


@dataclass
class Answer:
    """A provider's successful answer."""

    message: AIMessage
    provider: str


def usage_of(message: AIMessage) -> Usage:
    """The token usage a provider reported with its answer (zeros when it reported none)."""
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
