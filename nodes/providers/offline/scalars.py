"""Scalar values that meet a JSON schema's constraints: numbers, strings, and checking a value.

Helpers of `nodes.providers.offline.structured`: a number moved inside a schema's bounds and
onto its `multipleOf`, a string cut and padded to its lengths, a placeholder for a `format`,
and `fits`, a check of one value against the scalar keywords of a schema (the builder uses it
to pick among candidates, never as a full validator).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

_FORMATS: dict[str, str] = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com",
    "iri": "https://example.com",
    "url": "https://example.com",
    "uri-reference": "https://example.com",
    "iri-reference": "https://example.com",
    "uuid": "00000000-0000-0000-0000-000000000000",
}
"""A fixed value of each string format the builder knows (dates are fixed: replies replay)."""

_FORMAT_SHAPES: dict[str, re.Pattern[str]] = {
    "date-time": re.compile(
        r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"
    ),
    "date": re.compile(r"\d{4}-\d{2}-\d{2}"),
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "uri": re.compile(r"https?://[^\s<>\"']+"),
    "url": re.compile(r"https?://[^\s<>\"']+"),
    "uuid": re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"),
}
"""Formats whose hinted strings are kept when they have the format's shape."""


def is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: an int or a finite float, not a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def format_value(schema: Mapping[str, Any], hinted: str | None, variant: int = 0) -> str | None:
    """A string of the schema's `format`: the hint when it has the shape, else a fixed value.

    `variant` > 0 gives another value of the format (items of a `uniqueItems` array). None
    when the schema names no format the builder knows (any string will then do).
    """
    name = schema.get("format")
    if not isinstance(name, str) or name not in _FORMATS:
        return None
    shape = _FORMAT_SHAPES.get(name)
    if hinted is not None and shape is not None and not variant:
        found = shape.search(hinted)
        if found is not None and (name != "date" or _real_date(found.group())):
            return found.group()
    return _FORMATS[name] if not variant else _format_variant(name, variant)


def _format_variant(name: str, n: int) -> str:
    """The `n`th other value of a format."""
    day = dt.date(2026, 1, 1) + dt.timedelta(days=n % 3_000_000)
    match name:
        case "date-time":
            return f"{day.isoformat()}T00:00:00Z"
        case "date":
            return day.isoformat()
        case "time":
            return f"{n // 3600 % 24:02}:{n // 60 % 60:02}:{n % 60:02}Z"
        case "duration":
            return f"P{n + 1}D"
        case "email" | "idn-email":
            return f"user{n + 1}@example.com"
        case "hostname" | "idn-hostname":
            return f"host{n + 1}.example.com"
        case "ipv4":
            return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        case "ipv6":
            return f"::{n % 65536:x}"
        case "uuid":
            return f"00000000-0000-0000-0000-{n % 16**12:012x}"
    return f"https://example.com/{n}"


def _real_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def sized_string(value: str, schema: Mapping[str, Any]) -> str:
    """`value` cut to `maxLength` and padded to `minLength` (lengths in code points)."""
    longest = schema.get("maxLength")
    shortest = schema.get("minLength")
    if isinstance(longest, int) and longest >= 0 and len(value) > longest:
        value = value[:longest].rstrip()
    if isinstance(shortest, int) and len(value) < shortest:
        value += "x" * (shortest - len(value))
    return value


def _bound(schema: Mapping[str, Any], key: str) -> float | None:
    value = schema.get(key)
    return value if is_number(value) else None


def _limits(schema: Mapping[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """Low bound, whether it is exclusive, high bound, whether it is exclusive."""
    low, high = _bound(schema, "minimum"), _bound(schema, "maximum")
    low_open = high_open = False
    # Draft 4 spelled exclusive bounds as booleans beside minimum/maximum.
    if schema.get("exclusiveMinimum") is True:
        low_open = low is not None
    if schema.get("exclusiveMaximum") is True:
        high_open = high is not None
    exclusive_low = _bound(schema, "exclusiveMinimum")
    if exclusive_low is not None and (low is None or exclusive_low >= low):
        low, low_open = exclusive_low, True
    exclusive_high = _bound(schema, "exclusiveMaximum")
    if exclusive_high is not None and (high is None or exclusive_high <= high):
        high, high_open = exclusive_high, True
    return low, low_open, high, high_open


def _inside(value: float, schema: Mapping[str, Any]) -> bool:
    low, low_open, high, high_open = _limits(schema)
    if low is not None and (value < low or (low_open and value == low)):
        return False
    return not (high is not None and (value > high or (high_open and value == high)))


def _multiple(value: float, step: float) -> bool:
    """Whether `value` is a multiple of `step`, decided as jsonschema decides it."""
    if isinstance(step, float):
        try:
            quotient = value / step
            return int(quotient) == quotient
        except (OverflowError, ValueError):
            return False
    return value % step == 0


def fit_number(value: float, schema: Mapping[str, Any], *, integer: bool) -> int | float:
    """The number nearest `value` that the schema's bounds and `multipleOf` allow.

    An unsatisfiable schema gets the nearest number tried, which then fails validation as
    any answer would.
    """
    if not math.isfinite(value):
        value = 0
    step = schema.get("multipleOf")
    if is_number(step) and step > 0:
        return _fit_multiple(value, step, schema, integer=integer)
    low, low_open, high, high_open = _limits(schema)
    if integer:
        value = round(value)
        if low is not None:
            first = math.floor(low) + 1 if low_open and float(low).is_integer() else math.ceil(low)
            value = max(value, first)
        if high is not None:
            last = (
                math.ceil(high) - 1 if high_open and float(high).is_integer() else math.floor(high)
            )
            value = min(value, last)
        return int(value)
    if low is not None and (value < low or (low_open and value <= low)):
        value = (low + high) / 2 if high_open and high is not None else low + (1 if low_open else 0)
    if high is not None and (value > high or (high_open and value >= high)):
        value = (low + high) / 2 if low is not None and low_open else high - (1 if high_open else 0)
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _fit_multiple(
    value: float, step: float, schema: Mapping[str, Any], *, integer: bool
) -> int | float:
    low, _, high, _ = _limits(schema)
    wanted = round(value / step)
    if low is not None:
        wanted = max(wanted, math.ceil(low / step))
    if high is not None:
        wanted = min(wanted, math.floor(high / step))
    tried: int | float = wanted * step
    for k in sorted(range(wanted - 8, wanted + 9), key=lambda k: (abs(k - wanted), k)):
        candidate: int | float = k * step
        if float(candidate).is_integer() and abs(candidate) < 2**53:
            candidate = int(candidate)
        if integer and not isinstance(candidate, int):
            continue
        if _inside(candidate, schema) and _multiple(candidate, step):
            return candidate
    return tried


def _type_matches(value: object, kind: object) -> bool:
    match kind:
        case "null":
            return value is None
        case "boolean":
            return isinstance(value, bool)
        case "string":
            return isinstance(value, str)
        case "integer":
            return is_number(value) and float(value).is_integer()
        case "number":
            return is_number(value)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
    return True


def fits(value: object, schema: Mapping[str, Any]) -> bool:
    """Whether `value` meets the schema's type, enum, const and scalar constraints.

    Objects are checked for their `required` names and the `const`/`enum` of their
    properties only (enough to tell the branches of a discriminated union apart); arrays
    for their length. True means "no reason found to reject", not "valid".
    """
    if "const" in schema and schema["const"] != value:
        return False
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return False
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    if kinds and not any(_type_matches(value, k) for k in kinds):
        return False
    if is_number(value):
        step = schema.get("multipleOf")
        if is_number(step) and step > 0 and not _multiple(value, step):
            return False
        return _inside(value, schema)
    if isinstance(value, str):
        return sized_string(value, schema) == value
    if isinstance(value, list):
        shortest, longest = schema.get("minItems"), schema.get("maxItems")
        return not (isinstance(shortest, int) and len(value) < shortest) and not (
            isinstance(longest, int) and len(value) > longest
        )
    if isinstance(value, dict):
        return _object_fits(value, schema)
    return True


def _object_fits(value: Mapping[str, Any], schema: Mapping[str, Any]) -> bool:
    required = schema.get("required")
    if isinstance(required, list) and any(name not in value for name in required):
        return False
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return True
    for name, sub in properties.items():
        if name in value and isinstance(sub, Mapping):
            if "const" in sub and sub["const"] != value[name]:
                return False
            enum = sub.get("enum")
            if isinstance(enum, list) and value[name] not in enum:
                return False
    return True
