"""Which tools one model call offers, and the `tool_choice` it is sent with.

The client's `tool_choice` (OpenAI's) is an obligation on the model, and the server's own
tools must not let the model slip out of it:

- `none`: no tools at all.
- `required` (LangChain's `any`): the model must call one of the *client's* tools, so those
  alone are offered, with `required`; the call ends the turn with `finish_reason:
  "tool_calls"`. Without client tools, the server's tools are offered with `required`.
- a named tool (`{"type": "function", "function": {"name": ...}}`, the Responses form
  `{"type": "function", "name": ...}`, or LangChain's bare name): a client tool is forced
  with only the client's tools offered; a server tool (possible only through the graph's
  context: the HTTP doors refuse a name that is not in `tools`) is forced among the usual
  offer.
- `auto` (or unset): every selected tool, the model picks.

A forced choice binds a model call only until the server's own tools have run in the turn:
after their results the model answers (or calls again) with `auto`, or it would be forced
to call a tool again and again until the tool budget ran out. After the *client's* results
(a resumed run), the request's `tool_choice` holds again, as it does on OpenAI's API.

Each provider kind takes a forced choice in its own form (`ProviderSpec.tool_choice`):
OpenAI's values, Anthropic's (`any`, a tool name, which langchain-anthropic sends as
`{"type": "any"}` / `{"type": "tool", "name": ...}`); a kind that has none (Ollama) is
offered only the forced tool, the nearest it comes to being obliged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from langchain_core.messages import AIMessage, AnyMessage, ToolMessage

from graph.context import Context
from graph.state import State
from nodes.deps import AgentDeps
from nodes.providers.registry import ProviderSpec

ANY_TOOL: Final = "*"
"""What `forced_tool` returns for `required`: any offered tool, but some tool."""

_UNFORCED = frozenset({"auto", "none"})


def forced_tool(choice: object) -> str | None:
    """The tool a `tool_choice` forces: its name, `ANY_TOOL`, or None (the model picks)."""
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else choice.get("name")
        return name if isinstance(name, str) and name else None
    if choice in ("required", "any"):
        return ANY_TOOL
    if isinstance(choice, str) and choice and choice not in _UNFORCED:
        return choice  # LangChain's spelling: the bare tool name
    return None


def declared_client_tools(context: Context) -> set[str]:
    """The names of the tools the client declared."""
    names: set[str] = set()
    for spec in context.client_tools:
        function = spec.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return names


def server_tools_ran(messages: Sequence[AnyMessage], client: set[str]) -> bool:
    """Whether the latest messages are the results of server tools.

    The trailing tool results answer the AI message before them; when that message called
    any tool the client does not run, the server ran it in this turn.
    """
    index = len(messages)
    while index > 0 and isinstance(messages[index - 1], ToolMessage):
        index -= 1
    if index == len(messages) or index == 0:
        return False
    asked = messages[index - 1]
    if not isinstance(asked, AIMessage):
        return False
    return bool(asked.invalid_tool_calls) or any(c["name"] not in client for c in asked.tool_calls)


@dataclass(frozen=True)
class Offer:
    """The tools of one model call and the tool it is obliged to call."""

    server: list[str] = field(default_factory=list)
    """Names of the server tools offered."""
    client: list[dict[str, Any]] = field(default_factory=list)
    """The client's tool specs offered (OpenAI's shape)."""
    forced: str | None = None
    """A tool name, `ANY_TOOL`, or None: the model picks (or calls none)."""

    def __bool__(self) -> bool:
        return bool(self.server or self.client)


def _client_specs(context: Context, offered: list[str]) -> list[dict[str, Any]]:
    wanted = set(offered)
    return [
        spec
        for spec in context.client_tools
        if isinstance(spec.get("function"), dict) and spec["function"].get("name") in wanted
    ]


def offer_for(state: State, context: Context) -> Offer:
    """What the next model call offers: none once the turn's tool budget is used up.

    The router chose the tools of the turn (`tools_offered`, `client_tools_offered`); the
    client's `tool_choice` narrows them for this call (the module docstring says how).
    """
    if context.tool_choice == "none" or state.get("tool_rounds", 0) >= state.get("tool_budget", 0):
        return Offer()
    server = list(state.get("tools_offered", []))
    client = _client_specs(context, state.get("client_tools_offered", []))
    forced = forced_tool(context.tool_choice)
    declared = declared_client_tools(context)
    if forced is None or server_tools_ran(state["messages"], declared):
        return Offer(server, client)
    if forced == ANY_TOOL:
        return Offer([], client, forced) if client else Offer(server, [], forced)
    if forced in declared and any(spec["function"]["name"] == forced for spec in client):
        return Offer([], client, forced)
    if forced in server:
        return Offer(server, client, forced)
    return Offer(server, client)  # it names no tool of this turn: nothing to oblige


def offered_tools(services: AgentDeps, state: State, context: Context) -> list[Any]:
    """The tools sent with the next model call (server tools as `BaseTool`s, client specs)."""
    offer = offer_for(state, context)
    return [*services.tools.tools(offer.server), *offer.client]


def for_kind(offer: Offer, spec: ProviderSpec) -> Offer:
    """The offer as a kind can take it: only the forced tool, for a kind without `tool_choice`."""
    if spec.tool_choice is not None or offer.forced in (None, ANY_TOOL):
        return offer
    server = [name for name in offer.server if name == offer.forced]
    client = [s for s in offer.client if s["function"]["name"] == offer.forced]
    return replace(offer, server=server, client=client)


def tool_options(offer: Offer, spec: ProviderSpec, context: Context) -> dict[str, Any]:
    """`tool_choice` (in the kind's form) and `parallel_tool_calls` for `bind_tools`."""
    options: dict[str, Any] = {}
    if offer.forced is not None and spec.tool_choice == "openai":
        options["tool_choice"] = (
            "required"
            if offer.forced == ANY_TOOL
            else {"type": "function", "function": {"name": offer.forced}}
        )
    elif offer.forced is not None and spec.tool_choice == "anthropic":
        options["tool_choice"] = "any" if offer.forced == ANY_TOOL else offer.forced
    if context.parallel_tool_calls is not None and spec.speaks_openai:
        options["parallel_tool_calls"] = context.parallel_tool_calls
    return options
