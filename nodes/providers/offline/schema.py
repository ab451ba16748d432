"""Reading the subset of JSON Schema that tool definitions use (types, bounds, `$ref`s)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def property_names(schema: Mapping[str, Any]) -> set[str]:
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


def pointer(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    """The part of the schema a local `$ref` (`#/$defs/Name`) points at; {} otherwise."""
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in (p for p in ref[1:].split("/") if p):
        key = part.replace("~1", "/").replace("~0", "~")
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def without(schema: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The schema without `key`."""
    return {k: v for k, v in schema.items() if k != key}


def nonempty_list(value: object) -> bool:
    """Whether `value` is a list with at least one item."""
    return isinstance(value, list) and bool(value)


def merge(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """Two `allOf` parts as one schema: properties and `required` are united."""
    merged = {**left, **right}
    if isinstance(left.get("properties"), Mapping) and isinstance(right.get("properties"), Mapping):
        merged["properties"] = {**left["properties"], **right["properties"]}
    required = [*(left.get("required") or []), *(right.get("required") or [])]
    if required:
        merged["required"] = list(dict.fromkeys(required))
    return merged


def type_of(schema: Mapping[str, Any]) -> str:
    """The schema's one type: the first non-null of a list, else guessed from its keys."""
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


def bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[float | None, float | None]:
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
