"""The constants and functions an expression may use, each with its arity and bounds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from graph.errors import ToolInputError
from nodes.tools.arithmetic.limits import MAX_FACTORIAL, MAX_INT_BITS
from nodes.tools.arithmetic.values import Number, format_number

_ROUND_MAX_DIGITS = 400

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
