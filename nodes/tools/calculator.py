"""A safe arithmetic calculator tool.

Language models are unreliable at arithmetic, so the agent delegates it to this tool.
The expression comes from the model (and so, indirectly, from users), which makes it
untrusted input: it is parsed with ``ast.parse`` and evaluated by walking a small,
explicitly allowed subset of the syntax tree. Nothing is ever passed to ``eval``,
``exec`` or ``compile``. Every way to make the walk expensive (huge inputs, deep
nesting, giant powers or factorials, runaway integers) is bounded *before* the
expensive step happens, and every failure surfaces as a ``ToolInputError`` whose
message tells the model what to change.
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from graph.errors import ToolInputError

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

Number = int | float

#: Longest accepted expression, checked before anything is parsed.
MAX_EXPRESSION_LENGTH = 1000
#: Most expression nodes (numbers, names, operations, calls) in one expression.
MAX_NODES = 300
#: Deepest nesting of parentheses or sub-expressions.
MAX_DEPTH = 100
#: Largest absolute exponent of ``**``.
MAX_EXPONENT = 10_000
#: Largest integer (in bits) accepted as an input, intermediate or result.
MAX_INT_BITS = 10_000
#: Largest argument of ``factorial``.
MAX_FACTORIAL = 1000
#: Wall-clock budget of one evaluation, checked at every node.
TIME_LIMIT_SECONDS = 1.0

_SIGNIFICANT_DIGITS = 12
_ROUND_MAX_DIGITS = 400
_OPENING_BRACKETS = frozenset("([{")
_CLOSING_BRACKETS = frozenset(")]}")
# What people, chat UIs (Open WebUI's editor turns `*` into U+00D7) and models write for
# arithmetic, mapped to Python: `^` is a power as chat users mean it, never a bitwise xor.
_REPLACEMENTS = {
    "^": "**",
    "\u00d7": "*",  # multiplication sign
    "\u00b7": "*",  # · middle dot
    "\u22c5": "*",  # ⋅ dot operator
    "\u00f7": "/",  # ÷ division sign
    "\u2212": "-",  # minus sign
}

#: Names usable as numbers.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _as_int(value: Number, function: str) -> int:
    """Return ``value`` as an int, accepting integral floats such as ``4.0``."""
    if isinstance(value, int):
        return value
    if value.is_integer():
        return int(value)
    raise ToolInputError(f"{function}() needs whole numbers, got {format_number(value)}.")


def _factorial(value: Number) -> int:
    n = _as_int(value, "factorial")
    if n < 0 or n > MAX_FACTORIAL:
        raise ToolInputError(
            f"factorial() needs a whole number from 0 to {MAX_FACTORIAL}, got {n}."
        )
    return math.factorial(n)


def _gcd(*values: Number) -> int:
    return math.gcd(*(_as_int(value, "gcd") for value in values))


def _lcm(*values: Number) -> int:
    return math.lcm(*(_as_int(value, "lcm") for value in values))


def _round(value: Number, ndigits: Number | None = None) -> Number:
    """Round half away from zero, as people expect (``round(2.5)`` is 3, not 2)."""
    digits = 0 if ndigits is None else _as_int(ndigits, "round")
    if abs(digits) > _ROUND_MAX_DIGITS:
        raise ToolInputError(f"round() accepts at most {_ROUND_MAX_DIGITS} digits, got {digits}.")
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    with localcontext() as context:
        context.prec = MAX_INT_BITS + 2 * _ROUND_MAX_DIGITS
        try:
            rounded = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        except InvalidOperation as exc:
            raise ToolInputError(f"round() cannot round {format_number(value)}.") from exc
    if ndigits is None or isinstance(value, int):
        return int(rounded)
    return float(rounded)


def _min(*values: Number) -> Number:
    return min(values)


def _max(*values: Number) -> Number:
    return max(values)


def _log(value: Number, base: Number | None = None) -> float:
    return math.log(value) if base is None else math.log(value, base)


@dataclass(frozen=True)
class _Function:
    """An allowed function and how many arguments it takes (``None``: unbounded)."""

    implementation: Callable[..., Number]
    min_args: int
    max_args: int | None


#: Functions usable in expressions, with their arities.
FUNCTIONS: dict[str, _Function] = {
    "sqrt": _Function(math.sqrt, 1, 1),
    "cbrt": _Function(math.cbrt, 1, 1),
    "exp": _Function(math.exp, 1, 1),
    "log": _Function(_log, 1, 2),
    "log10": _Function(math.log10, 1, 1),
    "log2": _Function(math.log2, 1, 1),
    "sin": _Function(math.sin, 1, 1),
    "cos": _Function(math.cos, 1, 1),
    "tan": _Function(math.tan, 1, 1),
    "asin": _Function(math.asin, 1, 1),
    "acos": _Function(math.acos, 1, 1),
    "atan": _Function(math.atan, 1, 1),
    "atan2": _Function(math.atan2, 2, 2),
    "sinh": _Function(math.sinh, 1, 1),
    "cosh": _Function(math.cosh, 1, 1),
    "tanh": _Function(math.tanh, 1, 1),
    "degrees": _Function(math.degrees, 1, 1),
    "radians": _Function(math.radians, 1, 1),
    "floor": _Function(math.floor, 1, 1),
    "ceil": _Function(math.ceil, 1, 1),
    "abs": _Function(abs, 1, 1),
    "round": _Function(_round, 1, 2),
    "min": _Function(_min, 1, None),
    "max": _Function(_max, 1, None),
    "hypot": _Function(math.hypot, 1, None),
    "factorial": _Function(_factorial, 1, 1),
    "gcd": _Function(_gcd, 1, None),
    "lcm": _Function(_lcm, 1, None),
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.BinOp,
    ast.UnaryOp,
    ast.Call,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UAdd,
    ast.USub,
)

_NODE_DESCRIPTIONS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts (indexing)",
    ast.Lambda: "lambda expressions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators (and/or)",
    ast.Not: "the 'not' operator",
    ast.Invert: "the '~' operator",
    ast.IfExp: "conditional expressions",
    ast.Tuple: "tuples",
    ast.List: "lists",
    ast.Set: "sets",
    ast.Dict: "dictionaries",
    ast.JoinedStr: "strings",
    ast.Starred: "starred arguments",
    ast.NamedExpr: "assignments",
    ast.keyword: "keyword arguments",
    ast.BitAnd: "bitwise operators",
    ast.BitOr: "bitwise operators",
    ast.BitXor: "bitwise operators",
    ast.LShift: "bit shifts",
    ast.RShift: "bit shifts",
    ast.MatMult: "the '@' operator",
}


class CalculatorInput(BaseModel):
    """Arguments of the ``calculator`` tool."""

    expression: str = Field(
        description=(
            "An arithmetic expression, e.g. '17 * 23', '(1 + 2) ** 3 / 4' or "
            f"'sqrt(2) * sin(pi / 4)'. At most {MAX_EXPRESSION_LENGTH} characters."
        )
    )


def format_number(value: Number) -> str:
    """Render a result the way a person would write it.

    Integers are printed exactly. Floats get at most 12 significant digits so that
    binary rounding noise disappears (``0.1 + 0.2`` prints as ``0.3``), without
    trailing zeros (``4.0`` prints as ``4``).

    Args:
        value: The number to render.

    Returns:
        The text form of ``value``.
    """
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"  # also turns -0.0 into 0
    return f"{value:.{_SIGNIFICANT_DIGITS}g}"


def _describe(node: ast.AST) -> str:
    """Name a disallowed syntax node in words the model can act on."""
    if isinstance(node, ast.Attribute):
        return f"attribute access ('.{node.attr}')"
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r} (only int and float numbers are allowed)"
    return _NODE_DESCRIPTIONS.get(type(node), f"{type(node).__name__} syntax")


def _not_allowed(node: ast.AST) -> ToolInputError:
    return ToolInputError(f"Not allowed in a calculation: {_describe(node)}.")


def _check_brackets(expression: str) -> None:
    """Refuse deep bracket nesting before the parser sees it (it may crash on it)."""
    depth = 0
    for char in expression:
        if char in _OPENING_BRACKETS:
            depth += 1
            if depth > MAX_DEPTH:
                raise ToolInputError(
                    f"The expression is nested too deeply (more than {MAX_DEPTH} levels of "
                    "parentheses); split it into smaller calculations."
                )
        elif char in _CLOSING_BRACKETS:
            depth -= 1


def _parse(expression: str) -> ast.Expression:
    """Parse text into an expression tree, turning parser failures into input errors."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ToolInputError(
            f"The expression is too long ({len(expression)} characters; the limit is "
            f"{MAX_EXPRESSION_LENGTH}). Split it into smaller calculations."
        )
    text = expression.strip()
    if not text:
        raise ToolInputError("The expression is empty; give an arithmetic expression like '2 + 2'.")
    for symbol, replacement in _REPLACEMENTS.items():
        text = text.replace(symbol, replacement)
    _check_brackets(text)
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolInputError(f"The expression is not valid arithmetic: {exc.msg}.") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ToolInputError(f"The expression could not be parsed: {exc}.") from None


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name):
        raise ToolInputError(
            f"Only calls of the allowed functions are supported, not {_describe(node.func)}."
        )
    name = node.func.id
    if name not in FUNCTIONS:
        raise ToolInputError(
            f"'{name}' is not an allowed function. Allowed functions: {', '.join(FUNCTIONS)}."
        )
    if node.keywords:
        raise ToolInputError(f"Keyword arguments are not allowed (in the call of {name}).")


def _check_node(node: ast.AST, parent: ast.AST | None) -> None:
    """Refuse any syntax outside the calculator's small language."""
    if not isinstance(node, _ALLOWED_NODES) or (
        isinstance(node, ast.Constant) and type(node.value) not in (int, float)
    ):
        raise _not_allowed(node)
    if isinstance(node, ast.Call):
        _check_call(node)
    is_callee = isinstance(parent, ast.Call) and parent.func is node
    if isinstance(node, ast.Name) and not is_callee and node.id not in CONSTANTS:
        hint = " (functions must be called, e.g. sqrt(2))" if node.id in FUNCTIONS else ""
        raise ToolInputError(
            f"Unknown name '{node.id}'{hint}. Allowed constants: {', '.join(CONSTANTS)}."
        )


def _validate(tree: ast.Expression) -> None:
    """Check node types, node count and depth iteratively, without deep recursion."""
    count = 0
    stack: list[tuple[ast.AST, ast.AST | None, int]] = [(tree.body, None, 1)]
    while stack:
        node, parent, depth = stack.pop()
        _check_node(node, parent)
        if isinstance(node, ast.expr):
            count += 1
            if count > MAX_NODES:
                raise ToolInputError(
                    f"The expression has too many parts (more than {MAX_NODES}); "
                    "split it into smaller calculations."
                )
            if depth > MAX_DEPTH:
                raise ToolInputError(
                    f"The expression is nested too deeply (more than {MAX_DEPTH} levels); "
                    "split it into smaller calculations."
                )
        for child in ast.iter_child_nodes(node):
            # A left operand is evaluated iteratively (see _Evaluator._binary), so long
            # flat chains such as 1 + 2 + ... + 99 do not count as nesting.
            is_left_operand = isinstance(node, ast.BinOp) and child is node.left
            stack.append((child, node, depth if is_left_operand else depth + 1))


def _check_number(value: object) -> Number:
    """Keep every intermediate value finite and of bounded size."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, complex):
            raise ToolInputError("The result is a complex number, which is not supported.")
        raise ToolInputError(f"Unsupported value {value!r}.")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolInputError(
            f"The number is too large (more than {MAX_INT_BITS} bits, about "
            f"{int(MAX_INT_BITS * math.log10(2))} digits)."
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolInputError("The result is too large for a floating-point number (overflow).")
    return value


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
    return _check_number(result)


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


class _Evaluator:
    """Walks a validated tree; every visit checks the wall-clock deadline."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline

    def visit(self, node: ast.expr) -> Number:
        """Evaluate one validated node."""
        if time.monotonic() > self._deadline:
            raise ToolInputError(
                f"The calculation took longer than {TIME_LIMIT_SECONDS:g} s; simplify it."
            )
        if isinstance(node, ast.Constant):
            return _check_number(node.value)
        if isinstance(node, ast.Name):
            return CONSTANTS[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _not_allowed(node)  # unreachable once validated

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
            value = _check_number(_BINARY_OPERATORS[type(operation.op)](value, right))
        return value

    def _call(self, node: ast.Call) -> Number:
        assert isinstance(node.func, ast.Name)  # guaranteed by _validate
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
        return _check_number(result)


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
    tree = _parse(expression)
    _validate(tree)
    evaluator = _Evaluator(time.monotonic() + TIME_LIMIT_SECONDS)
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
