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
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 8
"""Deepest nesting filled; self-referencing schemas stop here."""
_MAX_ITEMS = 16
"""Most items put in an array to reach its `minItems`."""
_SCAN_CHARS = 4000
"""Only the start of a long text is searched for values: some searches grow with its square."""
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s<>\"']+")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_PLACE = re.compile(
    r"\b(?i:in|at|for|near|to|from)\s+((?:[A-Z][\w'.-]*)(?:\s+(?:[A-Z][\w'.-]*|de|del|la|le))*)"
)
_PLACE_WORDS = frozenset(
    {"city", "location", "place", "country", "town", "region", "destination", "where", "area"}
)
_TRUE = frozenset({"true", "yes", "on", "1", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "n"})
_TRAILING = "?!.,;:"
_MISSING = object()


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
        self._explicit, free = _explicit_pairs(text, _property_names(root))
        self._text = free.strip().rstrip(_TRAILING).strip()
        self._scan = self._text[:_SCAN_CHARS]
        self._numbers: list[str] = _NUMBER.findall(self._scan)

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
            value = given.get(name, _MISSING)
            if value is not _MISSING:
                value = _coerce(value, sub)
            if value is _MISSING and name in self._explicit:
                value = _coerce(self._explicit[name], sub)
            if value is _MISSING and name not in required:
                continue
            if value is _MISSING:
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
        kind = _type_of(schema)
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
                schema = {**_pointer(self._root, ref), **_without(schema, "$ref")}
                continue
            combined = next((k for k in ("anyOf", "oneOf") if _nonempty_list(schema.get(k))), None)
            if combined is not None:
                options = schema[combined]
                usable = [
                    option
                    for option in options
                    if _type_of(self._resolve(option, budget - 1)) != "null"
                ]
                schema = {**_without(schema, combined), **(usable or options)[0]}
                continue
            if _nonempty_list(schema.get("allOf")):
                merged: dict[str, Any] = dict(_without(schema, "allOf"))
                for part in schema["allOf"]:
                    merged = _merge(merged, self._resolve(part, budget - 1))
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
        default = schema.get("default", _MISSING)
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
        low, high = _bounds(schema, integer=integer)
        value: int | float | None = None
        for index, raw in enumerate(self._numbers):
            if integer and not re.fullmatch(r"-?\d+", raw):
                continue
            value = int(raw) if integer else _number_of(raw)
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


def _property_names(schema: Mapping[str, Any]) -> set[str]:
    """Every property name anywhere in the schema (for `key: value` in the text)."""
    names: set[str] = set()
    stack: list[Any] = [schema]
    seen = 0
    while stack and seen < 1000:
        seen += 1
        node = stack.pop()
        if isinstance(node, Mapping):
            properties = node.get("properties")
            if isinstance(properties, Mapping):
                names.update(k for k in properties if isinstance(k, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


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


def _pointer(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    """The part of the schema a local `$ref` (`#/$defs/Name`) points at; {} otherwise."""
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in (p for p in ref[1:].split("/") if p):
        key = part.replace("~1", "/").replace("~0", "~")
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _without(schema: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def _nonempty_list(value: object) -> bool:
    return isinstance(value, list) and bool(value)


def _merge(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**left, **right}
    if isinstance(left.get("properties"), Mapping) and isinstance(right.get("properties"), Mapping):
        merged["properties"] = {**left["properties"], **right["properties"]}
    required = [*(left.get("required") or []), *(right.get("required") or [])]
    if required:
        merged["required"] = list(dict.fromkeys(required))
    return merged


def _type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if isinstance(k, str)]
        usable = [k for k in kinds if k != "null"]
        kind = (usable or kinds)[0] if kinds else None
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[float | None, float | None]:
    """The inclusive range of a number schema (exclusive bounds stepped inwards)."""

    def bound(key: str) -> float | None:
        value = schema.get(key)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    low, high = bound("minimum"), bound("maximum")
    step = 1 if integer else 0.5
    exclusive_low, exclusive_high = bound("exclusiveMinimum"), bound("exclusiveMaximum")
    # Draft 4 spelled exclusive bounds as booleans beside minimum/maximum.
    if schema.get("exclusiveMinimum") is True:
        exclusive_low, low = low, None
    if schema.get("exclusiveMaximum") is True:
        exclusive_high, high = high, None
    if exclusive_low is not None:
        low = max(low if low is not None else -math.inf, exclusive_low + step)
    if exclusive_high is not None:
        high = min(high if high is not None else math.inf, exclusive_high - step)
    if integer:
        low = math.ceil(low) if low is not None else None
        high = math.floor(high) if high is not None else None
    return low, high


def _number_of(raw: str) -> int | float:
    return int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None


def _coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` as the schema's type when it can be read so, else _MISSING."""
    enum = schema.get("enum")
    if "const" in schema:
        return value if value == schema["const"] else _MISSING
    kind = _type_of(schema)
    converted = _convert(value, kind)
    if converted is _MISSING and isinstance(schema.get("type"), list):
        for other in schema["type"]:
            converted = _convert(value, other)
            if converted is not _MISSING:
                break
    if isinstance(enum, list) and enum:
        if converted in enum:
            return converted
        lowered = {str(m).lower(): m for m in enum}
        return lowered.get(str(value).lower(), _MISSING)
    if converted is _MISSING or not _within(converted, schema, kind):
        return _MISSING
    return converted


def _convert(value: Any, kind: str) -> Any:
    match kind:
        case "string":
            return value if isinstance(value, str) else _MISSING
        case "integer":
            if isinstance(value, bool):
                return _MISSING
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
                return int(value)
            return _MISSING
        case "number":
            if isinstance(value, bool):
                return _MISSING
            if isinstance(value, int | float):
                return value
            if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
                return _number_of(value.strip())
            return _MISSING
        case "boolean":
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            return True if word in _TRUE else False if word in _FALSE else _MISSING
        case "null":
            return None if value is None or str(value).lower() in ("null", "none") else _MISSING
        case "array":
            return value if isinstance(value, list) else _MISSING
        case "object":
            return value if isinstance(value, dict) else _MISSING
    return _MISSING


def _within(value: Any, schema: Mapping[str, Any], kind: str) -> bool:
    if kind in ("integer", "number"):
        low, high = _bounds(schema, integer=kind == "integer")
        return (low is None or value >= low) and (high is None or value <= high)
    if kind == "string":
        longest, shortest = schema.get("maxLength"), schema.get("minLength")
        return not (isinstance(longest, int) and len(value) > longest) and not (
            isinstance(shortest, int) and len(value) < shortest
        )
    return True
