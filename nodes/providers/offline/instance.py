"""`instance_for_schema`: a JSON value that validates against a schema, filled from hints.

See `nodes.providers.offline.structured` for what is filled from where and which keywords
are understood.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nodes.providers.offline.coerce import number_of
from nodes.providers.offline.scalars import (
    fit_number,
    fits,
    format_value,
    is_number,
    sized_string,
)
from nodes.providers.offline.schema import merge, pointer, without

_MAX_DEPTH = 8
"""Deeper than this, only what the schema requires is filled (recursive schemas end)."""
_GIVE_UP_DEPTH = 32
"""A schema that requires itself forever gets `{}` here."""
_MAX_ITEMS = 1000
"""Most items an array gets, whatever its `minItems`."""
_MAX_VALUES = 20_000
"""Most values built for one instance: a schema with no finite instance (an array that
requires two of itself) ends here, with an answer that does not validate, as none can."""
_UNIQUE_TRIES = 64
"""Variants tried for an item of a `uniqueItems` array that equals an earlier one."""
_MAX_BRANCHES = 64
"""Branches of an `anyOf`/`oneOf` considered (a `oneOf` checks each against the others)."""
_RESOLVE_STEPS = 32
"""Most `$ref`/`allOf` steps followed for one subschema."""


ANSWER_WORDS = frozenset(
    {
        "answer",
        "result",
        "text",
        "content",
        "summary",
        "response",
        "output",
        "message",
        "reply",
        "explanation",
        "reasoning",
        "description",
        "body",
        "completion",
        "solution",
    }
)
"""Words of a field name that mark a field for the model's answer."""
NUMBER_WORDS = ANSWER_WORDS | {"value", "total", "sum", "product", "quotient", "difference"}
"""Words of a numeric field name that mark it for the computed number."""
QUESTION_WORDS = frozenset({"question", "query", "input", "prompt", "request", "topic"})
"""Words of a field name that mark a field for the user's text."""
NAME_WORDS = frozenset({"name", "title", "subject"})
"""Words of a field name that mark a field for a name read from the user's text."""

_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")
"""A number standing alone in the text (a sentence may end right after it)."""
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*")
_NOT_NAMES = frozenset({"What", "Who", "How", "When", "Where", "Why", "Which", "The", "I", "A"})


@dataclass(frozen=True)
class Hints:
    """What the offline model has to fill a schema with."""

    text: str = ""
    """Its ordinary text answer."""
    number: int | float | None = None
    """A number it computed (the calculator's result), if any."""
    question: str = ""
    """The user's latest message."""


def instance_for_schema(schema: Mapping[str, Any] | bool, hints: Hints | None = None) -> Any:
    """A JSON value that validates against `schema`, filled from `hints` where names fit.

    Args:
        schema: A JSON schema (draft 2020-12 or older; `true`/`false` too).
        hints: The answer, computed number and user text to fill fields with.

    Returns:
        The value (dicts, lists, strings, numbers, booleans, None), ready for `json.dumps`.
    """
    return _Builder(schema, hints or Hints()).build(schema, "", 0)


def name_words(name: str) -> set[str]:
    """The lower-case words of a field name (`final_answer`, `finalAnswer`: final, answer)."""
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)}


class _Builder:
    """Builds one instance; numbers of the user's text are used once each."""

    def __init__(self, root: Mapping[str, Any] | bool, hints: Hints) -> None:
        self._root: Mapping[str, Any] = root if isinstance(root, Mapping) else {}
        self._hints = hints
        found = _NUMBER.findall(hints.question[:4000])
        self._numbers: deque[int | float] = deque(number_of(raw) for raw in found)
        self._left = _MAX_VALUES

    def build(self, schema: object, name: str, depth: int, variant: int = 0) -> Any:
        """A value of `schema` for the field `name`; `variant` > 0 asks for a distinct one."""
        self._left -= 1
        if schema is False or depth > _GIVE_UP_DEPTH or self._left < 0:
            return None
        resolved = self._resolve(schema if isinstance(schema, Mapping) else {})
        if "const" in resolved:
            return resolved["const"]
        enum = resolved.get("enum")
        if isinstance(enum, list) and enum:
            return self._enum(enum, resolved, variant)
        for key in ("anyOf", "oneOf"):
            branches = resolved.get(key)
            if isinstance(branches, list) and branches:
                return self._branch(resolved, key, branches, name, depth, variant)
        kind = self._kind(resolved, name)
        if kind == "object" or (kind == "any" and depth == 0):
            return self._object(resolved, depth, variant)
        if kind == "array":
            return self._array(resolved, name, depth, variant)
        if kind in ("integer", "number"):
            return self._number(resolved, name, variant, integer=kind == "integer")
        if kind == "boolean":
            default = resolved.get("default")
            return default if isinstance(default, bool) and not variant else variant % 2 == 1
        if kind == "null":
            return None
        if kind == "any" and _field_words(name) & NUMBER_WORDS and self._hints.number is not None:
            return self._hints.number
        return self._string(resolved, name, variant)

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """The schema with its local `$ref`s followed and its `allOf` merged into it."""
        for _ in range(_RESOLVE_STEPS):
            ref = schema.get("$ref")
            if isinstance(ref, str):
                schema = {**pointer(self._root, ref), **without(schema, "$ref")}
                continue
            parts = schema.get("allOf")
            if isinstance(parts, list) and parts:
                merged: dict[str, Any] = dict(without(schema, "allOf"))
                for part in parts:
                    if isinstance(part, Mapping):
                        merged = merge(merged, part)
                schema = merged
                continue
            return schema
        return without(without(schema, "$ref"), "allOf")

    def _hinted(self, name: str) -> bool:
        """Whether the hints hold a value for a field of this name."""
        words = _field_words(name)
        hints = self._hints
        return bool(
            (words & ANSWER_WORDS and hints.text)
            or (words & QUESTION_WORDS and hints.question)
            or (words & NUMBER_WORDS and hints.number is not None)
        )

    def _branch(
        self,
        schema: Mapping[str, Any],
        key: str,
        branches: list[Any],
        name: str,
        depth: int,
        variant: int,
    ) -> Any:
        """A value of one branch of `anyOf`/`oneOf` (for `oneOf`, one the others reject).

        An optional field (a `null` branch) is null unless the hints fill it.
        """
        base = without(schema, key)
        options = [
            {**base, **self._resolve(b if isinstance(b, Mapping) else {})}
            for b in branches[:_MAX_BRANCHES]
            if b is not False
        ]
        if not options:
            return None
        nulls = [o for o in options if o.get("type") == "null" or o.get("const", 0) is None]
        others = [o for o in options if o not in nulls]
        prefer_null = depth > _MAX_DEPTH or not self._hinted(name)
        ordered = nulls + others if prefer_null else others + nulls
        first: Any = None
        for index, option in enumerate(ordered):
            value = self.build(option, name, depth, variant)
            if index == 0:
                first = value
            rivals = [o for o in options if o is not option]
            if key == "anyOf" or not any(fits(value, rival) for rival in rivals):
                return value
            if is_number(value) and option.get("type") == "number":  # not an integer branch's
                value = fit_number(value + 0.5, option, integer=False)
                if fits(value, option) and not any(fits(value, rival) for rival in rivals):
                    return value
        return first

    def _kind(self, schema: Mapping[str, Any], name: str) -> str:
        """The type to build: the declared one (from a list, what the hints fill), or a guess."""
        kind = schema.get("type")
        if isinstance(kind, str):
            return kind
        if isinstance(kind, list) and kind:
            kinds = [k for k in kind if isinstance(k, str)]
            usable = [k for k in kinds if k != "null"]
            words = _field_words(name)
            if words & NUMBER_WORDS and self._hints.number is not None:
                numeric = [k for k in usable if k in ("number", "integer")]
                usable = numeric or usable
            if words & ANSWER_WORDS and "string" in usable:
                return "string"
            return (usable or kinds or ["any"])[0]
        keys = set(schema)
        if keys & {"properties", "required", "additionalProperties", "minProperties"}:
            return "object"
        if keys & {"items", "prefixItems", "minItems", "maxItems", "uniqueItems"}:
            return "array"
        if keys & {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}:
            return "number"
        if keys & {"minLength", "maxLength", "format", "pattern"}:
            return "string"
        return "any"

    def _enum(self, enum: list[Any], schema: Mapping[str, Any], variant: int) -> Any:
        """The member the answer or the question names, else the default, else the first."""
        if variant:
            return enum[variant % len(enum)]
        said = f"{self._hints.text}\n{self._hints.question}"[:8000].lower()
        for member in enum:
            if isinstance(member, str) and member and _has_word(said, member.lower()):
                return member
        default = schema.get("default", enum[0])
        return default if default in enum else enum[0]

    def _object(self, schema: Mapping[str, Any], depth: int, variant: int) -> dict[str, Any]:
        raw = schema.get("properties")
        properties: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        required = [n for n in schema.get("required") or [] if isinstance(n, str)]
        extra = schema.get("additionalProperties", True)
        extra_schema = extra if isinstance(extra, Mapping) else {}
        deep = depth > _MAX_DEPTH
        claimant = self._number_claimant(properties)
        out: dict[str, Any] = {}
        for prop, sub in properties.items():
            if prop in required or (not deep and self._hinted(prop)) or prop == claimant:
                hint_name = "result" if prop == claimant else prop
                out[prop] = self.build(sub, hint_name, depth + 1, variant)
        for prop in required:
            if prop not in out:
                out[prop] = self.build(extra_schema, prop, depth + 1, variant)
        least = schema.get("minProperties")
        least = least if isinstance(least, int) else 0
        if depth == 0 and not properties and not required and extra is not False:
            least = max(least, 1)  # a free-form answer: {"answer": ...}
        for prop, sub in properties.items():
            if len(out) >= least:
                break
            out.setdefault(prop, self.build(sub, prop, depth + 1, variant))
        number = 0
        while len(out) < least and extra is not False and number < _MAX_ITEMS:
            key = "answer" if number == 0 else f"field_{number}"
            number += 1
            if key not in out and key not in properties:
                out[key] = self.build(extra_schema, key, depth + 1, variant)
        most = schema.get("maxProperties")
        if isinstance(most, int):
            for prop in [p for p in reversed(out) if p not in required][: max(len(out) - most, 0)]:
                del out[prop]
        return out

    def _number_claimant(self, properties: Mapping[str, Any]) -> str | None:
        """The field that gets the computed number when no numeric field is named for it."""
        if self._hints.number is None:
            return None
        numeric = [
            prop
            for prop, sub in properties.items()
            if isinstance(sub, Mapping) and self._resolve(sub).get("type") in ("number", "integer")
        ]
        if not numeric or any(_field_words(prop) & NUMBER_WORDS for prop in numeric):
            return None
        return numeric[0]

    def _array(self, schema: Mapping[str, Any], name: str, depth: int, variant: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(items, list):  # draft 4-2019: `items` as a list is a tuple
            prefix, items = items, schema.get("additionalItems", True)
        prefix = prefix if isinstance(prefix, list) else []
        least = schema.get("minItems")
        least = least if isinstance(least, int) and least > 0 else 0
        count = least if depth > _MAX_DEPTH else max(least, 1)
        most = schema.get("maxItems")
        if isinstance(most, int):
            count = min(count, max(most, 0))
        if items is False:
            count = min(count, len(prefix))
        count = min(count, _MAX_ITEMS)
        unique = schema.get("uniqueItems") is True
        rest = items if isinstance(items, Mapping) else {}
        values: list[Any] = []
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else rest
            value = self.build(sub, name, depth + 1, variant)
            again = 1
            while unique and again <= _UNIQUE_TRIES and self._left > 0 and value in values:
                value = self.build(sub, name, depth + 1, variant + again)
                again += 1
            values.append(value)
        return values

    def _number(
        self, schema: Mapping[str, Any], name: str, variant: int, *, integer: bool
    ) -> int | float:
        computed = self._hints.number
        value: float | None = None
        if _field_words(name) & NUMBER_WORDS and computed is not None:
            value = computed
        elif self._numbers:
            value = self._numbers.popleft()
        elif computed is not None:
            value = computed
        default = schema.get("default")
        if value is None and is_number(default) and fits(default, schema):
            value = default
        fitted = fit_number(value if value is not None else 0, schema, integer=integer)
        if not variant:
            return fitted
        step = schema.get("multipleOf")
        nudge = step if is_number(step) and step > 0 else 1
        other = fit_number(fitted + variant * nudge, schema, integer=integer)
        if not fits(other, schema) or other == fitted:
            other = fit_number(fitted - variant * nudge, schema, integer=integer)
        return other

    def _string(self, schema: Mapping[str, Any], name: str, variant: int) -> str:
        hinted = self._string_hint(name)
        value = format_value(schema, hinted or self._hints.question, variant)
        if value is not None:
            return value
        default = schema.get("default")
        if hinted is not None:
            value = hinted
        elif isinstance(default, str) and fits(default, schema):
            value = default
        else:
            value = _first_sentence(self._hints.text) or name or "text"
        suffix = f" {variant + 1}" if variant else ""
        longest = schema.get("maxLength")
        if suffix and isinstance(longest, int) and longest >= len(suffix):
            value = value[: longest - len(suffix)]
        return sized_string(value + suffix, schema)

    def _string_hint(self, name: str) -> str | None:
        words = _field_words(name)
        if not name or words & ANSWER_WORDS:
            return self._hints.text
        if words & QUESTION_WORDS:
            return self._hints.question
        if words & NAME_WORDS:
            names = [n for n in _NAME.findall(self._hints.question[:4000]) if n not in _NOT_NAMES]
            return names[0] if names else None
        return None


def _field_words(name: str) -> set[str]:
    """The words of a field name; the schema's root (no name) is the answer itself."""
    return name_words(name) if name else {"answer"}


def _first_sentence(text: str) -> str:
    """The text up to its first sentence end, at most 200 characters."""
    found = re.match(r"[^.!?\n]{1,200}[.!?]?", text.strip())
    return found.group().strip() if found else ""


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None
