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

A tool is only called when it is offered; token usage counts words.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
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


def offline_reply(messages: Sequence[BaseMessage], tools: Sequence[str]) -> AIMessage:
    """The deterministic answer of the offline model to a conversation."""
    last = messages[-1] if messages else None
    tool_calls: list[ToolCall] = []
    content = NOT_CONFIGURED
    if isinstance(last, ToolMessage):
        content = _answer_from_tools(messages)
    elif isinstance(last, HumanMessage):
        text = message_text(last)
        if text.lstrip().startswith("### Task:"):
            content = _background_task(text, messages)
        elif _RECALL.search(text) and not _USE_TOOL.match(text):
            content = _recall(messages)
        else:
            plan = plan_tool_call(text, tools)
            if plan is not None:
                name, args = plan
                tool_calls = [
                    ToolCall(name=name, args=args, id=_call_id(name, args, len(messages)))
                ]
                content = ""
    input_tokens = _count_words(messages)
    output_tokens = len(content.split()) + sum(len(json.dumps(c["args"])) // 4 for c in tool_calls)
    return AIMessage(
        content=content,
        tool_calls=tool_calls,
        usage_metadata=UsageMetadata(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        ),
        response_metadata={
            "model_name": "offline",
            "finish_reason": "tool_calls" if tool_calls else "stop",
        },
    )


class OfflineChatModel(BaseChatModel):
    """LangChain chat model wrapping `offline_reply`; streams word by word."""

    @property
    def _llm_type(self) -> str:
        return "offline"

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer tools by name; the offline model only needs to know which ones exist."""
        names = [convert_to_openai_tool(tool)["function"]["name"] for tool in tools]
        return self.bind(tools=names, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = offline_reply(messages, kwargs.get("tools") or [])
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in _chunks(offline_reply(messages, kwargs.get("tools") or [])):
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
        for chunk in _chunks(offline_reply(messages, kwargs.get("tools") or [])):
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
