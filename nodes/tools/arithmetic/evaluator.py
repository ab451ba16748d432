"""Walking a validated expression tree, bounding every power, product and value."""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Callable

from graph.errors import ToolInputError
from nodes.tools.arithmetic.functions import CONSTANTS, FUNCTIONS
from nodes.tools.arithmetic.limits import MAX_EXPONENT, MAX_INT_BITS
from nodes.tools.arithmetic.syntax import not_allowed
from nodes.tools.arithmetic.values import Number, check_number, format_number


def _power(base: Number, exponent: Number) -> Number:
    """Raise to a power, refusing results too large to compute before computing them."""
    if abs(exponent) > MAX_EXPONENT:
        raise ToolInputError(
            f"The exponent {format_number(exponent)} is too large (the limit is "
            f"{MAX_EXPONENT} in absolute value)."
        )
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        estimated_bits = exponent * math.log2(abs(base))
        if estimated_bits > MAX_INT_BITS:
            raise ToolInputError(
                f"The result of a power would have about {int(estimated_bits)} bits "
                f"(the limit is {MAX_INT_BITS}); use smaller numbers."
            )
    result: object = base**exponent
    return check_number(result)


def _multiply(left: Number, right: Number) -> Number:
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1
    ):
        raise ToolInputError(f"The product is too large (more than {MAX_INT_BITS} bits).")
    return left * right


_BINARY_OPERATORS: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: lambda left, right: left + right,
    ast.Sub: lambda left, right: left - right,
    ast.Mult: _multiply,
    ast.Div: lambda left, right: left / right,
    ast.FloorDiv: lambda left, right: left // right,
    ast.Mod: lambda left, right: left % right,
    ast.Pow: _power,
}


class Evaluator:
    """Walks a validated tree; every visit checks the wall-clock deadline.

    Args:
        time_limit: Seconds the walk may take, from now.
    """

    def __init__(self, time_limit: float) -> None:
        self._time_limit = time_limit
        self._deadline = time.monotonic() + time_limit

    def visit(self, node: ast.expr) -> Number:
        """Evaluate one validated node."""
        if time.monotonic() > self._deadline:
            raise ToolInputError(
                f"The calculation took longer than {self._time_limit:g} s; simplify it."
            )
        if isinstance(node, ast.Constant):
            return check_number(node.value)
        if isinstance(node, ast.Name):
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise not_allowed(node)  # unreachable once validated

    def _binary(self, node: ast.BinOp) -> Number:
        """Evaluate a left-leaning operator chain in a loop rather than by recursion."""
        chain: list[ast.BinOp] = []
        current: ast.expr = node
        while isinstance(current, ast.BinOp):
            chain.append(current)
            current = current.left
        value = self.visit(current)
        for operation in reversed(chain):
            right = self.visit(operation.right)
            value = check_number(_BINARY_OPERATORS[type(operation.op)](value, right))
        return value

    def _call(self, node: ast.Call) -> Number:
        assert isinstance(node.func, ast.Name)  # guaranteed by validate  # nosec B101
        name = node.func.id
        function = FUNCTIONS[name]
        count = len(node.args)
        if count < function.min_args or (
            function.max_args is not None and count > function.max_args
        ):
            raise ToolInputError(f"{name}() does not take {count} argument(s).")
        args = [self.visit(arg) for arg in node.args]
        try:
            result: object = function.implementation(*args)
        except (ValueError, TypeError) as exc:
            raise ToolInputError(f"{name}() is not defined for these arguments ({exc}).") from None
        except OverflowError:
            raise ToolInputError(f"The result of {name}() is too large (overflow).") from None
        except ZeroDivisionError:
            raise ToolInputError(f"{name}() divided by zero for these arguments.") from None
        return check_number(result)
