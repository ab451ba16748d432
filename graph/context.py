"""Per-run settings (the graph's `context_schema`); filled by the server from Settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_INPUT_CHARS = 200_000
"""Default of `Context.max_input_chars` and of the `MAX_INPUT_CHARS` setting.

About 50 000 tokens of English (≈ 4 characters a token), so a turn this long still fits, with
the history, the tool schemas and the answer, in the 128k-token context of today's hosted
defaults (gpt-4o-mini, Claude, Llama 3.1/3.3), and every node that scans the turn's text
(the guard, the router, a redaction node) sees at most this much. Models with smaller
windows (a 32k-token model: ~100 000; Ollama's small default context) want a lower value,
as does text of ~1 character a token (Chinese, Japanese).
"""


@dataclass(kw_only=True)
class Context:
    """Options of one run. Defaults apply when a door passes no context (e.g. `langgraph dev`)."""

    model: str | None = None
    """Model alias requested by the client; None means the configured default alias."""
    caller: str | None = None
    """Who the run is for: the server puts the caller's API key id here, and its usage
    accounting credits every model call of the run to it. Never shown to the model."""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    max_tool_rounds: int = 5
    """Tool rounds allowed per turn before the model must answer without tools."""
    tool_timeout: float = 30.0
    """Seconds one tool call may take."""
    tool_output_max_chars: int = 16_000
    """Longer tool outputs are cut, so one tool cannot flood the model's context."""
    max_tools_offered: int = 16
    """With more tools than this registered, only the most relevant ones are offered."""
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS
    """A turn whose new user text is longer is refused by the guard node, before any model."""
    client_tools: list[dict[str, Any]] = field(default_factory=list)
    """Tools the client declared (OpenAI `tools`): offered to the model, never run here."""
    tool_choice: str | dict[str, Any] | None = None
    """OpenAI `tool_choice`; "none" offers no tools at all."""
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    """OpenAI `response_format`, passed to providers that speak OpenAI's API."""
    instructions: str | None = None
    """A system prompt for this run only (the Responses API's `instructions`): it leads the
    prompt in place of the default one and is never stored in the thread."""
    openai_params: dict[str, Any] = field(default_factory=dict)
    """Other OpenAI fields the client set (`seed`, `frequency_penalty`, `presence_penalty`,
    `logit_bias`, `reasoning_effort`, `verbosity`), passed only to providers that speak
    OpenAI's API."""

    def sampling(self) -> dict[str, object]:
        """The provider call options that the client set (unset ones are left to the model)."""
        params: dict[str, object] = {}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.top_p is not None:
            params["top_p"] = self.top_p
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.stop:
            params["stop"] = list(self.stop)
        return params
