"""Reading a value (from the caller or the text) as a schema's type, within its bounds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nodes.providers.offline.schema import bounds, type_of

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
"""A number standing alone in the text (not part of a word, a version or a decimal)."""

_TRUE = frozenset({"true", "yes", "on", "1", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "n"})

MISSING = object()
"""No value: not given, or not readable as the schema's type."""


def number_of(raw: str) -> int | float:
    """The number `raw` spells: an int when it has no decimals."""
    return int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)


def coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` as the schema's type when it can be read so, else MISSING."""
    enum = schema.get("enum")
    if "const" in schema:
        return value if value == schema["const"] else MISSING
    kind = type_of(schema)
    converted = _convert(value, kind)
    if converted is MISSING and isinstance(schema.get("type"), list):
        for other in schema["type"]:
            converted = _convert(value, other)
            if converted is not MISSING:
                break
    if isinstance(enum, list) and enum:
        if converted in enum:
            return converted
        lowered = {str(m).lower(): m for m in enum}
        return lowered.get(str(value).lower(), MISSING)
    if converted is MISSING or not _within(converted, schema, kind):
        return MISSING
    return converted


def _convert(value: Any, kind: str) -> Any:
    match kind:
        case "string":
            return value if isinstance(value, str) else MISSING
        case "integer":
            if isinstance(value, bool):
                return MISSING
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
                return int(value)
            return MISSING
        case "number":
            if isinstance(value, bool):
                return MISSING
            if isinstance(value, int | float):
                return value
            if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
                return number_of(value.strip())
            return MISSING
        case "boolean":
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            return True if word in _TRUE else False if word in _FALSE else MISSING
        case "null":
            return None if value is None or str(value).lower() in ("null", "none") else MISSING
        case "array":
            return value if isinstance(value, list) else MISSING
        case "object":
            return value if isinstance(value, dict) else MISSING
    return MISSING


def _within(value: Any, schema: Mapping[str, Any], kind: str) -> bool:
    if kind in ("integer", "number"):
        low, high = bounds(schema, integer=kind == "integer")
        return (low is None or value >= low) and (high is None or value <= high)
    if kind == "string":
        longest, shortest = schema.get("maxLength"), schema.get("minLength")
        return not (isinstance(longest, int) and len(value) > longest) and not (
            isinstance(shortest, int) and len(value) < shortest
        )
    return True
