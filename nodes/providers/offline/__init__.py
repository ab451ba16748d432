"""The `offline` provider: a deterministic local chat model that needs no key and no network.

What it does, in order, for the latest message:

- a fill-in-the-middle request (`/v1/completions` with a `suffix`): completes the word at the
  cursor from the document's own words, else inserts nothing (`infill`);
- after tool results: answers from them ("17 * 23 = 391");
- a chat-UI background task (`### Task:`): a small JSON answer (title, tags, follow-ups);
- "use <tool> key=value ...": calls any offered tool by name (plugins included) with those
  arguments (numbers become numbers; quote values that contain spaces);
- "what did I say?" (or "my previous message"): quotes the user's earlier messages of the
  conversation, so a client can see that a thread is remembered;
- "echo <text>": calls the `echo` tool with `<text>`;
- "search the knowledge base for <query>" (or "what do the docs say about <query>"): calls
  `knowledge_search`, then answers with the best passage and names its source;
- a date or time question: calls the `clock` tool (an IANA zone named in the question, else
  UTC; "in N days" adds days; "until YYYY-MM-DD" asks for a difference);
- "search for <query>": calls `searxng_search`;
- an arithmetic expression (digits, operators as chat UIs write them: `*` and the multiplication
  sign or dots U+00D7, U+00B7, U+22C5; `/` and the division sign U+00F7; `-` and the minus sign
  U+2212; `^` as a power; math functions): calls the `calculator` tool;
- anything else: says that no provider is configured and how to configure one.

When the latest user message carries an image, the text answer starts by saying plainly that
the offline model cannot see images and that a vision-capable provider can.

A tool is only called when it is offered. What a client asks of a model is honoured, so that
client tests written against it hold against a real model too:

- `tool_choice` naming a tool (OpenAI's `{"type": "function", "function": {"name": ...}}`, or
  the bare name) calls that tool for a user message, `"required"`/`"any"` calls the tool a rule
  picks or else the one whose name and description best match the text, `"none"` calls none.
  Arguments satisfy the tool's JSON schema (`nodes.providers.offline.arguments`): required
  properties are read from the text where it can, typed defaults otherwise. After tool
  results a forced tool not yet called since the user's message is called (its arguments
  read from the results: a function tool's result, then pydantic-ai's output tool); once
  each has been called the model answers from the results (forcing again would loop until
  the tool budget runs out).
- `stop` cuts the text before the first stop sequence; `max_tokens` (or
  `max_completion_tokens`) cuts it after that many tokens, with `finish_reason` `length`.
  Tool calls are never cut: half a call helps no client.

- `response_format` `json_schema` (`json_object`) makes the answer JSON valid under the
  schema (the prompt's schema, or `{"answer": ...}`), filled from the text answer, the
  computed number and the user's text (`nodes.providers.offline.structured`).

Token usage counts words (a tool call: a quarter of its JSON's length).

Modules: `model` (the LangChain chat model and its streaming), `reply` (the answer to a
conversation), `rules` (which tool a user text calls), `tool_choice` (honouring
`tool_choice`), `arguments` (tool arguments that satisfy a JSON schema, with `schema` and
`coerce`), `infill` (fill-in-the-middle), `structured` (`response_format`;
`instance_for_schema`, an instance of any JSON schema, built in `instance` with `scalars`).
"""

from __future__ import annotations

from nodes.providers.offline.model import OfflineChatModel
from nodes.providers.offline.reply import NOT_CONFIGURED, offline_reply
from nodes.providers.offline.rules import find_expression, plan_tool_call
from nodes.providers.offline.structured import Hints, instance_for_schema
from nodes.providers.offline.tool_choice import ToolOffer

__all__ = [
    "NOT_CONFIGURED",
    "Hints",
    "OfflineChatModel",
    "ToolOffer",
    "find_expression",
    "instance_for_schema",
    "offline_reply",
    "plan_tool_call",
]
