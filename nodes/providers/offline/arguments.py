"""Tool-call arguments that satisfy a tool's JSON schema, read from the user's text if it can.

The offline model has no language understanding, yet a client that forces one of its tools
(`tool_choice`) expects a call whose arguments it can parse and validate: every required
property present, of the declared type, inside the declared bounds. `arguments_for` builds
such arguments, preferring in order what the caller already has (for instance `key=value`
pairs a rule found), `key=value` or `key: value` in the text, what the text plainly holds
(a number, an enum member, an e-mail address, a place after "in"), the schema's `default`,
and finally a typed placeholder (`0`, `false`, the minimum, the first enum member, the text
itself).

Only the subset of JSON Schema that tool definitions use is understood: `type` (also as a
list), `properties`/`required`/`additionalProperties`, `items`/`minItems`, `enum`,
`const`, `default`, numeric bounds, string lengths and common `format`s, local `$ref`s and
the first usable branch of `anyOf`/`oneOf`/`allOf`. `pattern` is not attempted: running a
client's regular expression over user text could take unbounded time.

The schema walking lives in `schema`, reading a value as a schema's type in `coerce`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from nodes.providers.offline.coerce import MISSING, NUMBER, coerce, number_of
from nodes.providers.offline.schema import (
    bounds,
    merge,
    nonempty_list,
    pointer,
    property_names,
    type_of,
    without,
)

_MAX_DEPTH = 8
"""Deepest nesting filled; self-referencing schemas stop here."""
_MAX_ITEMS = 16
"""Most items put in an array to reach its `minItems`."""
_SCAN_CHARS = 4000
"""Only the start of a long text is searched for values: some searches grow with its square."""

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s<>\"']+")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_PLACE = re.compile(
    r"\b(?i:in|at|for|near|to|from)\s+((?:[A-Z][\w'.-]*)(?:\s+(?:[A-Z][\w'.-]*|de|del|la|le))*)"
)
_PLACE_WORDS = frozenset(
    {"city", "location", "place", "country", "town", "region", "destination", "where", "area"}
)

_TRAILING = "?!.,;:"


def arguments_for(
    parameters: Mapping[str, Any] | None, text: str, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Arguments for a tool whose `parameters` schema is given, for this user text.

    Args:
        parameters: The tool's JSON schema (OpenAI's `function.parameters`); None or a
            schema without `properties` keeps `given` as it is.
        text: The user's message, the source of the values.
        given: Arguments found already; kept where they fit the schema.

    Returns:
        The arguments: the required properties, plus those given or named in the text.
    """
    given = dict(given or {})
    if not isinstance(parameters, Mapping) or not isinstance(parameters.get("properties"), Mapping):
        return given
    return _Filler(parameters, text).object(parameters, given, depth=0)


class _Filler:
    """Fills one schema from one text; numbers in the text are used once each."""

    def __init__(self, root: Mapping[str, Any], text: str) -> None:
        self._root = root
        self._explicit, free = _explicit_pairs(text, property_names(root))
        self._text = free.strip().rstrip(_TRAILING).strip()
        self._scan = self._text[:_SCAN_CHARS]
        self._numbers: list[str] = NUMBER.findall(self._scan)

    def object(
        self, schema: Mapping[str, Any], given: Mapping[str, Any], depth: int
    ) -> dict[str, Any]:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return dict(given)
        required = [n for n in schema.get("required") or [] if isinstance(n, str)]
        result: dict[str, Any] = {}
        for name, raw in properties.items():
            sub = self._resolve(raw)
            value = given.get(name, MISSING)
            if value is not MISSING:
                value = coerce(value, sub)
            if value is MISSING and name in self._explicit:
                value = coerce(self._explicit[name], sub)
            if value is MISSING and name not in required:
                continue
            if value is MISSING:
                value = self.value(sub, name, depth + 1)
            result[name] = value
        if schema.get("additionalProperties") is not False:
            result.update({k: v for k, v in given.items() if k not in properties})
        return result

    def value(self, schema: Mapping[str, Any], name: str, depth: int) -> Any:
        """A value of this schema for the property `name`."""
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._enum(enum, schema)
        kind = type_of(schema)
        if kind == "object":
            if depth > _MAX_DEPTH:
                return {}
            return self.object(schema, {}, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind in ("integer", "number"):
            return self._number(schema, integer=kind == "integer")
        if kind == "boolean":
            default = schema.get("default")
            return default if isinstance(default, bool) else False
        if kind == "null":
            return None
        return self._string(schema, name)

    def _resolve(self, schema: Any, budget: int = _MAX_DEPTH) -> Mapping[str, Any]:
        """Follow local `$ref`s and merge in the first usable branch of a combination.

        `budget` bounds the steps, so a schema that refers to itself cannot loop.
        """
        for _ in range(max(budget, 0)):
            if not isinstance(schema, Mapping):
                return {}
            ref = schema.get("$ref")
            if isinstance(ref, str):
                schema = {**pointer(self._root, ref), **without(schema, "$ref")}
                continue
            combined = next((k for k in ("anyOf", "oneOf") if nonempty_list(schema.get(k))), None)
            if combined is not None:
                options = schema[combined]
                usable = [
                    option
                    for option in options
                    if type_of(self._resolve(option, budget - 1)) != "null"
                ]
                schema = {**without(schema, combined), **(usable or options)[0]}
                continue
            if nonempty_list(schema.get("allOf")):
                merged: dict[str, Any] = dict(without(schema, "allOf"))
                for part in schema["allOf"]:
                    merged = merge(merged, self._resolve(part, budget - 1))
                schema = merged
                continue
            return schema
        return {}

    def _enum(self, enum: list[Any], schema: Mapping[str, Any]) -> Any:
        lowered = self._scan.lower()
        for member in enum:
            if isinstance(member, str) and member and _has_word(lowered, member.lower()):
                return member
        for member in enum:
            if not isinstance(member, str) and str(member) in self._numbers:
                return member
        default = schema.get("default", MISSING)
        return default if default in enum else enum[0]

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        default = schema.get("default")
        if isinstance(default, list):
            return default
        wanted = schema.get("minItems")
        count = min(wanted, _MAX_ITEMS) if isinstance(wanted, int) and wanted > 0 else 0
        if count == 0 or depth > _MAX_DEPTH:
            return []
        items = self._resolve(schema.get("items") or {})
        return [self.value(items, name, depth + 1) for _ in range(count)]

    def _number(self, schema: Mapping[str, Any], *, integer: bool) -> int | float:
        low, high = bounds(schema, integer=integer)
        value: int | float | None = None
        for index, raw in enumerate(self._numbers):
            if integer and not re.fullmatch(r"-?\d+", raw):
                continue
            value = int(raw) if integer else number_of(raw)
            del self._numbers[index]
            break
        if value is None:
            default = schema.get("default")
            if isinstance(default, int | float) and not isinstance(default, bool):
                value = default
            else:
                value = low if low is not None and low > 0 else 0
        if low is not None and value < low:
            value = low
        if high is not None and value > high:
            value = high
        return int(value) if integer else value

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        value = self._string_from_text(schema, name)
        if value is None:
            default = schema.get("default")
            value = default if isinstance(default, str) else self._text
        longest = schema.get("maxLength")
        if isinstance(longest, int) and longest >= 0:
            value = value[:longest].rstrip()
        shortest = schema.get("minLength")
        if isinstance(shortest, int) and len(value) < shortest:
            value = value + "x" * (shortest - len(value))
        return value

    def _string_from_text(self, schema: Mapping[str, Any], name: str) -> str | None:
        """A string the text plainly holds for this format or property, if any."""
        found: re.Match[str] | None
        match schema.get("format"):
            case "email":
                found = _EMAIL.search(self._scan)
                return found.group() if found else "user@example.com"
            case "uri" | "url" | "iri":
                found = _URL.search(self._scan)
                return found.group().rstrip(_TRAILING) if found else "https://example.com"
            case "date":
                found = _DATE.search(self._scan)
                return found.group() if found else dt.datetime.now(dt.UTC).date().isoformat()
            case "date-time":
                return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
            case "time":
                return dt.datetime.now(dt.UTC).time().replace(microsecond=0).isoformat()
            case "uuid":
                return "00000000-0000-0000-0000-000000000000"
        words = set(re.findall(r"[a-z]+", f"{name} {schema.get('description') or ''}".lower()))
        if words & _PLACE_WORDS:
            place = _PLACE.search(self._scan)
            if place:
                return place.group(1).rstrip(_TRAILING)
        return None


def _explicit_pairs(text: str, names: set[str]) -> tuple[dict[str, str], str]:
    """`name=value` / `name: value` pairs for known names, and the text without them."""
    if not names:
        return {}, text
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pair = re.compile(
        rf"(?<![\w-])({alternatives})\s*[:=]\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s,;]+))",
        re.IGNORECASE,
    )
    by_lower = {n.lower(): n for n in names}
    found: dict[str, str] = {}
    for match in pair.finditer(text):
        key, double, single, bare = match.groups()
        value = bare.rstrip(_TRAILING) if bare is not None else (double or single or "")
        found.setdefault(by_lower.get(key.lower(), key), value)
    return found, pair.sub(" ", text)


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None
