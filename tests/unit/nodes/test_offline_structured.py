"""`instance_for_schema`: JSON that validates against any schema a client sends, hints used."""

from __future__ import annotations

import datetime as dt
import enum
import json
from typing import Annotated, Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

from nodes.providers.offline.reply import offline_reply
from nodes.providers.offline.structured import (
    Hints,
    instance_for_schema,
    prompted_schema,
    structured_content,
)

HINTS = Hints(text="17 * 23 = 391", number=391, question="What is 17 * 23?")


def check(schema: dict[str, Any] | bool, instance: Any) -> None:
    """`instance` is JSON (no NaN) and valid under `schema`, formats included."""
    json.dumps(instance, allow_nan=False)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(instance)


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    street: str
    city: str = Field(max_length=12)


class Person(BaseModel):
    name: str
    age: Annotated[int, Field(ge=0, le=150)]
    email: str | None = None
    address: Address
    previous: list[Address] = Field(min_length=2, max_length=3)
    favourite: Colour
    kind: Literal["human"] = "human"
    born: dt.datetime
    score: Annotated[float, Field(gt=0, lt=1)]
    tags: Annotated[list[str], Field(max_length=0)] = []


class Cat(BaseModel):
    pet: Literal["cat"]
    lives: int


class Dog(BaseModel):
    pet: Literal["dog"]
    good: bool


class Owner(BaseModel):
    animal: Cat | Dog = Field(discriminator="pet")
    friend: Owner | None = None


class Calculation(BaseModel):
    expression: str
    result: float
    explanation: str


@pytest.mark.parametrize("model", [Person, Owner, Calculation, Address])
def test_pydantic_schemas_loose_and_strict_are_met(model: type[BaseModel]) -> None:
    for schema in (model.model_json_schema(), to_strict_json_schema(model)):
        instance = instance_for_schema(schema, HINTS)
        check(schema, instance)
        model.model_validate_json(json.dumps(instance))


def test_answer_fields_get_the_answer_and_numeric_ones_the_computed_number() -> None:
    instance = instance_for_schema(to_strict_json_schema(Calculation), HINTS)
    assert instance["result"] == 391
    assert instance["explanation"] == "17 * 23 = 391"


def test_numbers_of_the_question_fill_other_numeric_fields_in_order() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "integer"},
            "product": {"type": "integer"},
        },
        "required": ["a", "b", "product"],
        "additionalProperties": False,
    }
    assert instance_for_schema(schema, HINTS) == {"a": 17, "b": 23, "product": 391}


def test_a_lone_numeric_field_gets_the_computed_number_whatever_its_name() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    assert instance_for_schema(schema, HINTS) == {"x": 391}


def test_names_questions_and_enum_members_are_read_from_the_text() -> None:
    hints = Hints(text="I cannot tell.", question="John Doe is 30 and likes green")
    instance = instance_for_schema(to_strict_json_schema(Person), hints)
    assert (instance["name"], instance["age"], instance["favourite"]) == ("John Doe", 30, "green")
    schema = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}
    assert instance_for_schema(schema, hints) == {"query": "John Doe is 30 and likes green"}


def test_optional_fields_are_null_unless_the_hints_fill_them() -> None:
    schema = to_strict_json_schema(Owner)
    instance = instance_for_schema(schema, HINTS)
    assert instance["friend"] is None
    optional_answer = {
        "type": "object",
        "properties": {"answer": {"anyOf": [{"type": "null"}, {"type": "string"}]}},
        "required": ["answer"],
    }
    assert instance_for_schema(optional_answer, HINTS) == {"answer": "17 * 23 = 391"}


def test_one_of_picks_a_branch_the_others_reject() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": -5}]}
    value = instance_for_schema(schema, Hints())
    check(schema, value)


def test_unique_items_differ_and_bounds_hold() -> None:
    schema = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 10, "multipleOf": 2},
        "minItems": 4,
        "uniqueItems": True,
    }
    value = instance_for_schema(schema, Hints())
    check(schema, value)
    assert len(value) == 4


def test_recursive_schemas_end() -> None:
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/$defs/node"}, "label": {"type": "string"}},
                "required": ["child", "label"],
            }
        },
        "anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}],
    }
    required_forever = {"$ref": "#/$defs/node", "$defs": schema["$defs"]}
    assert isinstance(instance_for_schema(required_forever, Hints()), dict)
    self_ref = {"properties": {"next": {"$ref": "#"}}}
    check(self_ref, instance_for_schema(self_ref, HINTS))


def test_a_huge_min_items_is_capped() -> None:
    assert len(instance_for_schema({"type": "array", "minItems": 10**9}, Hints())) == 1000


def test_a_schema_without_a_finite_instance_ends() -> None:
    endless = {"type": "array", "items": {"$ref": "#"}, "minItems": 2}
    assert isinstance(instance_for_schema(endless, Hints()), list)


def test_json_object_and_json_schema_formats() -> None:
    assert json.loads(structured_content({"type": "json_object"}, HINTS) or "") == {
        "answer": "17 * 23 = 391",
        "result": 391,
    }
    already = Hints(text='{"title": "Chat"}')
    assert structured_content({"type": "json_object"}, already) == '{"title": "Chat"}'
    schema_format = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "integer"}},
    }
    assert structured_content(schema_format, HINTS) == "391"
    no_schema = {"type": "json_schema", "json_schema": {"name": "x"}}
    assert json.loads(structured_content(no_schema, Hints(text="hi")) or "") == {"answer": "hi"}
    assert structured_content({"type": "text"}, HINTS) is None
    assert structured_content(None, HINTS) is None


def test_json_object_fills_the_schema_the_prompt_shows() -> None:
    schema = to_strict_json_schema(Calculation)
    prompt = [
        f"Always respond with JSON compatible with this schema:\n\n{json.dumps(schema)}",
        "17*23?",
    ]
    answer = json.loads(structured_content({"type": "json_object"}, HINTS, prompt) or "")
    assert Calculation.model_validate(answer).result == 391
    braces = ["{" * 100_000 + '{"type": "object"}']
    assert prompted_schema(braces) is None


# --- property: any generated schema gets a valid instance --------------------------------

NAMES = st.sampled_from(["answer", "result", "query", "name", "count", "x", "items", "when"])
BOUND = st.integers(min_value=-1000, max_value=1000)


@st.composite
def integers(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": draw(st.sampled_from(["integer", "number"]))}
    low = draw(BOUND)
    width = draw(st.integers(min_value=12, max_value=500))
    if draw(st.booleans()):
        schema[draw(st.sampled_from(["minimum", "exclusiveMinimum"]))] = low
    if draw(st.booleans()):
        schema[draw(st.sampled_from(["maximum", "exclusiveMaximum"]))] = low + width
    if draw(st.booleans()):
        schema["multipleOf"] = draw(st.sampled_from([2, 3, 5, 0.5, 0.25]))
    return schema


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if draw(st.booleans()):
        return {**schema, "format": draw(st.sampled_from(["date-time", "date", "email", "uuid"]))}
    shortest = draw(st.integers(min_value=0, max_value=30))
    if draw(st.booleans()):
        schema["minLength"] = shortest
    if draw(st.booleans()):
        schema["maxLength"] = shortest + draw(st.integers(min_value=0, max_value=30))
    return schema


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
LEAVES = st.one_of(
    integers(),
    strings(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.just({}),
    st.lists(JSON_SCALARS, min_size=1, max_size=4, unique=True).map(lambda e: {"enum": e}),
    JSON_SCALARS.map(lambda c: {"const": c}),
)


def objects(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(NAMES, children, max_size=4))
        required = [name for name in properties if draw(st.booleans())]
        schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
        schema["additionalProperties"] = draw(st.sampled_from([False, True, {"type": "integer"}]))
        if draw(st.booleans()):
            schema["minProperties"] = draw(st.integers(min_value=0, max_value=len(properties)))
        return schema

    return build()


def arrays(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        unique = draw(st.booleans())
        items = draw(st.one_of(strings(), integers()) if unique else children)
        least = draw(st.integers(min_value=0, max_value=4 if unique else 6))
        schema: dict[str, Any] = {"type": "array", "items": items, "minItems": least}
        if unique:
            schema["uniqueItems"] = True
            if "maxLength" in items:  # room for distinct strings
                items["maxLength"] = max(items["maxLength"], 4)
        if draw(st.booleans()):
            schema["maxItems"] = least + draw(st.integers(min_value=0, max_value=3))
        return schema

    return build()


def all_of(pair: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    """Two object schemas as `allOf` parts that can both hold (no name in both)."""
    first, second = ({**o, "additionalProperties": True} for o in pair)
    second["properties"] = {
        k: v for k, v in second["properties"].items() if k not in first["properties"]
    }
    second["required"] = [k for k in second["required"] if k in second["properties"]]
    second.pop("minProperties", None)
    return {"allOf": [first, second]}


def combinations(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        children.map(lambda s: {"anyOf": [s, {"type": "null"}]}),
        st.tuples(children, children).map(lambda pair: {"anyOf": list(pair)}),
        st.tuples(strings(), st.just({"type": "boolean"})).map(lambda p: {"oneOf": list(p)}),
        st.tuples(objects(children), objects(children)).map(all_of),
        children.map(lambda s: {"$ref": "#/$defs/shared", "description": "via $defs"}),
    )


SCHEMAS = st.recursive(
    LEAVES,
    lambda children: st.one_of(objects(children), arrays(children), combinations(children)),
    max_leaves=12,
)
SHARED = st.recursive(
    LEAVES, lambda children: st.one_of(objects(children), arrays(children)), max_leaves=6
)
"""What `#/$defs/shared` holds: no `$ref` to itself, so every schema has an instance."""
HINT_VALUES = st.builds(
    Hints,
    text=st.text(max_size=40),
    number=st.one_of(st.none(), st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6)),
    question=st.text(max_size=40),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=SCHEMAS, shared=SHARED, hints=HINT_VALUES)
def test_every_generated_schema_gets_a_valid_instance(
    schema: dict[str, Any], shared: dict[str, Any], hints: Hints
) -> None:
    root = {**schema, "$defs": {"shared": shared}}
    check(root, instance_for_schema(root, hints))


# --- the offline model's reply ------------------------------------------------------------


def test_the_reply_after_a_calculator_result_is_the_schema_instance() -> None:
    schema = to_strict_json_schema(Calculation)
    response_format = {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}
    call = AIMessage(
        content="",
        tool_calls=[{"name": "calculator", "args": {"expression": "17 * 23"}, "id": "1"}],
    )
    messages = [
        HumanMessage("What is 17 * 23?"),
        call,
        ToolMessage("391", tool_call_id="1", name="calculator"),
    ]

    reply = offline_reply(messages, ["calculator"], response_format=response_format)

    assert Calculation.model_validate_json(str(reply.content)).result == 391
    assert reply.response_metadata["finish_reason"] == "stop"


def test_a_tool_call_is_not_turned_into_json() -> None:
    reply = offline_reply(
        [HumanMessage("What is 17 * 23?")],
        ["calculator"],
        response_format={"type": "json_object"},
    )
    assert reply.tool_calls[0]["name"] == "calculator"
    assert reply.content == ""


def test_the_image_note_stays_inside_the_json() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    reply = offline_reply(
        [HumanMessage([{"type": "text", "text": "What is this?"}, image])],
        [],
        response_format={"type": "json_object"},
    )
    assert "can't see images" in json.loads(str(reply.content))["answer"]


def test_hostile_schemas_cost_bounded_work() -> None:
    many = {"oneOf": [{"type": "object", "required": [f"k{i}"]} for i in range(10_000)]}
    assert isinstance(instance_for_schema(many, Hints()), dict)
    same = {"type": "array", "items": {"const": 1}, "minItems": 1000, "uniqueItems": True}
    assert len(instance_for_schema(same, Hints())) == 1000  # no instance exists: ends anyway
    wide = {"type": "array", "minItems": 50, "items": {"$ref": "#"}}
    assert isinstance(instance_for_schema(wide, Hints()), list)
