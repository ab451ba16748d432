"""The README and the manual in docs/ stay true and reachable.

* The README is a front door: at most `README_MAX_LINES` lines, with the two set-up commands
  (`make run`, and `make test`, which `.ci/run` runs) and a link to every page of docs/.
* Every relative link of README.md and docs/*.md points to a file that exists, and an anchor
  (`page.md#heading`) to a heading (or `<a id>`) of that page.
* The "where to change what" table of docs/extending.md: every file it names exists (a bare
  file name, beside the previous path of its cell), and every name it places in a file is
  defined there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 320
PAGES = (
    "chat-completions.md",
    "responses.md",
    "mcp.md",
    "langserve.md",
    "langgraph-api.md",
    "knowledge.md",
    "how-it-works.md",
    "configuration.md",
    "operating.md",
    "deploying.md",
    "extending.md",
    "development.md",
    "performance.md",
)
"""The manual's pages, each linked from the README."""

_CODE = re.compile(r"`([^`]+)`")
_NAME_IN_FILE = re.compile(r"`([A-Za-z_][\w.]*)`(?: \([^)]*\))? in `([\w/.-]+\.py)`")
_SKIP = ("<", "*")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^ {0,3}```.*?^ {0,3}```", re.M | re.S)


def documents() -> list[Path]:
    """README.md and every page of docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def _prose(path: Path) -> str:
    """A page without its fenced blocks (code is not a link) or inline code."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors a page has: its headings' slugs (numbered when repeated) and `<a id>`s."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set(re.findall(r'<a id="([^"]+)"', text))
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def relative_links(path: Path) -> list[str]:
    """The links of a page that point into the repository (not a URL, not mail)."""
    return [
        target
        for target in _LINK.findall(_prose(path))
        if not re.match(r"[a-z][a-z+.-]*:", target)  # http:, https:, mailto:
    ]


def broken_links(path: Path) -> list[str]:
    """A page's relative links whose file, or whose anchor in that file, does not exist."""
    broken = []
    for target in relative_links(path):
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        missing_anchor = anchor and linked.suffix == ".md" and anchor not in anchors(linked)
        if not linked.exists() or missing_anchor:
            broken.append(target)
    return broken


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_keeps_the_two_set_up_commands_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    assert re.search(r"^make run\b", text, re.M)
    assert re.search(r"^make test\b", text, re.M)
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.M), "CI runs the README's test command"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_exists_and_the_readme_links_it(page: str) -> None:
    assert (DOCS / page).is_file()
    assert f"docs/{page}" in relative_links(README)


def test_every_page_of_docs_is_a_known_one() -> None:
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(PAGES)


@pytest.mark.parametrize("path", documents(), ids=lambda path: path.name)
def test_every_relative_link_points_to_a_file_that_exists(path: Path) -> None:
    assert broken_links(path) == []


def test_the_link_check_sees_what_it_checks(tmp_path: Path) -> None:
    """The parsing itself: a missing file and a missing anchor are caught, code is not a link."""
    (tmp_path / "there.md").write_text("# A `code` heading: yes\n\n## Again\n## Again\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-code-heading-yes) [ok](there.md#again-1)\n"
        "[gone](nowhere.md) [gone](there.md#no-such-heading) [web](https://x.org/y)\n"
        "`[not a link](nowhere.md)`\n```\n[not a link](nowhere.md)\n```\n"
    )
    assert broken_links(page) == ["nowhere.md", "there.md#no-such-heading"]


def _table() -> list[str]:
    text = (DOCS / "extending.md").read_text(encoding="utf-8")
    start = text.index("## Where to change what")
    end = text.find("\n## ", start + 1)
    rows = [line for line in text[start:end].splitlines() if line.startswith("| ")]
    assert len(rows) > 20, "the table moved or shrank"
    assert rows[0].startswith("| Change |")
    return rows[1:]  # under the header (the |---| line is no row of its own)


def _paths(cell: str) -> list[str]:
    found = []
    for code in _CODE.findall(cell):
        token = code.split(" ")[0].rstrip(",")
        if token.startswith("/") or any(mark in token for mark in _SKIP):
            continue  # a URL path, or a placeholder
        if not re.fullmatch(r"[\w./-]+", token):
            continue
        if "/" in token or re.search(r"\.(py|json|toml|md)$", token):
            found.append(token)
    return found


def _missing(cell: str) -> list[str]:
    """The files a cell names that do not exist; a bare name is looked up beside the path
    named before it in the cell (`server/telemetry/metrics.py`, `saver.py`)."""
    missing = []
    folder: Path | None = None
    for token in _paths(cell):
        if "/" in token:
            path = ROOT / token
            folder = path if token.endswith("/") or path.is_dir() else path.parent
        else:
            path = (folder or ROOT) / token
        if not path.exists():
            missing.append(token)
    return missing


def _cells(row: str) -> list[str]:
    return [cell for cell in row.split(" | ")[1:]]


@pytest.mark.parametrize("row", _table(), ids=lambda row: row.split("|")[1].strip()[:40])
def test_every_file_the_table_names_exists(row: str) -> None:
    missing = [token for cell in _cells(row) for token in _missing(cell)]
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
    """The parsing itself: a made-up path, a bare name in the wrong folder and a made-up name
    are caught."""
    cell = "`server/nowhere.py`, `no_such_name` in `server/turns/prepare.py`"
    assert _missing(cell) == ["server/nowhere.py"]
    assert _missing("`server/telemetry/metrics.py`, `saver.py`, `prepare.py`") == ["prepare.py"]
    assert _NAME_IN_FILE.findall(cell) == [("no_such_name", "server/turns/prepare.py")]
    assert "no_such_name" not in (ROOT / "server/turns/prepare.py").read_text()
