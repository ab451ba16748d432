"""Error bodies take codes only from `ErrorCode`: no code is spelled out at a raise site."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import ValidationError

from graph.errors import ErrorCode
from server.errors import ErrorResponse, OpenAIHTTPError, error_body

SERVER = Path(__file__).resolve().parents[3] / "server"


def _is_text(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _literal_codes(tree: ast.AST) -> list[int]:
    """Lines where a `code` is a string literal: `code="..."` or `{"code": "..."}`."""
    lines: list[int] = []
    for node in ast.walk(tree):
        pairs: list[tuple[object, ast.expr]]
        if isinstance(node, ast.Call):
            pairs = [(k.arg, k.value) for k in node.keywords]
        elif isinstance(node, ast.Dict):
            pairs = [
                (k.value if isinstance(k, ast.Constant) else None, v)
                for k, v in zip(node.keys, node.values, strict=True)
            ]
        else:
            continue
        lines += [value.lineno for name, value in pairs if name == "code" and _is_text(value)]
    return lines


def test_the_scan_finds_a_literal_code() -> None:
    source = 'raise E(400, "x", code="oops")\nbody = {"error": {"code": "oops"}}\n'
    assert _literal_codes(ast.parse(source)) == [1, 2]
    assert _literal_codes(ast.parse("raise E(400, 'x', code=ErrorCode.THREAD_BUSY)")) == []


def test_no_error_code_is_a_string_literal_in_server() -> None:
    found = [
        f"{path.relative_to(SERVER.parent)}:{line}"
        for path in sorted(SERVER.rglob("*.py"))
        for line in _literal_codes(ast.parse(path.read_text(), str(path)))
    ]
    assert SERVER.is_dir()
    assert found == []


def test_an_error_body_is_an_error_response_with_the_code_s_string() -> None:
    body = error_body(409, "busy", code=ErrorCode.THREAD_BUSY)
    assert type(body["error"]["code"]) is str
    parsed = ErrorResponse.model_validate(body)
    assert (parsed.error.type, parsed.error.code) == ("conflict_error", ErrorCode.THREAD_BUSY)
    with pytest.raises(ValidationError):
        ErrorResponse.model_validate({"error": {**body["error"], "code": "no_such_code"}})


def test_an_openai_http_error_keeps_its_code() -> None:
    error = OpenAIHTTPError(429, "slow", code=ErrorCode.RATE_LIMIT_EXCEEDED)
    assert error.code is ErrorCode.RATE_LIMIT_EXCEEDED
    assert OpenAIHTTPError(500, "x").code is None
