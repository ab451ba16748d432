r"""What the JSON decoders cannot read, found in time linear in the body: nesting, huge numbers.

(And what the encoders cannot write: an integer outside 64 bits, see `INT_RANGE`.)

A JSON body can be valid and still break the service's decoders: they recurse once per level
of nesting (a few thousand `[` end in a `RecursionError`), and Python refuses to turn more than
`sys.get_int_max_str_digits()` digits (4300) into an int (a `ValueError` that is not a
`JSONDecodeError`, so no door expects it). Both must be found before a door parses the body,
without parsing it, and in time linear in its size: the body is not yet known to be JSON, and
it may come from a caller who wants the check to be slow.

So the scan is a fixed number of passes, each one a single bytes primitive of the C library
(`replace`, `split`, `join`, `translate`, `count`, substring search, a running sum) over at
most the body's bytes; no regular expression, and nothing that goes back over what it read.
(A regular expression for JSON strings, `"(?:[^"\\]|\\.)*"`, restarts at every quote when a
string never ends: 12,000 escaped quotes cost seconds.) Every pass reports the bytes it reads
to a `Steps` counter, which the tests use to prove the scan linear by counting, not timing.

The passes, on the body as bytes:

1. the escapes that could hide a quote go: first every escaped backslash (`\\`), then every
   escaped quote (`\"`), left to right as a decoder reads them, so each quote left opens or
   closes a string;
2. split at the quotes, every other piece is outside the strings (a string that never ends
   swallows the rest, as the decoder would stop there): brackets and digits in text do not
   count;
3. outside the strings, the deepest nesting is the greatest running sum of `+1` for `[`/`{`
   and `-1` for `]`/`}`; an integer too long is a run of digits that starts an integer part
   (not after `.`, `e` or `e-`) and is longer than the limit or out of `INT_RANGE`.

A body that is not JSON may be judged either way, as its decoder stops at its first error; the
scan never judges a readable body unreadable, and never lets through one that makes a decoder
recurse too deeply or refuse a number (the tests check both against `json.loads`). The passes
run only when a cheap test of the whole body (the count of opening brackets, a digit run
anywhere) says they may find something, so an ordinary request costs two counts and one
translation.
"""

from __future__ import annotations

import re
import sys
from array import array
from itertools import accumulate
from typing import Final

__all__ = ["MAX_JSON_DEPTH", "Steps", "body_problem", "nests_deeper", "outside_strings"]

MAX_JSON_DEPTH: Final = 200
"""Deeper than any chat request (a tool's JSON schema nests a few dozen levels at most)."""

_DELTAS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
"""Opening brackets to 1, closing ones to 255: -1 once read as signed bytes."""
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_DIGIT_MASK: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
"""Every digit to `0`, every other byte to a space: digit runs become runs of `0`."""

INT_RANGE: Final = range(-(2**63), 2**64)
"""The integers a body may hold: what orjson (LangServe's and the checkpointer's encoder) and
PostgreSQL's jsonb consumers take. A larger one is read, stored, and then fails to be written
back (a 500 after the turn was stored), so it is refused with the body."""
_INT_DIGITS: Final = len(str(2**64))
"""A run of more digits than this is out of `INT_RANGE` whatever its value."""
_NUMBER_MASK: Final = bytes(
    0x30 if 0x30 <= b <= 0x39 else b if b in b".+-eE" else 0x20 for b in range(256)
)
"""Digits to `0`; what tells an integer part from a fraction or an exponent kept; the rest a
space."""
_LONG_INTEGER: Final = re.compile(rb"(?<![0.eE+])(?<![eE]-)0{%d,}+" % (_INT_DIGITS - 1))
"""A run of digits that starts an integer part (not a fraction or an exponent) and may be out
of range. Linear: a match starts only where a run starts, and the run is read once."""


class Steps:
    """Counts the work of a scan: one step per byte handed to a pass, and one per pass.

    Each pass is a primitive whose cost is linear in what it is given, so the count bounds
    the time of the scan; a scan linear in the body takes a bounded number of steps per byte.
    """

    def __init__(self) -> None:
        self.taken = 0

    def over(self, data: bytes) -> bytes:
        """Count a pass over `data`, and hand it on."""
        self.taken += len(data) + 1
        return data


def outside_strings(body: bytes, steps: Steps) -> bytes:
    r"""The body without its strings (each string leaves a space): passes 1 and 2 above.

    After the escaped backslashes are gone, a backslash left always escapes what follows it,
    so `\"` is an escaped quote; after those are gone too, every quote opens or closes a
    string. A JSON text holds a backslash nowhere but in a string, so outside the strings
    nothing is removed.
    """
    unescaped = steps.over(body).replace(b"\\\\", b"")
    unescaped = steps.over(unescaped).replace(b'\\"', b"")
    pieces = steps.over(unescaped).split(b'"')
    return steps.over(b" ".join(pieces[0::2]))


def nests_deeper(outside: bytes, limit: int, steps: Steps) -> bool:
    """Whether brackets (outside strings) nest deeper than `limit`: the greatest running sum."""
    brackets = steps.over(outside).translate(_DELTAS, _NOT_BRACKETS)
    depths = accumulate(array("b", steps.over(brackets)))
    return max(depths, default=0) > limit


def _has_digit_run(data: bytes, longer_than: int, steps: Steps) -> bool:
    """Whether `data` holds more than `longer_than` digits in a row (one substring search)."""
    masked = steps.over(data).translate(_DIGIT_MASK)
    return b"0" * (longer_than + 1) in steps.over(masked)


def _integer_problem(outside: bytes, steps: Steps) -> str | None:
    """Why an integer (outside strings) cannot be read or written back, or None: two passes.

    More digits than `int` reads (`sys.get_int_max_str_digits()`), or a value out of
    `INT_RANGE`. A fraction or an exponent of any length is a float, which is always read.
    """
    masked = steps.over(outside).translate(_NUMBER_MASK)
    for run in _LONG_INTEGER.finditer(steps.over(masked)):
        start, end = run.span()
        digits = sys.get_int_max_str_digits()  # 0: no limit
        if digits and end - start > digits:
            return f"The request body holds a number of more than {digits} digits."
        sign = -1 if start and outside[start - 1 : start] == b"-" else 1
        if end - start > _INT_DIGITS or sign * int(outside[start:end]) not in INT_RANGE:
            return "The request body holds an integer outside 64 bits (-2**63 to 2**64 - 1)."
    return None


def body_problem(body: bytes, *, steps: Steps | None = None) -> str | None:
    """Why the JSON decoders cannot read this body (nesting, a number too long), or None.

    Args:
        body: The request body, not yet known to be JSON (or UTF-8).
        steps: Counts the scan's work (see `Steps`); a fresh one when not given.
    """
    steps = steps or Steps()
    opening = steps.over(body).count(b"[") + steps.over(body).count(b"{")
    deep_suspect = opening > MAX_JSON_DEPTH
    long_suspect = _has_digit_run(body, _INT_DIGITS - 2, steps)
    if not (deep_suspect or long_suspect):
        return None
    outside = outside_strings(body, steps)
    if deep_suspect and nests_deeper(outside, MAX_JSON_DEPTH, steps):
        return f"The request body nests deeper than {MAX_JSON_DEPTH} levels."
    return _integer_problem(outside, steps) if long_suspect else None
