"""Tool arguments that satisfy a JSON schema, read from the user's text where it can."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from nodes.providers.offline.arguments import arguments_for


def obj(required: list[str] | None = None, **properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def test_explicit_values_are_coerced_to_the_declared_types() -> None:
    schema = obj(
        count={"type": "integer"},
        ratio={"type": "number"},
        loud={"type": "boolean"},
        name={"type": "string"},
    )
    given = {"count": "3", "ratio": 1, "loud": "yes", "name": "Ann Lee"}

    assert arguments_for(schema, "whatever", given) == {
        "count": 3,
        "ratio": 1,
        "loud": True,
        "name": "Ann Lee",
    }


def test_key_value_pairs_in_the_text_fill_properties() -> None:
    schema = obj(city={"type": "string"}, days={"type": "integer"})
    assert arguments_for(schema, "forecast city: Lyon, days=3 please") == {
        "city": "Lyon",
        "days": 3,
    }


def test_a_given_value_that_does_not_fit_is_replaced() -> None:
    schema = obj(level={"type": "string", "enum": ["low", "high"]}, n={"type": "integer"})
    assert arguments_for(schema, "set it HIGH with 7", {"level": "max", "n": "many"}) == {
        "level": "high",
        "n": 7,
    }


def test_numbers_come_from_the_text_in_order_and_stay_in_bounds() -> None:
    schema = obj(
        adults={"type": "integer", "minimum": 1},
        children={"type": "integer", "maximum": 3},
        budget={"type": "number", "exclusiveMinimum": 0},
    )
    assert arguments_for(schema, "2 adults and 5 children, 99.5 euros") == {
        "adults": 2,
        "children": 3,
        "budget": 99.5,
    }
    empty = arguments_for(schema, "no numbers here")
    assert empty["adults"] == 1
    assert empty["children"] == 0
    assert empty["budget"] > 0
    draft4 = obj(x={"type": "number", "minimum": 0, "exclusiveMinimum": True})
    assert arguments_for(draft4, "none")["x"] > 0


def test_defaults_are_used_when_the_text_says_nothing() -> None:
    schema = obj(
        unit={"type": "string", "enum": ["c", "f"], "default": "f"},
        limit={"type": "integer", "default": 10},
        verbose={"type": "boolean", "default": True},
    )
    assert arguments_for(schema, "hello") == {"unit": "f", "limit": 10, "verbose": True}


def test_only_required_properties_are_filled_unless_the_text_names_one() -> None:
    schema = obj(["query"], query={"type": "string"}, page={"type": "integer"})
    assert arguments_for(schema, "Cheap flights to Rome?") == {"query": "Cheap flights to Rome"}
    assert arguments_for(schema, "Cheap flights page=2") == {"query": "Cheap flights", "page": 2}


def test_places_are_read_after_a_preposition() -> None:
    schema = obj(location={"type": "string", "description": "City name"})
    assert arguments_for(schema, "What's the weather like in San Francisco today?") == {
        "location": "San Francisco"
    }


def test_string_formats_and_lengths_are_respected() -> None:
    schema = obj(
        to={"type": "string", "format": "email"},
        day={"type": "string", "format": "date"},
        link={"type": "string", "format": "uri"},
        code={"type": "string", "minLength": 3, "maxLength": 5},
    )
    args = arguments_for(schema, "Mail ann@example.org about it")
    assert args["to"] == "ann@example.org"
    assert dt.date.fromisoformat(args["day"])
    assert args["link"].startswith("https://")
    assert 3 <= len(args["code"]) <= 5


def test_nested_objects_references_and_arrays() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Address": obj(street={"type": "string"}, zip={"type": "integer"}),
            "Tag": {"type": "string", "enum": ["red", "blue"]},
        },
        "properties": {
            "address": {"$ref": "#/$defs/Address"},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 2},
            "extras": {"type": "array", "items": {"type": "string"}},
            "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "rank": {"type": ["null", "integer"]},
            "kind": {"const": "order"},
        },
        "required": ["address", "tags", "extras", "note", "rank", "kind"],
    }

    args = arguments_for(schema, "ship blue to 12 Main St")

    assert args["address"] == {"street": "ship blue to 12 Main St", "zip": 12}
    assert args["tags"] == ["blue", "blue"]
    assert args["extras"] == []
    assert args["note"] == "ship blue to 12 Main St"
    assert isinstance(args["rank"], int)
    assert args["kind"] == "order"


def test_unknown_arguments_are_dropped_when_the_schema_forbids_them() -> None:
    closed = {**obj(a={"type": "integer"}), "additionalProperties": False}
    assert arguments_for(closed, "1", {"a": 1, "b": 2}) == {"a": 1}
    assert arguments_for(obj(a={"type": "integer"}), "1", {"a": 1, "b": 2}) == {"a": 1, "b": 2}


@pytest.mark.parametrize("schema", [None, {}, {"type": "object"}, {"properties": "bad"}])
def test_missing_or_odd_schemas_keep_what_was_given(schema: Any) -> None:
    assert arguments_for(schema, "text", {"x": 1}) == {"x": 1}


def test_a_self_referencing_schema_ends() -> None:
    schema = {
        "type": "object",
        "$defs": {"Node": obj(child={"$ref": "#/$defs/Node"})},
        "properties": {"root": {"$ref": "#/$defs/Node"}},
        "required": ["root"],
    }
    args = arguments_for(schema, "tree")
    depth = 0
    node: Any = args["root"]
    while isinstance(node, dict) and "child" in node:
        node = node["child"]
        depth += 1
    assert depth < 20
