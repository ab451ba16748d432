"""The calculator's values: the number type, the size each value is kept to, how one is written."""

from __future__ import annotations

import math

from graph.errors import ToolInputError
from nodes.tools.arithmetic.limits import MAX_INT_BITS

Number = int | float

_SIGNIFICANT_DIGITS = 12


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


def check_number(value: object) -> Number:
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
