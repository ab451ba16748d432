"""The offline model's deterministic answer to a conversation (`offline_reply`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata

from nodes.images import has_image
from nodes.messages import message_text
from nodes.providers.offline.coerce import NUMBER, number_of
from nodes.providers.offline.infill import gap_of, infill
from nodes.providers.offline.rules import USE_TOOL
from nodes.providers.offline.structured import Hints, structured_content
from nodes.providers.offline.tool_choice import (
    ToolOffer,
    choose_call,
    forced_after_results,
    offered_tools,
)
from nodes.tools.knowledge import KNOWLEDGE_TOOL

NOT_CONFIGURED = (
    "I am the built-in offline model: no LLM provider is configured, so I can only drive "
    'the built-in tools (try "What is 17 * 23?", "What time is it in Europe/Paris?" or '
    '"echo hello"). To talk to a real model, set a provider key and a model alias, for '
    'example OPENROUTER_API_KEY=... and AGENT_MODELS=\'{"default": '
    '["openrouter:openai/gpt-4o-mini"]}\', then restart; docs/configuration.md lists every '
    "provider."
)

CANNOT_SEE_IMAGES = (
    "I can't see images: the offline model reads text only. Configure a vision-capable "
    "provider (for example OpenAI, Anthropic or an Ollama vision model) in AGENT_MODELS to "
    "ask about images."
)

_RECALL = re.compile(
    r"\bwhat (?:did|have) i (?:say|said|ask|asked|tell you|told you|write|written)\b"
    r"|\bmy (?:first|previous|last|earlier) messages?\b",
    re.IGNORECASE,
)


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
        elif result.name == KNOWLEDGE_TOOL:
            lines.append(_best_passage(content))
        else:
            lines.append(content)
    return "\n".join(lines)


_PASSAGE_HEADING = re.compile(
    r"^\[1\] (?P<title>.*) \((?:source: (?P<source>.*?); )?document (?P<id>.*?); score [-0-9.]+\)$"
)


def _best_passage(content: str) -> str:
    """The first passage of a `knowledge_search` result, introduced by its source."""
    heading, _, rest = content.partition("\n")
    found = _PASSAGE_HEADING.match(heading)
    if found is None:
        return content  # the knowledge base is empty, or nothing matched: say so as it is
    passage = rest.split("\n\n[2] ", 1)[0].strip()
    source = found["source"] or f"document {found['id']}"
    return f'According to "{found["title"]}" ({source}):\n\n{passage}'


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


def _image_note(messages: Sequence[BaseMessage]) -> str | None:
    """The plain word that images went unseen, when the latest user message has one."""
    latest = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    return CANNOT_SEE_IMAGES if latest is not None and has_image(latest.content) else None


def _computed(messages: Sequence[BaseMessage]) -> int | float | None:
    """The calculator's result among the latest tool results, if it gave a number."""
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        if message.name == "calculator" and message.status != "error":
            text = message_text(message).strip()
            if NUMBER.fullmatch(text):
                return number_of(text)
    return None


def _question(messages: Sequence[BaseMessage]) -> str:
    """The latest user message's text."""
    latest = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
    return message_text(latest) if latest is not None else ""


def _call_id(name: str, args: dict[str, Any], position: int) -> str:
    digest = hashlib.sha256(f"{position}:{name}:{json.dumps(args, sort_keys=True)}".encode())
    return f"call_{digest.hexdigest()[:24]}"


def _count_words(messages: Sequence[BaseMessage]) -> int:
    return sum(len(message_text(m).split()) for m in messages)


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
    response_format: object = None,
) -> AIMessage:
    """The deterministic answer of the offline model to a conversation.

    Args:
        messages: The conversation, the latest message last.
        tools: The offered tools, by name or as OpenAI definitions (whose schemas the
            arguments then satisfy).
        tool_choice: OpenAI's `tool_choice` (see the module docstring).
        max_tokens: Most words of text to produce; more ends with `finish_reason` `length`.
        stop: Sequences before which the text ends.
        response_format: OpenAI's `response_format`: a `json_object` or `json_schema` turns
            the text answer into JSON of that shape (`nodes.providers.offline.structured`).
    """
    offered = {} if tool_choice == "none" else offered_tools(tools)
    last = messages[-1] if messages else None
    tool_calls: list[ToolCall] = []
    content = NOT_CONFIGURED
    note = _image_note(messages)
    gap = gap_of(messages)
    if gap is not None:
        content, note = infill(*gap), None  # pasted into the user's document as it is
    elif isinstance(last, ToolMessage):
        still = forced_after_results(messages, offered, tool_choice)
        if still is not None:
            still["id"] = _call_id(still["name"], still["args"], len(messages))
            tool_calls, content = [still], ""
        else:
            content = _answer_from_tools(messages)
    elif isinstance(last, HumanMessage):
        text = message_text(last)
        if text.lstrip().startswith("### Task:"):
            content = _background_task(text, messages)
            note = None  # a chat UI parses this JSON
        else:
            call, forced = choose_call(text, offered, tool_choice)
            if not forced and _RECALL.search(text) and not USE_TOOL.match(text):
                content = _recall(messages)
            elif call is not None:
                call["id"] = _call_id(call["name"], call["args"], len(messages))
                tool_calls = [call]
                content = ""
    if note is not None and not tool_calls:
        # Said first, then the answer to the text (a tool call's answer comes after it).
        content = f"{note}\n\n{content}" if content else note
    if not tool_calls:
        hints = Hints(text=content, number=_computed(messages), question=_question(messages))
        prompt = [message_text(m) for m in messages if isinstance(m, SystemMessage | HumanMessage)]
        content = structured_content(response_format, hints, prompt) or content
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
