"""Parsing an expression and refusing any syntax outside the calculator's small language."""

from __future__ import annotations

import ast

from graph.errors import ToolInputError
from nodes.tools.arithmetic.functions import CONSTANTS, FUNCTIONS
from nodes.tools.arithmetic.limits import MAX_DEPTH, MAX_EXPRESSION_LENGTH, MAX_NODES

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


def _describe(node: ast.AST) -> str:
    """Name a disallowed syntax node in words the model can act on."""
    if isinstance(node, ast.Attribute):
        return f"attribute access ('.{node.attr}')"
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r} (only int and float numbers are allowed)"
    return _NODE_DESCRIPTIONS.get(type(node), f"{type(node).__name__} syntax")


def not_allowed(node: ast.AST) -> ToolInputError:
    """The error refusing a syntax node outside the language."""
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


def parse(expression: str) -> ast.Expression:
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
        raise not_allowed(node)
    if isinstance(node, ast.Call):
        _check_call(node)
    is_callee = isinstance(parent, ast.Call) and parent.func is node
    if isinstance(node, ast.Name) and not is_callee and node.id not in CONSTANTS:
        hint = " (functions must be called, e.g. sqrt(2))" if node.id in FUNCTIONS else ""
        raise ToolInputError(
            f"Unknown name '{node.id}'{hint}. Allowed constants: {', '.join(CONSTANTS)}."
        )


def validate(tree: ast.Expression) -> None:
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
            # A left operand is evaluated iteratively (see evaluator.Evaluator._binary), so long
            # flat chains such as 1 + 2 + ... + 99 do not count as nesting.
            is_left_operand = isinstance(node, ast.BinOp) and child is node.left
            stack.append((child, node, depth if is_left_operand else depth + 1))
