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
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from graph.errors import ErrorCode
from graph.prompts import FILL_HERE, FILL_IN_THE_MIDDLE
from graph.state import Usage, add_usage, empty_usage
from server.chat.adapter import now, usage_object
from server.chat.cached import CacheLookup, lookup
from server.chat.protocol import ChatCompletionRequest, CompletionRequest
from server.chat.service import ChatService
from server.chat.streaming import error_event, sse
from server.chat.wire import CompletionChoice, CompletionFinishReason, TextCompletion
from server.errors import OpenAIHTTPError
from server.settings import Settings
from server.stores.cache import ResponseCache
from server.turns.events import StreamEvent, TextDelta, TurnDone, final_text
from server.turns.prepare import PreparedRun
from server.turns.pump import EventPump


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
    """One answer to run: choice `index`, for `prompt`, with its run and cache lookup."""

    index: int
    prompt: str
    run: PreparedRun
    cached: CacheLookup


async def plan(
    body: CompletionRequest,
    service: ChatService,
    cache: ResponseCache,
    headers: Mapping[str, str],
    *,
    caller_id: str | None,
    settings: Settings,
) -> list[PlannedChoice]:
    """Validate the request and prepare every choice's run (all before any runs).

    Raises:
        OpenAIHTTPError: 400 for what cannot be honoured (`validate`).
        ModelNotFoundError: `model` is no alias (404).
    """
    validate(body, settings)
    planned: list[PlannedChoice] = []
    for prompt in body.prompts:
        chat = as_chat(body, prompt)
        for _ in range(body.choices_per_prompt):
            run = await service.prepare(chat, None)
            cached = await lookup(cache, chat, headers, stateful=False, caller_id=caller_id)
            planned.append(PlannedChoice(len(planned), prompt, run, cached))
    return planned


def cache_headers(planned: list[PlannedChoice]) -> dict[str, str]:
    """`X-Cache` of the request: the choices' own when they agree, else `miss`."""
    seen = {value for c in planned if (value := c.cached.headers.get("x-cache")) is not None}
    if not seen:
        return {}
    return {"x-cache": seen.pop() if len(seen) == 1 else "miss"}


async def complete_all(service: ChatService, planned: list[PlannedChoice]) -> list[dict[str, Any]]:
    """Every choice's output, the runs side by side; one failing stops the others.

    Raises:
        Exception: The first failure of a run (not an exception group: the error handlers
            answer it as the chat door would).
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(choice.cached.complete(partial(service.complete, choice.run)))
                for choice in planned
            ]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


def finish_reason(output: dict[str, Any]) -> CompletionFinishReason:
    """The graph's finish reason as a completion's (it has no tool calls)."""
    reason = output.get("finish_reason")
    return reason if reason in ("length", "content_filter") else "stop"


def total_usage(outputs: list[dict[str, Any]]) -> Usage:
    """The usage of every run of the request, summed."""
    usage = empty_usage()
    for output in outputs:
        usage = add_usage(usage, output.get("usage") or empty_usage())
    return usage


def completion(
    body: CompletionRequest,
    planned: list[PlannedChoice],
    outputs: list[dict[str, Any]],
    *,
    cid: str,
) -> dict[str, Any]:
    """The `text_completion` object of the runs' outputs, as a JSON-ready dict."""
    choices = [
        CompletionChoice(
            text=(choice.prompt if body.echo else "") + final_text(output),
            index=choice.index,
            finish_reason=finish_reason(output),
        )
        for choice, output in zip(planned, outputs, strict=True)
    ]
    return TextCompletion(
        id=cid,
        created=now(),
        model=body.model,
        choices=choices,
        usage=usage_object(total_usage(outputs)),
    ).model_dump()


def open_stream(service: ChatService, choice: PlannedChoice) -> EventPump[StreamEvent]:
    """Start streaming one choice's run (or its cached answer)."""
    return EventPump(choice.cached.stream(partial(service.stream, choice.run)))


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
    service: ChatService,
    planned: list[PlannedChoice],
    started: tuple[EventPump[StreamEvent], StreamEvent],
    *,
    run_held: AsyncExitStack,
    cid: str,
) -> AsyncIterator[str]:
    """The choices' `text_completion` chunks, one choice after the other, then `[DONE]`.

    `started` is the first choice's stream (`open_stream`, held by `run_held`) and its first
    event; each next choice starts when the one before has ended. An error after the first
    byte is one error event, then the end (as on the chat route).
    """
    chunks = _Chunks(cid, body.model, now(), body.include_usage)
    usage = empty_usage()
    pump, event = started
    try:
        for number, choice in enumerate(planned):
            if number:
                pump = open_stream(service, choice)
                run_held.push_async_callback(pump.aclose)
                event = await pump.next()
            if body.echo:
                yield chunks.text(choice.index, choice.prompt)
            while not isinstance(event, TurnDone):
                if isinstance(event, TextDelta) and event.text:
                    yield chunks.text(choice.index, event.text)
                event = await pump.next()
            usage = add_usage(usage, event.output.get("usage") or empty_usage())
            yield chunks.text(choice.index, "", finish_reason(event.output))
        with anyio.CancelScope(shield=True):  # the runs are over: free what they held
            await run_held.aclose()
        if body.include_usage:
            yield chunks.usage(usage)
        yield sse("[DONE]")
    except Exception as exc:  # noqa: BLE001 - the stream's boundary: reported in-band
        yield error_event(exc)
