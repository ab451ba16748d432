"""The README's "where to change what" table stays true: every file it names exists, and every
name it places in a file is defined there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CODE = re.compile(r"`([^`]+)`")
_NAME_IN_FILE = re.compile(r"`([A-Za-z_][\w.]*)`(?: \([^)]*\))? in `([\w/.-]+\.py)`")
_SKIP = ("<", "*")


def _table() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Where to change what")
    end = text.index("\n## ", start + 1)
    rows = [line for line in text[start:end].splitlines() if line.startswith("| ")]
    assert len(rows) > 20, "the table moved or shrank"
    return rows[2:]


def _paths(row: str) -> list[str]:
    found = []
    for code in _CODE.findall(row):
        token = code.split(" ")[0].rstrip(",")
        if token.startswith("/") or any(mark in token for mark in _SKIP):
            continue  # a URL path, or a placeholder
        if not re.fullmatch(r"[\w./-]+", token):
            continue
        if "/" in token or re.search(r"\.(py|json|toml|md)$", token):
            found.append(token)
    return found


def _exists(token: str) -> bool:
    if (ROOT / token).exists():
        return True
    if "/" not in token:  # a file named beside the previous path of the cell
        return any(".venv" not in p.parts and ".tools" not in p.parts for p in ROOT.rglob(token))
    return False


@pytest.mark.parametrize("row", _table(), ids=lambda row: row.split("|")[1].strip()[:40])
def test_every_file_the_table_names_exists(row: str) -> None:
    missing = [token for token in _paths(row) if not _exists(token)]
    assert missing == []


@pytest.mark.parametrize("row", _table(), ids=lambda row: row.split("|")[1].strip()[:40])
def test_every_name_the_table_places_in_a_file_is_there(row: str) -> None:
    absent = [
        (name, path)
        for name, path in _NAME_IN_FILE.findall(row)
        if not re.search(rf"\b{re.escape(name.split('.')[-1])}\b", (ROOT / path).read_text())
    ]
    assert absent == []


def test_the_checks_see_what_they_check() -> None:
    """The parsing itself: a made-up path and a made-up name are caught."""
    row = "| x | `server/nowhere.py`, `no_such_name` in `server/turns/prepare.py` | `tests/` |"
    assert [t for t in _paths(row) if not _exists(t)] == ["server/nowhere.py"]
    assert _NAME_IN_FILE.findall(row) == [("no_such_name", "server/turns/prepare.py")]
    assert "no_such_name" not in (ROOT / "server/turns/prepare.py").read_text()
