"""The `offline` provider: a deterministic local chat model that needs no key and no network.

What it does, in order, for the latest message:

- after tool results: answers from them ("17 * 23 = 391");
- a chat-UI background task (`### Task:`): a small JSON answer (title, tags, follow-ups);
- "use <tool> key=value ...": calls any offered tool by name (plugins included) with those
  arguments (numbers become numbers; quote values that contain spaces);
- "what did I say?" (or "my previous message"): quotes the user's earlier messages of the
  conversation, so a client can see that a thread is remembered;
- "echo <text>": calls the `echo` tool with `<text>`;
- a date or time question: calls the `clock` tool (an IANA zone named in the question, else
  UTC; "in N days" adds days; "until YYYY-MM-DD" asks for a difference);
- "search for <query>": calls `searxng_search`;
- an arithmetic expression (digits, operators as chat UIs write them: `*` and the multiplication
  sign or dots U+00D7, U+00B7, U+22C5; `/` and the division sign U+00F7; `-` and the minus sign
  U+2212; `^` as a power; math functions): calls the `calculator` tool;
- anything else: says that no provider is configured and how to configure one.

A tool is only called when it is offered. What a client asks of a model is honoured, so that
client tests written against it hold against a real model too:

- `tool_choice` naming a tool (OpenAI's `{"type": "function", "function": {"name": ...}}`, or
  the bare name) calls that tool for a user message, `"required"`/`"any"` calls the tool a rule
  picks or else the one whose name and description best match the text, `"none"` calls none.
  Arguments satisfy the tool's JSON schema (`nodes.providers.tool_arguments`): required
  properties are read from the text where it can, typed defaults otherwise. After tool
  results the model answers from them, as it would without `tool_choice` (forcing again would
  loop until the tool budget runs out).
- `stop` cuts the text before the first stop sequence; `max_tokens` (or
  `max_completion_tokens`) cuts it after that many tokens, with `finish_reason` `length`.
  Tool calls are never cut: half a call helps no client.

Token usage counts words (a tool call: a quarter of its JSON's length).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

from nodes.messages import message_text
from nodes.providers.tool_arguments import arguments_for

NOT_CONFIGURED = (
    "I am the built-in offline model: no LLM provider is configured, so I can only drive "
    'the built-in tools (try "What is 17 * 23?", "What time is it in Europe/Paris?" or '
    '"echo hello"). To talk to a real model, set a provider key and a model alias, for '
    'example OPENROUTER_API_KEY=... and AGENT_MODELS=\'{"default": '
    '["openrouter:openai/gpt-4o-mini"]}\', then restart; the README lists every provider.'
)

_MATH_NAMES = frozenset(
    [
        "sqrt",
        "cbrt",
        "exp",
        "log",
        "log10",
        "log2",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "tanh",
        "degrees",
        "radians",
        "floor",
        "ceil",
        "abs",
        "round",
        "min",
        "max",
        "hypot",
        "factorial",
        "gcd",
        "lcm",
        "pi",
        "e",
        "tau",
    ]
)
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\*\*|//|[-+*/%^(),]|[A-Za-z_]+|\S")
# Chat UIs and people write the multiplication sign, dots, the division sign and the minus sign
# (U+00D7, U+00B7, U+22C5, U+00F7, U+2212); the calculator reads them too.
_MINUS = frozenset(["-", "\u2212"])
_OPERATORS = frozenset(
    ["+", "-", "*", "/", "//", "%", "**", "^", "\u00d7", "\u00b7", "\u22c5", "\u00f7", "\u2212"]
)
_TIME_WORDS = re.compile(
    r"\b(time|date|today|tomorrow|yesterday|weekday|clock|timezone|what day|days? until)\b",
    re.IGNORECASE,
)
_TIMEZONE = re.compile(r"\b([A-Z][A-Za-z_]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?|UTC)\b")
_IN_DAYS = re.compile(r"\bin (\d{1,6}) days?\b|\b(\d{1,6}) days? from (?:now|today)\b", re.I)
_UNTIL = re.compile(r"\b(?:until|till|to) (\d{4}-\d{2}-\d{2}(?:[T ][\d:]+)?)\b", re.I)
_ECHO = re.compile(r"^\s*echo\b[\s:,]*(.*)$", re.IGNORECASE | re.DOTALL)
_USE_TOOL = re.compile(
    r"^\s*(?:use|call|run)\s+(?:the\s+)?([A-Za-z_][\w-]*)(?:\s+tool)?\b(.*)$", re.I | re.S
)
_TOOL_ARG = re.compile(r"""([A-Za-z_]\w*)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")
_RECALL = re.compile(
    r"\bwhat (?:did|have) i (?:say|said|ask|asked|tell you|told you|write|written)\b"
    r"|\bmy (?:first|previous|last|earlier) messages?\b",
    re.IGNORECASE,
)
_SEARCH = re.compile(r"^\s*(?:search(?: the web)? for|look up|web search)\s+(.+)$", re.I | re.S)


def find_expression(text: str) -> str | None:
    """The longest run of arithmetic tokens in the text, if it has a number and an operator."""
    best: str | None = None
    run: list[re.Match[str]] = []

    def close_run() -> None:
        nonlocal best
        while run and run[-1].group() in _OPERATORS | {"(", ","}:
            run.pop()
        tokens = [m.group() for m in run]
        has_number = any(t[0].isdigit() for t in tokens)
        has_op = any(t in _OPERATORS or t == "(" or t.lower() in _MATH_NAMES for t in tokens)
        if has_number and has_op:
            candidate = text[run[0].start() : run[-1].end()]
            if best is None or len(candidate) > len(best):
                best = candidate
        run.clear()

    for match in _TOKEN.finditer(text):
        token = match.group()
        mathy = (
            token[0].isdigit()
            or token in _OPERATORS
            or token in {"(", ")", ","}
            or token.lower() in _MATH_NAMES
        )
        if mathy and not (not run and token in _OPERATORS - _MINUS):
            run.append(match)
        else:
            close_run()
    close_run()
    return best


def _clock_args(text: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    zone = _TIMEZONE.search(text)
    args["timezone"] = zone.group(1) if zone else "UTC"
    days = _IN_DAYS.search(text)
    if days:
        args["add_days"] = int(days.group(1) or days.group(2))
    until = _UNTIL.search(text)
    if until:
        args["until"] = until.group(1)
    return args


def _tool_arg_value(raw: str) -> Any:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def _named_tool_args(text: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for match in _TOOL_ARG.finditer(text):
        key, double, single, bare = match.groups()
        if bare is not None:
            args[key] = _tool_arg_value(bare)
        else:
            args[key] = double if double is not None else single
    return args


def plan_tool_call(text: str, tools: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """Which offered tool answers this user text, with which arguments (None: no tool)."""
    named = _USE_TOOL.match(text)
    if named and named.group(1) in tools:
        return named.group(1), _named_tool_args(named.group(2))
    echo = _ECHO.match(text)
    if echo and "echo" in tools:
        return "echo", {"text": echo.group(1).strip()}
    if _TIME_WORDS.search(text) and "clock" in tools:
        return "clock", _clock_args(text)
    search = _SEARCH.match(text)
    if search and "searxng_search" in tools:
        return "searxng_search", {"query": search.group(1).strip().rstrip("?")}
    expression = find_expression(text)
    if expression and "calculator" in tools:
        return "calculator", {"expression": expression}
    return None


def _answer_from_tools(messages: Sequence[BaseMessage]) -> str:
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.insert(0, message)
    calls: dict[str, ToolCall] = {}
    for message in messages:
        if isinstance(message, AIMessage):
            calls.update({call["id"] or "": call for call in message.tool_calls})
    lines = []
    for result in results:
        content = message_text(result)
        call = calls.get(result.tool_call_id)
        if result.status == "error":
            lines.append(f"The {result.name or 'tool'} tool reported an error: {content}")
        elif result.name == "calculator" and call is not None:
            lines.append(f"{call['args'].get('expression')} = {content}")
        elif result.name == "searxng_search":
            lines.append(f"Here is what I found:\n{content}")
        else:
            lines.append(content)
    return "\n".join(lines)


def _background_task(text: str, messages: Sequence[BaseMessage]) -> str:
    lowered = text.lower()
    if "follow" in lowered:
        return json.dumps({"follow_ups": []})
    if "tag" in lowered:
        return json.dumps({"tags": ["General"]})
    history = re.search(r"USER:\s*(.+)", text)
    source = history.group(1) if history else text.replace("### Task:", "")
    words = re.findall(r"[\w'-]+", source)[:5]
    return json.dumps({"title": " ".join(words).capitalize() or "New chat"})


def _recall(messages: Sequence[BaseMessage]) -> str:
    """The user's earlier messages, quoted: proof that the conversation is remembered."""
    earlier = [message_text(m) for m in messages[:-1] if isinstance(m, HumanMessage)]
    earlier = [text for text in earlier if not text.lstrip().startswith("### Task:")]
    if not earlier:
        return "This is the first message of our conversation: you have not said anything else."
    return "Earlier you said: " + "; ".join(f'"{text}"' for text in earlier)


def _call_id(name: str, args: dict[str, Any], position: int) -> str:
    digest = hashlib.sha256(f"{position}:{name}:{json.dumps(args, sort_keys=True)}".encode())
    return f"call_{digest.hexdigest()[:24]}"


def _count_words(messages: Sequence[BaseMessage]) -> int:
    return sum(len(message_text(m).split()) for m in messages)


ToolOffer = str | Mapping[str, Any]
"""An offered tool: its name, or its OpenAI definition (`{"type": "function", "function": ...}`)."""

_ANY_TOOL = "*"
_STOP_WORDS = frozenset({"the", "and", "for", "with", "what", "how", "this", "that", "from", "are"})


def _offered(tools: Sequence[ToolOffer]) -> dict[str, Mapping[str, Any]]:
    """Offered tools by name, each with its OpenAI `function` object (empty for a bare name)."""
    table: dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        if isinstance(tool, str):
            table[tool] = {}
            continue
        function = tool.get("function", tool)
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            table[function["name"]] = function
    return table


def _forced_name(tool_choice: object, offered: Mapping[str, Any]) -> str | None:
    """The tool `tool_choice` insists on, `_ANY_TOOL` for any tool, None for the model's pick."""
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
        return name if isinstance(name, str) and name in offered else None
    if tool_choice in ("required", "any"):
        return _ANY_TOOL
    if isinstance(tool_choice, str) and tool_choice in offered:
        return tool_choice  # LangChain's spelling: the bare tool name
    return None


def _words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", text.replace("_", " ").lower())
    return {word for word in words if len(word) > 2 and word not in _STOP_WORDS}


def _best_match(text: str, offered: Mapping[str, Mapping[str, Any]]) -> str:
    """The tool whose definition shares most words with the text (ties: the first).

    The definition is its name, description and parameters: property names and enum
    members ("terrace", "dinner") tell as much as the description does.
    """
    wanted = _words(text)

    def score(name: str) -> int:
        function = offered[name]
        described = f"{name} {function.get('description') or ''} "
        described += json.dumps(function.get("parameters") or {}, default=str)
        return len(wanted & _words(described))

    return max(offered, key=score)


def _fit(name: str, args: dict[str, Any], text: str, offered: Mapping[str, Any]) -> ToolCall:
    """A call of `name` whose arguments satisfy the tool's schema, when the schema is known."""
    named = _USE_TOOL.match(text)
    source = named.group(2) if named and named.group(1) == name else text
    parameters = offered[name].get("parameters")
    if isinstance(parameters, Mapping):
        args = arguments_for(parameters, source, args)
    return ToolCall(name=name, args=args, id=None)


def _choose_call(
    text: str, offered: Mapping[str, Mapping[str, Any]], tool_choice: object
) -> tuple[ToolCall | None, bool]:
    """The call for this user text, and whether `tool_choice` forced it."""
    forced = _forced_name(tool_choice, offered)
    if forced is None:
        plan = plan_tool_call(text, list(offered))
        return (_fit(*plan, text, offered) if plan else None), False
    candidates = list(offered) if forced == _ANY_TOOL else [forced]
    plan = plan_tool_call(text, candidates)
    if plan is not None:
        return _fit(*plan, text, offered), True
    name = _best_match(text, offered) if forced == _ANY_TOOL else forced
    return _fit(name, {}, text, offered), True


def _limit(content: str, max_tokens: int | None, stop: Sequence[str]) -> tuple[str, bool]:
    """The text cut at the first stop sequence, then after `max_tokens` words; True if cut short."""
    cuts = [content.find(sequence) for sequence in stop if sequence]
    cuts = [cut for cut in cuts if cut >= 0]
    if cuts:
        content = content[: min(cuts)]
    if max_tokens is not None:
        words = re.findall(r"\s*\S+", content)
        if len(words) > max_tokens:
            return "".join(words[: max(max_tokens, 0)]), True
    return content, False


def offline_reply(
    messages: Sequence[BaseMessage],
    tools: Sequence[ToolOffer],
    *,
    tool_choice: object = None,
    max_tokens: int | None = None,
    stop: Sequence[str] = (),
) -> AIMessage:
    """The deterministic answer of the offline model to a conversation.

    Args:
        messages: The conversation, the latest message last.
        tools: The offered tools, by name or as OpenAI definitions (whose schemas the
            arguments then satisfy).
        tool_choice: OpenAI's `tool_choice` (see the module docstring).
        max_tokens: Most words of text to produce; more ends with `finish_reason` `length`.
        stop: Sequences before which the text ends.
    """
    offered = {} if tool_choice == "none" else _offered(tools)
    last = messages[-1] if messages else None
    tool_calls: list[ToolCall] = []
    content = NOT_CONFIGURED
    if isinstance(last, ToolMessage):
        content = _answer_from_tools(messages)
    elif isinstance(last, HumanMessage):
        text = message_text(last)
        if text.lstrip().startswith("### Task:"):
            content = _background_task(text, messages)
        else:
            call, forced = _choose_call(text, offered, tool_choice)
            if not forced and _RECALL.search(text) and not _USE_TOOL.match(text):
                content = _recall(messages)
            elif call is not None:
                call["id"] = _call_id(call["name"], call["args"], len(messages))
                tool_calls = [call]
                content = ""
    content, cut_short = _limit(content, max_tokens, stop)
    input_tokens = _count_words(messages)
    output_tokens = len(content.split()) + sum(len(json.dumps(c["args"])) // 4 for c in tool_calls)
    finish_reason = "tool_calls" if tool_calls else "length" if cut_short else "stop"
    return AIMessage(
        content=content,
        tool_calls=tool_calls,
        usage_metadata=UsageMetadata(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        ),
        response_metadata={"model_name": "offline", "finish_reason": finish_reason},
    )


def _reply_to(
    messages: Sequence[BaseMessage], stop: list[str] | None, options: Mapping[str, Any]
) -> AIMessage:
    """`offline_reply` with the call options LangChain passes (`bind`, `bind_tools`)."""
    limit = options.get("max_tokens") or options.get("max_completion_tokens")
    return offline_reply(
        messages,
        options.get("tools") or [],
        tool_choice=options.get("tool_choice"),
        max_tokens=limit if isinstance(limit, int) else None,
        stop=stop or [],
    )


class OfflineChatModel(BaseChatModel):
    """LangChain chat model wrapping `offline_reply`; streams word by word.

    Call options reach it the way they reach any chat model: `bind_tools(tools,
    tool_choice=...)` and `bind(max_tokens=..., stop=[...])`, or the same keywords on
    `invoke`/`astream`.
    """

    @property
    def _llm_type(self) -> str:
        return "offline"

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer tools with their schemas (forced calls fill them); `tool_choice` as OpenAI's."""
        specs = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=specs, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = _reply_to(messages, stop, kwargs)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in _chunks(_reply_to(messages, stop, kwargs)):
            if run_manager is not None:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in _chunks(_reply_to(messages, stop, kwargs)):
            if run_manager is not None:
                await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk


def _chunks(reply: AIMessage) -> Iterator[ChatGenerationChunk]:
    """Split a reply the way a streaming provider would: words, then tool calls, then usage."""
    words = re.findall(r"\S+\s*|\s+", str(reply.content))
    for word in words:
        yield ChatGenerationChunk(message=AIMessageChunk(content=word))
    for index, call in enumerate(reply.tool_calls):
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": call["name"],
                        "args": json.dumps(call["args"]),
                        "id": call["id"],
                        "index": index,
                        "type": "tool_call_chunk",
                    }
                ],
            )
        )
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            usage_metadata=reply.usage_metadata,
            response_metadata=reply.response_metadata,
            chunk_position="last",
        )
    )
