from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

from graph.errors import ToolInputError
from nodes.tools import evaluate as reexported_evaluate
from nodes.tools.calculator import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_NODES,
    calculator_tool,
    evaluate,
    format_number,
)

T = TypeVar("T")

GUARD_SECONDS = 5.0


def within_time_bound(function: Callable[[], T]) -> T:
    """Run ``function`` in a thread and fail if it takes longer than the guard."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result(timeout=GUARD_SECONDS)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("17 * 23", 391),
        ("2**10", 1024),
        ("2^10", 1024),
        ("(1+2)*3 - -4", 13),
        ("10/4", 2.5),
        ("7//2", 3),
        ("-7 // 2", -4),
        ("7 % 3", 1),
        ("+5", 5),
        ("2 ** -1", 0.5),
        ("2 ** 3 ** 2", 512),
        ("1e3 + 0.5", 1000.5),
        ("sqrt(16)", 4.0),
        ("cbrt(27)", pytest.approx(3.0)),
        ("exp(0)", 1.0),
        ("log(e)", 1.0),
        ("log(8, 2)", pytest.approx(3.0)),
        ("log10(1000)", pytest.approx(3.0)),
        ("log2(1024)", 10.0),
        ("sin(pi / 2)", 1.0),
        ("cos(0)", 1.0),
        ("tan(0)", 0.0),
        ("asin(1)", pytest.approx(math.pi / 2)),
        ("acos(1)", 0.0),
        ("atan(1) * 4", pytest.approx(math.pi)),
        ("atan2(1, 1)", pytest.approx(math.pi / 4)),
        ("sinh(0) + cosh(0) + tanh(0)", 1.0),
        ("degrees(pi)", pytest.approx(180.0)),
        ("radians(180)", pytest.approx(math.pi)),
        ("tau / 2", pytest.approx(math.pi)),
        ("floor(-2.5)", -3),
        ("ceil(2.1)", 3),
        ("abs(-3)", 3),
        ("round(2.5)", 3),
        ("round(-2.5)", -3),
        ("round(2.675, 2)", 2.68),
        ("round(1234, -2)", 1200),
        ("min(3, 1, 2)", 1),
        ("max(3, 1, 2)", 3),
        ("hypot(3, 4)", 5.0),
        ("factorial(5)", 120),
        ("factorial(sqrt(16))", 24),
        ("gcd(12, 18)", 6),
        ("lcm(4, 6)", 12),
        ("2 \u00d7 3 \u00f7 4 \u2212 1", 0.5),
        ("+".join(["1"] * 150), 150),
        ("2 ** 9999 // 2 ** 9998", 2),
    ],
)
def test_evaluates_supported_expressions(expression: str, expected: object) -> None:
    result = evaluate(expression)
    assert result == expected
    assert type(result) is type(expected) or not isinstance(expected, int | float)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("17 \u00d7 23", 391),
        ("6 \u00b7 7", 42),
        ("6 \u22c5 7", 42),
        ("10 \u00f7 4", 2.5),
        ("7 \u2212 2", 5),
        ("\u22123 + 5", 2),
        ("2^10", 1024),
        ("2^-1", 0.5),
        ("(1 + 2)^2 \u00d7 2", 18),
    ],
)
def test_reads_operators_as_chat_users_write_them(expression: str, expected: object) -> None:
    result = evaluate(expression)
    assert result == expected
    assert type(result) is type(expected)


def test_integers_stay_exact() -> None:
    assert evaluate("2 ** 100 + 1") == 2**100 + 1
    assert evaluate("factorial(30)") == math.factorial(30)


def test_package_reexports_evaluate() -> None:
    assert reexported_evaluate is evaluate


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (391, "391"),
        (-12, "-12"),
        (0.1 + 0.2, "0.3"),
        (4.0, "4"),
        (2.5, "2.5"),
        (-0.0, "0"),
        (1 / 3, "0.333333333333"),
        (1e20, "1e+20"),
        (2**80, str(2**80)),
    ],
)
def test_format_number(value: int | float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("expression", "message_part"),
    [
        pytest.param("9**9**9", "exponent", id="tower-9"),
        pytest.param("2**10**10", "exponent", id="tower-2"),
        pytest.param("9^9^9", "exponent", id="caret-tower"),
        pytest.param("2 ^ 20000", "exponent", id="caret-big-exponent"),
        pytest.param("__import__('os')", "'__import__' is not an allowed function", id="import"),
        pytest.param("().__class__", "attribute access", id="dunder-attribute"),
        pytest.param("(" * 10000 + "1" + ")" * 10000, "too long", id="10k-parens"),
        pytest.param("1+" * 500000 + "1", "too long", id="1MB"),
        pytest.param("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1), "nested", id="parens"),
        pytest.param("-" * 400 + "1", "nested too deeply", id="unary-chain"),
        pytest.param("*".join(["9"] * (MAX_NODES + 1)), "too many parts", id="node-count"),
        pytest.param("2 ** 20000", "exponent", id="big-exponent"),
        pytest.param("3 ** 9000", "bits", id="big-power-result"),
        pytest.param("2 ** 9999 * 2 ** 9999", "too large", id="big-product"),
        pytest.param("factorial(1001)", "0 to 1000", id="big-factorial"),
        pytest.param("factorial(-1)", "0 to 1000", id="negative-factorial"),
        pytest.param("factorial(2.5)", "whole numbers", id="fractional-factorial"),
        pytest.param("factorial(1000) * factorial(1000)", "too large", id="factorial-product"),
        pytest.param("1e308 * 10", "overflow", id="float-overflow"),
        pytest.param("exp(1000)", "too large", id="exp-overflow"),
        pytest.param("2 ** 9999 / 3", "overflow", id="int-to-float-overflow"),
        pytest.param("1 / 0", "by zero", id="division-by-zero"),
        pytest.param("5 % 0", "by zero", id="modulo-by-zero"),
        pytest.param("7 // 0", "by zero", id="floor-division-by-zero"),
        pytest.param("sqrt(-1)", "sqrt()", id="domain-sqrt"),
        pytest.param("log(0)", "log()", id="domain-log"),
        pytest.param("(-8) ** (1/3)", "complex", id="complex"),
        pytest.param("x + 1", "Unknown name 'x'", id="unknown-name"),
        pytest.param("sqrt", "must be called", id="uncalled-function"),
        pytest.param("pi()", "'pi' is not an allowed function", id="call-constant"),
        pytest.param("sqrt(x=4)", "Keyword arguments", id="keyword"),
        pytest.param("sqrt(1, 2)", "2 argument", id="arity"),
        pytest.param("'abc'", "literal 'abc'", id="string"),
        pytest.param("True + 1", "literal True", id="bool"),
        pytest.param("1j", "literal 1j", id="complex-literal"),
        pytest.param("[1, 2][0]", "subscripts", id="subscript"),
        pytest.param("[x for x in (1, 2)]", "comprehensions", id="comprehension"),
        pytest.param("(lambda: 1)()", "Only calls of the allowed functions", id="lambda-call"),
        pytest.param("lambda: 1", "lambda", id="lambda"),
        pytest.param("1 < 2", "comparisons", id="comparison"),
        pytest.param("1 if 1 else 2", "conditional", id="conditional"),
        pytest.param("6 & 3", "bitwise", id="bitwise"),
        pytest.param("1 +", "not valid arithmetic", id="syntax"),
        pytest.param("   ", "empty", id="empty"),
        pytest.param("1\x002", "null bytes", id="null-byte"),
    ],
)
def test_rejects_hostile_or_invalid_input_quickly(expression: str, message_part: str) -> None:
    def run() -> int | float:
        return evaluate(expression)

    with pytest.raises(ToolInputError) as caught:
        within_time_bound(run)
    assert message_part in caught.value.message


def test_length_is_checked_before_parsing() -> None:
    at_limit = "1" + "+1" * ((MAX_EXPRESSION_LENGTH - 1) // 2)
    assert len(at_limit) <= MAX_EXPRESSION_LENGTH
    with pytest.raises(ToolInputError, match="too many parts"):
        evaluate(at_limit)
    with pytest.raises(ToolInputError, match=r"too long \(1001 characters"):
        evaluate("1" * (MAX_EXPRESSION_LENGTH + 1))


def test_nesting_up_to_the_limit_is_allowed() -> None:
    depth = MAX_DEPTH - 1
    assert evaluate("(" * depth + "2" + ")" * depth) == 2


async def test_tool_returns_formatted_result() -> None:
    assert calculator_tool.name == "calculator"
    assert await calculator_tool.ainvoke({"expression": "17 * 23"}) == "391"
    assert await calculator_tool.ainvoke({"expression": "0.1 + 0.2"}) == "0.3"
    assert await calculator_tool.ainvoke({"expression": "sqrt(16)"}) == "4"


async def test_tool_raises_input_error_instead_of_returning_it() -> None:
    with pytest.raises(ToolInputError, match="by zero"):
        await calculator_tool.ainvoke({"expression": "1/0"})


def test_tool_schema_describes_the_argument() -> None:
    schema = convert_to_openai_tool(calculator_tool)["function"]["parameters"]
    assert list(schema["properties"]) == ["expression"]
    assert schema["properties"]["expression"]["description"]
    assert "sqrt" in calculator_tool.description


def test_wall_clock_deadline_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nodes.tools.calculator.TIME_LIMIT_SECONDS", -1.0)
    with pytest.raises(ToolInputError, match="took longer than"):
        evaluate("1 + 1")
