"""What flows between the nodes: the input, the full state and the output of the graph."""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict  # pydantic (LangServe, Studio) needs this one on 3.11

Route = Literal["model", "respond"]
"""Where the router sends a turn: to the provider chain, or straight to `respond`."""

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class Usage(TypedDict):
    """Token usage summed over every model call of the current turn."""

    input_tokens: int
    output_tokens: int
    total_tokens: int


class Attempt(TypedDict):
    """One call (or skip) of one provider, in the order they happened."""

    provider: str
    """Provider target id, `kind:model`."""
    outcome: Literal["ok", "error", "skipped"]
    error: str | None
    """The `ErrorKind` of a failure (`cooldown` for a skip), else None."""
    detail: str | None
    duration_ms: float
    first_token_ms: NotRequired[float]
    """For the call that answered: when its first token came (the whole answer, when the
    call was not streamed)."""
    half_open: NotRequired[bool]
    """True for a half-open trial: every provider of the chain was cooling down, so the one
    whose cooldown ends first was called anyway (a breaker never refuses a whole chain)."""


def empty_usage() -> Usage:
    """A zero usage record, the start of every turn."""
    return Usage(input_tokens=0, output_tokens=0, total_tokens=0)


def add_usage(left: Usage, right: Usage) -> Usage:
    """Sum two usage records."""
    return Usage(
        input_tokens=left["input_tokens"] + right["input_tokens"],
        output_tokens=left["output_tokens"] + right["output_tokens"],
        total_tokens=left["total_tokens"] + right["total_tokens"],
    )


class Summary(TypedDict):
    """What stands in the prompt for the oldest messages of the thread (`nodes/compact.py`).

    The messages themselves stay in the thread; the prompt sent is the system prompt(s),
    this summary, then the messages after `through`, verbatim.
    """

    text: str
    """The model's summary of the messages it covers ("" when they were only dropped)."""
    through: str
    """Id of the last message it stands for."""
    messages: int
    """How many messages it stands for, summarised or dropped."""
    dropped: int
    """Of those, how many were dropped unsummarised (the summary call failed)."""


CompactionHow = Literal["summary", "trim", "clip", "failed"]


class Compacted(TypedDict):
    """This turn's compaction of the prompt, for the inspector and the metrics."""

    how: CompactionHow
    """`summary`: older turns summarised; `trim`: dropped (summarising failed); `clip`: only
    the latest turn's tool results could be cut short; `failed`: still over the budget (the
    latest turn alone, without tool output to cut)."""
    before: int
    """Estimated prompt tokens before."""
    after: int
    """Estimated prompt tokens after."""
    budget: int
    """The budget it compacted to."""


class PromptTokens(TypedDict):
    """The estimate of the prompt last sent, what the provider counted, and their ratio.

    Estimates err high on purpose; a provider that counts more (another tokenizer, its own
    framing) raises `scale`, by which the next estimates are multiplied.
    """

    estimated: int
    reported: int | None
    scale: float


class InputState(TypedDict):
    """The public input: the new messages of a turn (appended to the thread)."""

    messages: Annotated[list[AnyMessage], add_messages]


class State(InputState):
    """The full state. Per-turn fields are reset by the router at the start of every turn."""

    refused: NotRequired[bool]
    """True when the guard answered this turn itself (an over-long input), so no model runs.
    The guard writes it on every turn, so a refusal of an earlier turn never lingers."""
    route: NotRequired[Route]
    """The router's decision for this turn."""
    route_reason: NotRequired[str]
    """Why: `chat`, `background_task`, `no_user_message` (the router), `input_too_long` (the
    guard)."""
    provider_chain: NotRequired[list[str]]
    """Provider target ids to try in order, resolved from the requested model alias."""
    tools_offered: NotRequired[list[str]]
    """Names of the server tools the model may call this turn."""
    client_tools_offered: NotRequired[list[str]]
    """Names of the client's tools the model may call this turn (the client runs them)."""
    tool_rounds: NotRequired[int]
    """Tool rounds run this turn."""
    tool_budget: NotRequired[int]
    """Most tool rounds allowed this turn; at the limit the model must answer without tools."""
    provider: NotRequired[str | None]
    """The provider target that produced the latest model answer."""
    attempts: NotRequired[list[Attempt]]
    """Every provider call of this turn, failed, skipped or successful."""
    usage: NotRequired[Usage]
    """Tokens summed over every model call of this turn."""
    finish_reason: NotRequired[FinishReason]
    """Why the final answer ended, in OpenAI's terms."""
    summary: NotRequired[Summary | None]
    """The summary standing for the oldest messages in the prompt; kept across turns (a fork
    carries its own checkpoint's)."""
    compacted: NotRequired[Compacted | None]
    """This turn's compaction, if the prompt had to be compacted (reset by the router)."""
    clipped: NotRequired[dict[str, int]]
    """Tool results sent cut short (id -> characters kept) because the latest turn alone was
    over the budget; rewritten by every compaction check."""
    prompt_tokens: NotRequired[PromptTokens]
    """Size of the prompt last sent, estimated and reported; kept across turns."""
    caller_scoped: NotRequired[bool]
    """True when this turn's tools returned the caller's own data (passages of its knowledge
    namespace, `nodes.tools.scope`): the answer is the caller's, never shared with another
    (the response cache keeps it under the caller's key only). Reset by the router."""


class OutputState(TypedDict):
    """What a run returns: the thread's messages and the facts of the turn."""

    messages: list[AnyMessage]
    provider: NotRequired[str | None]
    attempts: NotRequired[list[Attempt]]
    usage: NotRequired[Usage]
    finish_reason: NotRequired[FinishReason]
    route: NotRequired[Route]
    caller_scoped: NotRequired[bool]
