"""The body scan: linear by its step count on hostile input, and right against the decoder.

Linearity is proved by counting, not timing: every pass of the scan reports the bytes it is
handed to a `Steps` counter, and on any input, however built, the count stays under a fixed
multiple of the body's size. Correctness is checked against a reference that reads JSON
strings as the decoder does, on valid JSON and on every prefix of it (a truncated body is
read by the decoder up to its end), and against `json.loads` itself for numbers.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.edge.json_scan import MAX_JSON_DEPTH, Steps, body_problem

SCAN = settings(max_examples=300, deadline=None, database=None, derandomize=True)
SCAN_JSON = settings(SCAN, max_examples=120)  # each example builds a JSON body of ~260 levels

STEPS_PER_BYTE = 12
"""The bound: a dozen passes at most, none handed more than the body's size (see the module)."""

DIGITS = sys.get_int_max_str_digits()


def steps_of(body: bytes) -> int:
    steps = Steps()
    body_problem(body, steps=steps)
    return steps.taken


def assert_linear(body: bytes) -> None:
    assert steps_of(body) <= STEPS_PER_BYTE * (len(body) + 1)


def nests(body: bytes) -> bool:
    return "nests deeper" in (body_problem(body) or "")


def too_long(body: bytes) -> bool:
    return "digits" in (body_problem(body) or "")


# --- linear, by count ---------------------------------------------------------------------

STALL = b"[" * 201 + b'"' + b'\\"' * 12_000
"""Issue 20's pre-auth stall: 24 KB that cost the old regex 3.5-7 s (quadratic)."""


@pytest.mark.parametrize("scale", [1, 10, 100])
def test_the_issues_stall_payload_takes_steps_linear_in_its_size(scale: int) -> None:
    body = b"[" * 201 + b'"' + b'\\"' * (12_000 * scale)
    assert nests(body)  # still judged: 201 brackets before a string that never ends
    assert_linear(body)


def test_ten_times_the_body_is_ten_times_the_steps() -> None:
    small, large = steps_of(STALL), steps_of(STALL[:202] + STALL[202:] * 10)
    assert large <= 10 * small


FRAGMENTS = [
    b"[",
    b"]",
    b"{",
    b"}",
    b'"',
    b"\\",
    b'\\"',
    b"\\\\",
    b'\\\\"',
    b"\\u0000",
    b"\\ud800",
    b",",
    b":",
    b"a",
    b"1",
    b"9" * 97,
    b'"[{',
    b'{"a":[',
]
"""Pieces of hostile bodies: brackets, quotes, backslashes, escapes, long digit runs."""


@SCAN
@given(
    pattern=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=40),
    repeat=st.integers(1, 3000),
    lead=st.sampled_from([b"", b"[" * (MAX_JSON_DEPTH + 1), b'["' + b"1" * (DIGITS + 1)]),
)
def test_any_body_of_hostile_pieces_takes_steps_linear_in_its_size(
    pattern: list[bytes], repeat: int, lead: bytes
) -> None:
    """Brackets, unterminated strings, runs of escapes: a dozen steps per byte at most.

    The leads force every pass to run: enough brackets to test the nesting, a digit run long
    enough to look for numbers outside the strings.
    """
    assert_linear(lead + b"".join(pattern) * repeat)


@SCAN
@given(st.binary(max_size=20_000))
def test_any_bytes_take_steps_linear_in_their_size(body: bytes) -> None:
    assert_linear(body)


# --- right: nesting -----------------------------------------------------------------------


def reference_depth(text: bytes) -> int:
    """The deepest nesting a decoder reaches reading `text` (valid JSON or a prefix of it)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            elif byte == ord('"'):
                in_string = False
        elif byte == ord('"'):
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


TEXT = st.text(st.sampled_from('ab "\\[]{}/:,\n\t\u00e9\u2028\U0001f600'), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def json_bodies(draw: st.DrawFn) -> tuple[bytes, int]:
    """A JSON body (wrapped in up to 263 levels of lists and objects) and its true depth.

    The levels gather around the limit, where a mistake would show.
    """
    value = draw(VALUES)
    levels = draw(st.sampled_from([0, 1, 5, MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH, 260]))
    key = draw(TEXT)
    for in_list in draw(st.lists(st.booleans(), min_size=levels, max_size=levels + 3)):
        value = [value] if in_list else {key: value}
    ascii_only = draw(st.booleans())
    body = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":")).encode()
    return body, depth_of(value)


@SCAN_JSON
@given(json_bodies())
def test_valid_json_is_refused_exactly_when_it_nests_deeper_than_the_limit(
    case: tuple[bytes, int],
) -> None:
    body, depth = case
    assert reference_depth(body) == depth  # the reference reads strings as the decoder does
    assert nests(body) == (depth > MAX_JSON_DEPTH)
    assert body_problem(body) is None or depth > MAX_JSON_DEPTH


@SCAN_JSON
@given(json_bodies(), st.data())
def test_a_truncated_body_is_judged_by_what_the_decoder_reads_of_it(
    case: tuple[bytes, int], data: st.DataObject
) -> None:
    """A string that never ends swallows the rest; brackets before it count, as read."""
    body, _ = case
    prefix = body[: data.draw(st.integers(0, len(body)))]
    assert nests(prefix) == (reference_depth(prefix) > MAX_JSON_DEPTH)


def test_the_limit_itself_is_fine_one_more_is_not() -> None:
    at_limit = b'{"a":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert body_problem(at_limit) is None
    assert nests(b"[" + at_limit + b"]")


def test_brackets_and_escaped_quotes_in_strings_do_not_nest() -> None:
    text = json.dumps({"content": '\\"[' * 5000 + '"{' * 5000}).encode()
    assert body_problem(text) is None
    masked = b"[" + b'"]\\"]",[' * (MAX_JSON_DEPTH + 5) + b"1" + b"]" * (MAX_JSON_DEPTH + 6)
    assert nests(masked)


# --- right: numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("digits", [1, DIGITS, DIGITS + 1, 5000])
@pytest.mark.parametrize("where", ["value", "in a list", "negative", "beside text"])
def test_a_number_is_refused_exactly_when_int_cannot_read_it(digits: int, where: str) -> None:
    number = b"7" * digits
    body = {
        "value": b'{"n":%s}' % number,
        "in a list": b"[1,[2,%s]]" % number,
        "negative": b'{"n":-%s}' % number,
        "beside text": b'{"t":"%s","n":%s,"u":"x"}' % (b"8" * 6000, number),
    }[where]
    readable = digits <= DIGITS
    if readable:
        json.loads(body)
    else:
        with pytest.raises(ValueError, match="digits") as refused:
            json.loads(body)  # what the doors' decoders do with it: not a JSONDecodeError
        assert not isinstance(refused.value, json.JSONDecodeError)
    assert too_long(body) == (not readable)
    assert (body_problem(body) is None) == (digits == 1)  # 4300 digits: outside 64 bits


@pytest.mark.parametrize(
    ("number", "kept"),
    [
        (b"18446744073709551615", True),  # 2**64 - 1
        (b"18446744073709551616", False),
        (b"-9223372036854775808", True),  # -2**63
        (b"-9223372036854775809", False),
        (b"644971382373118377984", False),  # what schemathesis sent /agent/invoke: a 500
        (b"0.644971382373118377984644971382373118377984", True),  # a float
        (b"1e-644971382373118377984", True),
        (b"1E+644971382373118377984", True),
        (b"6449713823731183779.5", True),
    ],
)
def test_an_integer_outside_64_bits_is_refused(number: bytes, kept: bool) -> None:
    for body in (number, b'{"n":%s}' % number, b"[1,%s]" % number, b'{"t":"x","n":[%s]}' % number):
        json.loads(body)  # every one is JSON that Python reads
        assert (body_problem(body) is None) == kept


@given(st.integers(min_value=-(2**70), max_value=2**70))
@SCAN
def test_the_integer_range_agrees_with_python(value: int) -> None:
    body = json.dumps({"n": [value, -1.5e300, "9" * 30]}).encode()
    assert (body_problem(body) is None) == (-(2**63) <= value < 2**64)


def test_digits_in_strings_are_text() -> None:
    assert body_problem(b'{"%s":"%s"}' % (b"1" * 9000, b"2" * 9000)) is None
