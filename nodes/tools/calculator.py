"""A safe arithmetic calculator tool.

Language models are unreliable at arithmetic, so the agent delegates it to this tool.
The expression comes from the model (and so, indirectly, from users), which makes it
untrusted input: it is parsed with ``ast.parse`` and evaluated by walking a small,
explicitly allowed subset of the syntax tree. Nothing is ever passed to ``eval``,
``exec`` or ``compile``. Every way to make the walk expensive (huge inputs, deep
nesting, giant powers or factorials, runaway integers) is bounded *before* the
expensive step happens, and every failure surfaces as a ``ToolInputError`` whose
message tells the model what to change.

This module is the tool and its entry point, ``evaluate``; the language itself (bounds,
functions, syntax checks, the walk) is in ``nodes.tools.arithmetic``.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from graph.errors import ToolInputError
from nodes.tools.arithmetic.evaluator import Evaluator
from nodes.tools.arithmetic.functions import CONSTANTS, FUNCTIONS
from nodes.tools.arithmetic.limits import (
    MAX_DEPTH,
    MAX_EXPONENT,
    MAX_EXPRESSION_LENGTH,
    MAX_FACTORIAL,
    MAX_INT_BITS,
    MAX_NODES,
)
from nodes.tools.arithmetic.syntax import parse, validate
from nodes.tools.arithmetic.values import format_number

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_EXPRESSION_LENGTH",
    "MAX_FACTORIAL",
    "MAX_INT_BITS",
    "MAX_NODES",
    "TIME_LIMIT_SECONDS",
    "CalculatorInput",
    "calculator_tool",
    "evaluate",
    "format_number",
]

#: Wall-clock budget of one evaluation, checked at every node.
TIME_LIMIT_SECONDS = 1.0


class CalculatorInput(BaseModel):
    """Arguments of the ``calculator`` tool."""

    expression: str = Field(
        description=(
            "An arithmetic expression, e.g. '17 * 23', '(1 + 2) ** 3 / 4' or "
            f"'sqrt(2) * sin(pi / 4)'. At most {MAX_EXPRESSION_LENGTH} characters."
        )
    )


def evaluate(expression: str) -> int | float:
    """Safely evaluate an arithmetic expression.

    The text is parsed, every node is checked against the allowed subset (numbers,
    ``+ - * / // % **``, unary signs, the constants in ``CONSTANTS`` and calls of the
    functions in ``FUNCTIONS``), and the tree is then walked. ``^`` is accepted as a
    power, and the multiplication and division signs, dots and the minus sign (U+00D7,
    U+00B7, U+22C5, U+00F7, U+2212) as their operators, because models, chat UIs and people
    write them that way.

    Args:
        expression: The expression, e.g. ``"(1 + 2) * 3"``.

    Returns:
        The value: an int when the computation stayed in integers, else a float.

    Raises:
        ToolInputError: If the expression is malformed, uses anything not allowed,
            exceeds a size, depth or time bound, divides by zero, overflows, or
            leaves a function's domain.
    """
    tree = parse(expression)
    validate(tree)
    evaluator = Evaluator(TIME_LIMIT_SECONDS)
    try:
        return evaluator.visit(tree.body)
    except ZeroDivisionError:
        raise ToolInputError("Division or modulo by zero.") from None
    except OverflowError:
        raise ToolInputError(
            "The result is too large for a floating-point number (overflow)."
        ) from None
    except RecursionError:
        raise ToolInputError("The expression is nested too deeply.") from None


async def _calculate(expression: str) -> str:
    return format_number(evaluate(expression))


calculator_tool: BaseTool = StructuredTool.from_function(
    coroutine=_calculate,
    name="calculator",
    description=(
        "Evaluate an arithmetic expression exactly and return the number. Use this for any "
        "arithmetic instead of calculating in your head. Supports numbers, + - * / "
        "(also \u00d7 \u00b7 \u00f7 \u2212), // (floor division) % (remainder) ** or ^ (power), "
        "unary minus, parentheses, "
        "the constants pi, e and tau, and the functions "
        f"{', '.join(FUNCTIONS)} (angles in radians; log(x) is natural, log(x, base) "
        "takes a base; round(x, digits) rounds half away from zero). Variables, strings "
        "and other Python syntax are not supported. Integers stay exact; floats are "
        "shown with up to 12 significant digits."
    ),
    args_schema=CalculatorInput,
)
