"""`POST /v1/completions`, the legacy text completions: a translation onto the chat door.

Clients of the older API still call it: LlamaIndex's `OpenAILike` by default, and editors'
autocomplete (Continue sends `suffix` for fill-in-the-middle). The graph calls chat models,
so the request is not forwarded to a provider's own `/v1/completions`: each prompt becomes a
chat request (`as_chat`) and runs through the chat door's own service, response cache,
guards and usage counting, statelessly (no thread, nothing stored):

- a prompt is the user message, as LiteLLM turns a text completion into a chat one;
- with `suffix`, or a prompt in a base model's fill-in-the-middle template (`<fim_prefix>`,
  as Continue's autocomplete sends it), the `FILL_IN_THE_MIDDLE` system prompt and one user
  message with the gap marked (`FILL_HERE`), and no tools offered: a model that fills a
  gap answers with the text to insert (the offline model completes the word at the
  cursor, `nodes.providers.offline.infill`);
- each of the `n` answers to each prompt is a run of its own; choice `index` answers
  prompt `index // n`. Streamed, the choices follow one another.

Token-id prompts, `logprobs` and a `best_of` above `n` are refused (400): no chat model of
the chain shares a tokenizer with the client, nor returns what they need.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from graph.errors import ErrorCode
from graph.prompts import FILL_HERE, FILL_IN_THE_MIDDLE
from graph.state import Usage, add_usage, empty_usage
from server.auth import Caller
from server.chat import service
from server.chat.adapter import now, usage_object
from server.chat.cached import CacheLookup, lookup
from server.chat.protocol import ChatCompletionRequest, CompletionRequest
from server.chat.streaming import error_event, sse
from server.chat.wire import CompletionChoice, CompletionFinishReason, TextCompletion
from server.errors import OpenAIHTTPError
from server.settings import Settings
from server.stores.cache import ResponseCache
from server.turns.events import StreamEvent, TextDelta, TurnDone
from server.turns.http import TurnFeed
from server.turns.kit import TurnKit
from server.turns.request import TurnRequest
from server.turns.result import TurnResult

DOOR = "completions"
"""The door's name in the turn metrics."""


def completion_id() -> str:
    """A fresh `cmpl-…` id."""
    return f"cmpl-{uuid.uuid4().hex}"


FIM_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, StableCode
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder, CodeGemma
    ("<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581end\uff5c>"),
    ("<PRE> ", " <SUF>", " <MID>"),  # CodeLlama
)
"""Base models' fill-in-the-middle prompts: (before the prefix, before the suffix, at the end).

Continue's autocomplete on an `openai` provider sends its prefix and suffix in one of these
(by the model's name; `<fim_prefix>` for a name it does not know) as a `prompt` with no
`suffix`; the third is DeepSeek Coder's."""


def gap_in(prompt: str, suffix: str | None) -> tuple[str, str] | None:
    """The text before and after the gap to fill, or None for a prompt to answer.

    With `suffix`, the gap is between it and the prompt; without, a prompt written in a
    base model's fill-in-the-middle template (`FIM_TEMPLATES`) names both.
    """
    if suffix is not None:
        return prompt, suffix
    for start, hole, end in FIM_TEMPLATES:
        if prompt.startswith(start) and prompt.endswith(end) and prompt.count(hole) == 1:
            before, _, after = prompt[len(start) : len(prompt) - len(end)].partition(hole)
            return before, after
    return None


def as_chat(body: CompletionRequest, prompt: str) -> ChatCompletionRequest:
    """One prompt of the request as the chat request that answers it."""
    gap = gap_in(prompt, body.suffix)
    if gap is None:
        messages: list[dict[str, str]] = [{"role": "user", "content": prompt}]
    else:
        messages = [
            {"role": "system", "content": FILL_IN_THE_MIDDLE},
            {"role": "user", "content": FILL_HERE.join(gap)},
        ]
    fields = ("model", "temperature", "top_p", "max_tokens", "stop", "seed", "user")
    sampling = ("frequency_penalty", "presence_penalty", "logit_bias")
    return ChatCompletionRequest.model_validate(
        {
            **{name: getattr(body, name) for name in (*fields, *sampling)},
            "messages": messages,
            "tool_choice": None if gap is None else "none",
        }
    )


def validate(body: CompletionRequest, settings: Settings) -> None:
    """Refuse what no chat model can honour, and more runs than the service allows (400)."""
    if body.logprobs is not None:
        raise OpenAIHTTPError(
            400,
            "logprobs are not available on this service (it answers through chat models): "
            "leave logprobs unset.",
            code=ErrorCode.UNSUPPORTED_PARAMETER,
            param="logprobs",
        )
    if body.best_of is not None and body.best_of != body.choices_per_prompt:
        raise OpenAIHTTPError(
            400,
            "best_of must equal n: the answers cannot be ranked without logprobs.",
            code=ErrorCode.UNSUPPORTED_VALUE,
            param="best_of",
        )
    total = len(body.prompts) * body.choices_per_prompt
    if total > settings.max_completion_choices:
        raise OpenAIHTTPError(
            400,
            f"Too many answers: {len(body.prompts)} prompt(s) x n={body.choices_per_prompt} "
            f"asks for {total}; at most {settings.max_completion_choices} are accepted.",
            code=ErrorCode.UNSUPPORTED_VALUE,
            param="n" if body.choices_per_prompt > 1 else "prompt",
        )


@dataclass(frozen=True)
class PlannedChoice:
    """One answer to run: choice `index`, for `prompt`, with its turn and cache lookup."""

    index: int
    prompt: str
    turn: TurnRequest
    cached: CacheLookup


async def plan(
    body: CompletionRequest,
    kit: TurnKit,
    cache: ResponseCache,
    headers: Mapping[str, str],
    *,
    caller: Caller,
) -> list[PlannedChoice]:
    """Validate the request and plan every choice's turn (all before any runs).

    Raises:
        OpenAIHTTPError: 400 for what cannot be honoured (`validate`).
        ModelNotFoundError: `model` is no alias (404).
    """
    validate(body, kit.settings)
    kit.providers.resolve(body.model)
    planned: list[PlannedChoice] = []
    for prompt in body.prompts:
        chat = as_chat(body, prompt)
        for _ in range(body.choices_per_prompt):
            turn = service.turn_request(chat, caller, None, door=DOOR)
            cached = await lookup(cache, chat, headers, stateful=False, caller_id=caller.key_id)
            planned.append(PlannedChoice(len(planned), prompt, turn, cached))
    return planned


def cache_headers(planned: list[PlannedChoice]) -> dict[str, str]:
    """`X-Cache` of the request: the choices' own when they agree, else `miss`."""
    seen = {value for c in planned if (value := c.cached.headers.get("x-cache")) is not None}
    if not seen:
        return {}
    return {"x-cache": seen.pop() if len(seen) == 1 else "miss"}


async def _complete(kit: TurnKit, choice: PlannedChoice) -> TurnResult:
    async with kit.open(choice.turn) as turn:
        return await choice.cached.complete(turn.complete)


async def complete_all(kit: TurnKit, planned: list[PlannedChoice]) -> list[TurnResult]:
    """Every choice's result, the turns side by side; one failing stops the others.

    Raises:
        Exception: The first failure of a turn (not an exception group: the error handlers
            answer it as the chat door would).
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_complete(kit, choice)) for choice in planned]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def finish_reason(result: TurnResult) -> CompletionFinishReason:
    """The turn's finish reason as a completion's (it has no tool calls)."""
    if result.finish_reason == "length":
        return "length"
    return "content_filter" if result.finish_reason == "content_filter" else "stop"


def total_usage(results: list[TurnResult]) -> Usage:
    """The usage of every turn of the request, summed."""
    usage = empty_usage()
    for result in results:
        usage = add_usage(usage, result.usage or empty_usage())
    return usage


def completion(
    body: CompletionRequest,
    planned: list[PlannedChoice],
    results: list[TurnResult],
    *,
    cid: str,
) -> dict[str, Any]:
    """The `text_completion` object of the turns' results, as a JSON-ready dict."""
    choices = [
        CompletionChoice(
            text=(choice.prompt if body.echo else "") + result.text,
            index=choice.index,
            finish_reason=finish_reason(result),
        )
        for choice, result in zip(planned, results, strict=True)
    ]
    return TextCompletion(
        id=cid,
        created=now(),
        model=body.model,
        choices=choices,
        usage=usage_object(total_usage(results)),
    ).model_dump()


@dataclass(frozen=True)
class ChoiceEvent:
    """An event of one choice's turn, in a stream of every choice's."""

    choice: PlannedChoice
    event: StreamEvent


async def stream_all(
    kit: TurnKit, planned: list[PlannedChoice]
) -> AsyncGenerator[ChoiceEvent, None]:
    """Every choice's turn streamed (or its cached answer), one after the other."""
    for choice in planned:
        async with kit.open(choice.turn) as turn:
            events = choice.cached.stream(turn.stream)
            async with contextlib.aclosing(events):
                async for event in events:
                    yield ChoiceEvent(choice, event)


@dataclass(frozen=True)
class _Chunks:
    """Makes the `text_completion` chunks of one stream."""

    cid: str
    model: str
    created: int
    include_usage: bool

    def text(self, index: int, text: str, finish: CompletionFinishReason | None = None) -> str:
        choice = CompletionChoice(text=text, index=index, finish_reason=finish)
        body = TextCompletion(id=self.cid, created=self.created, model=self.model, choices=[choice])
        return sse(body.model_dump(exclude=None if self.include_usage else {"usage"}))

    def usage(self, usage: Usage) -> str:
        body = TextCompletion(
            id=self.cid,
            created=self.created,
            model=self.model,
            choices=[],
            usage=usage_object(usage),
        )
        return sse(body.model_dump())


async def sse_stream(
    body: CompletionRequest,
    feed: TurnFeed[ChoiceEvent],
    *,
    cid: str,
) -> AsyncIterator[str]:
    """The choices' `text_completion` chunks, one choice after the other, then `[DONE]`.

    An error after the first byte is one error event, then the end (as on the chat route).
    """
    chunks = _Chunks(cid, body.model, now(), body.include_usage)
    usage = empty_usage()
    current: PlannedChoice | None = None
    try:
        async for item in feed:
            choice, event = item.choice, item.event
            if choice is not current:
                current = choice
                if body.echo:
                    yield chunks.text(choice.index, choice.prompt)
            if isinstance(event, TextDelta) and event.text:
                yield chunks.text(choice.index, event.text)
            elif isinstance(event, TurnDone):
                usage = add_usage(usage, event.result.usage or empty_usage())
                yield chunks.text(choice.index, "", finish_reason(event.result))
        if body.include_usage:
            yield chunks.usage(usage)
        yield sse("[DONE]")
    except Exception as exc:  # noqa: BLE001 - the stream's boundary: reported in-band
        yield error_event(exc)
