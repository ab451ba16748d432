"""A Markdown document's title: what the loaders and `POST /admin/knowledge` name it by.

Its own module so that the admin routes (imported at start) do not import the loaders' PDF
and HTML parsers (pypdf, BeautifulSoup: about 0.17 s), which only `make ingest` needs.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["markdown_title"]

_H1: Final = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE: Final = re.compile(r"^ {0,3}(```|~~~)")


def markdown_title(text: str) -> str:
    """The first level-one ATX heading (`# Title`) outside code fences, or ""."""
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced and (match := _H1.match(line)):
            return match.group(1).strip()
    return ""
