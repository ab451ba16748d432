"""Which offered tool a user text calls, and with which arguments: the offline model's rules.

The rules, first match wins: "use <tool> key=value ...", "echo <text>", "search the
knowledge base for <query>" or "what do the docs say about <query>" (`knowledge_search`), a
date or time question (`clock`), "search for <query>" (`searxng_search`), an arithmetic
expression (`calculator`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_MATH_NAMES = frozenset(
    [
        "sqrt",
        "cbrt",
        "exp",
        "log",
        "log10",
        "log2",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "tanh",
        "degrees",
        "radians",
        "floor",
        "ceil",
        "abs",
        "round",
        "min",
        "max",
        "hypot",
        "factorial",
        "gcd",
        "lcm",
        "pi",
        "e",
        "tau",
    ]
)
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\*\*|//|[-+*/%^(),]|[A-Za-z_]+|\S")
# Chat UIs and people write the multiplication sign, dots, the division sign and the minus sign
# (U+00D7, U+00B7, U+22C5, U+00F7, U+2212); the calculator reads them too.
_MINUS = frozenset(["-", "\u2212"])
_OPERATORS = frozenset(
    ["+", "-", "*", "/", "//", "%", "**", "^", "\u00d7", "\u00b7", "\u22c5", "\u00f7", "\u2212"]
)
_TIME_WORDS = re.compile(
    r"\b(time|date|today|tomorrow|yesterday|weekday|clock|timezone|what day|days? until)\b",
    re.IGNORECASE,
)
_TIMEZONE = re.compile(r"\b([A-Z][A-Za-z_]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?|UTC)\b")
_IN_DAYS = re.compile(r"\bin (\d{1,6}) days?\b|\b(\d{1,6}) days? from (?:now|today)\b", re.I)
_UNTIL = re.compile(r"\b(?:until|till|to) (\d{4}-\d{2}-\d{2}(?:[T ][\d:]+)?)\b", re.I)
_ECHO = re.compile(r"^\s*echo\b[\s:,]*(.*)$", re.IGNORECASE | re.DOTALL)
USE_TOOL = re.compile(
    r"^\s*(?:use|call|run)\s+(?:the\s+)?([A-Za-z_][\w-]*)(?:\s+tool)?\b(.*)$", re.I | re.S
)
"""Matches "use <tool> key=value ...": group 1 is the tool, group 2 its arguments."""
_TOOL_ARG = re.compile(r"""([A-Za-z_]\w*)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")
_SEARCH = re.compile(r"^\s*(?:search(?: the web)? for|look up|web search)\s+(.+)$", re.I | re.S)


_KNOWLEDGE = re.compile(
    r"^\s*(?:(?:please\s+)?(?:search|look)(?: in| through)? (?:the |our |my )?"
    r"(?:knowledge ?base|kb|docs|documents|documentation)(?: for| about)?"
    r"|what do(?:es)? (?:the |our |my )?(?:docs|documents|documentation|knowledge ?base) say"
    r"(?: about| on| regarding)?)\s+(.+)$",
    re.I | re.S,
)
"""Matches a request to search the knowledge base: group 1 is what to look for."""


def find_expression(text: str) -> str | None:
    """The longest run of arithmetic tokens in the text, if it has a number and an operator."""
    best: str | None = None
    run: list[re.Match[str]] = []

    def close_run() -> None:
        nonlocal best
        while run and run[-1].group() in _OPERATORS | {"(", ","}:
            run.pop()
        tokens = [m.group() for m in run]
        has_number = any(t[0].isdigit() for t in tokens)
        has_op = any(t in _OPERATORS or t == "(" or t.lower() in _MATH_NAMES for t in tokens)
        if has_number and has_op:
            candidate = text[run[0].start() : run[-1].end()]
            if best is None or len(candidate) > len(best):
                best = candidate
        run.clear()

    for match in _TOKEN.finditer(text):
        token = match.group()
        mathy = (
            token[0].isdigit()
            or token in _OPERATORS
            or token in {"(", ")", ","}
            or token.lower() in _MATH_NAMES
        )
        if mathy and not (not run and token in _OPERATORS - _MINUS):
            run.append(match)
        else:
            close_run()
    close_run()
    return best


def _clock_args(text: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    zone = _TIMEZONE.search(text)
    args["timezone"] = zone.group(1) if zone else "UTC"
    days = _IN_DAYS.search(text)
    if days:
        args["add_days"] = int(days.group(1) or days.group(2))
    until = _UNTIL.search(text)
    if until:
        args["until"] = until.group(1)
    return args


def _tool_arg_value(raw: str) -> Any:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def _named_tool_args(text: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for match in _TOOL_ARG.finditer(text):
        key, double, single, bare = match.groups()
        if bare is not None:
            args[key] = _tool_arg_value(bare)
        else:
            args[key] = double if double is not None else single
    return args


def plan_tool_call(text: str, tools: Sequence[str]) -> tuple[str, dict[str, Any]] | None:
    """Which offered tool answers this user text, with which arguments (None: no tool)."""
    named = USE_TOOL.match(text)
    if named and named.group(1) in tools:
        return named.group(1), _named_tool_args(named.group(2))
    echo = _ECHO.match(text)
    if echo and "echo" in tools:
        return "echo", {"text": echo.group(1).strip()}
    knowledge = _KNOWLEDGE.match(text)
    if knowledge and "knowledge_search" in tools:
        return "knowledge_search", {"query": knowledge.group(1).strip().rstrip("?.!").strip()}
    if _TIME_WORDS.search(text) and "clock" in tools:
        return "clock", _clock_args(text)
    search = _SEARCH.match(text)
    if search and "searxng_search" in tools:
        return "searxng_search", {"query": search.group(1).strip().rstrip("?")}
    expression = find_expression(text)
    if expression and "calculator" in tools:
        return "calculator", {"expression": expression}
    return None
