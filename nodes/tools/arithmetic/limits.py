"""Every size bound of the calculator, checked before the expensive step it guards."""

from __future__ import annotations

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
