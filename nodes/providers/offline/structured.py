"""Structured output of the offline model: JSON that validates against the client's schema.

A client asking for `response_format` `json_schema` (the Responses API's `text.format`)
parses the answer with its schema: the openai SDK's `parse()`, langchain's
`with_structured_output`, pydantic-ai's `NativeOutput`, `llm --schema`. The offline model
understands no language, yet it can fill a schema from what it has: `instance_for_schema`
puts the model's ordinary answer in fields named like `answer`, `result`, `text`,
`content` or `summary`; a number it computed (the calculator's) in numeric answer fields;
the user's text in `question`/`query`/`input` fields, numbers of that text in other numeric
fields, enum members it names; plausible defaults for the rest, within the schema's
constraints.

Understood: `type` (also as a list), `const`, `enum`, `properties`, `required`,
`additionalProperties` (false or a schema), `minProperties`/`maxProperties`, `items`,
`prefixItems`, `minItems`/`maxItems`, `uniqueItems`, local `$ref`s (`$defs`,
`definitions`, `#`), `allOf`, `anyOf`, `oneOf` (a branch the others reject), numeric
bounds (exclusive ones too) and `multipleOf`, string lengths and common `format`s.
Not attempted: `pattern` (running a client's regular expression could take unbounded
time), `not`, `if`/`then`/`else`, `patternProperties`, `propertyNames`, `contains`,
`dependentRequired`. Recursive schemas stop at a depth where only required fields and
`minItems` items are filled; arrays get at most 1000 items.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nodes.providers.offline.instance import Hints, instance_for_schema

__all__ = ["Hints", "instance_for_schema", "prompted_schema", "structured_content"]

_PROMPT_CHARS = 50_000
"""Characters of each prompt text searched for a JSON schema."""
_PROMPT_TRIES = 16
"""`{` positions tried in each prompt text."""


def structured_content(
    response_format: object, hints: Hints, prompt: Sequence[str] = ()
) -> str | None:
    """The JSON text that answers OpenAI's `response_format`; None for plain text.

    `json_schema` gets an instance of its schema. `json_object` gets an instance of the
    schema the prompt shows, if it shows one (pydantic-ai's `PromptedOutput`, langchain's
    `json_mode` put it there), else the text itself when it already is a JSON object, else
    `{"answer": <text>}` (and `"result"`: the computed number).

    Args:
        response_format: OpenAI's `response_format` (anything else: None).
        hints: What to fill the schema with.
        prompt: The texts of the prompt's messages, the latest last.
    """
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    schema: object = None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
    elif kind != "json_object":
        return None
    if not isinstance(schema, Mapping | bool):
        schema = prompted_schema(prompt)
    if isinstance(schema, Mapping | bool):
        return json.dumps(instance_for_schema(schema, hints), ensure_ascii=False)
    try:
        already = json.loads(hints.text)
    except ValueError:
        already = None
    if isinstance(already, dict):
        return hints.text
    answer: dict[str, Any] = {"answer": hints.text}
    if hints.number is not None:
        answer["result"] = hints.number
    return json.dumps(answer, ensure_ascii=False)


def prompted_schema(prompt: Sequence[str]) -> dict[str, Any] | None:
    """The JSON schema a prompt shows (the latest message first), if it shows one.

    Only the start of each text is read, and only a few `{` are tried in each: a prompt
    full of braces costs no more than a short one.
    """
    decoder = json.JSONDecoder()
    for text in reversed(prompt):
        text = text[:_PROMPT_CHARS]
        start = text.find("{")
        tries = 0
        while start >= 0 and tries < _PROMPT_TRIES:
            tries += 1
            try:
                found, end = decoder.raw_decode(text, start)
            except ValueError:
                start = text.find("{", start + 1)
                continue
            if isinstance(found, dict) and _looks_like_schema(found):
                return found
            start = text.find("{", end)
    return None


def _looks_like_schema(found: Mapping[str, Any]) -> bool:
    if isinstance(found.get("properties"), Mapping):
        return True
    return found.get("type") in ("object", "array") and bool(
        set(found) & {"items", "additionalProperties", "$defs", "required"}
    )
