"""`server.knowledge.loaders`: titles, HTML text, scanning a folder, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.knowledge.loaders import UnreadableFileError, load, scan
from server.knowledge.titles import markdown_title


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Title\n\nbody", "Title"),
        ("intro\n\n## Second level\n\n#  Spaced out  #\n", "Spaced out"),
        ("```\n# a comment\n```\n# Real", "Real"),
        ("~~~python\n# comment\n~~~\n\nno heading", ""),
        ("#hashtag, not a heading\n", ""),
    ],
)
def test_markdown_title_is_the_first_level_one_heading_outside_code(text: str, title: str) -> None:
    assert markdown_title(text) == title


def test_html_text_keeps_paragraphs_and_drops_scripts_styles_and_the_head(tmp_path: Path) -> None:
    page = tmp_path / "page.htm"
    page.write_text(
        "<html><head><title> Two\n words </title><style>p{}</style></head><body>"
        "<h1>Heading</h1><p>One <a href='#'>linked</a> sentence.</p><script>x()</script>"
        "<ul><li>first</li><li>second</li></ul>line<br>break</body></html>"
    )
    document = load(page, tmp_path)
    assert document.title == "Two words"
    assert document.text == "Heading\n\nOne linked sentence.\n\nfirst\n\nsecond\n\nline\nbreak"
    assert document.metadata["type"] == "html"


def test_html_without_a_title_takes_its_h1_and_a_text_file_its_name(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text("<h1>The <i>one</i></h1><p>x</p>")
    (tmp_path / "release-notes.txt").write_text("\ufeffplain")
    assert load(tmp_path / "a.html", tmp_path).title == "The one"
    text = load(tmp_path / "release-notes.txt", tmp_path)
    assert (text.title, text.text) == ("release-notes", "plain")  # the BOM is not text


def test_a_file_that_is_not_utf8_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "latin.md").write_bytes("# Caf\xe9\n".encode("latin-1"))
    with pytest.raises(UnreadableFileError, match="not UTF-8"):
        load(tmp_path / "latin.md", tmp_path)


def test_scan_walks_folders_skipping_hidden_and_unsupported(tmp_path: Path) -> None:
    for name in ("b.md", "a/c.TXT", "a/d.pdf", "e.docx", ".f.md", ".git/config", "a/.g/h.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = scan(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found.files] == [
        "a/c.TXT",
        "a/d.pdf",
        "b.md",
    ]
    assert [p.name for p in found.unsupported] == ["e.docx"]
    assert sorted(p.name for p in found.hidden) == [".f.md", ".g", ".git"]
    one = scan(tmp_path / "a/c.TXT")
    assert (one.root, one.files) == (tmp_path / "a", [tmp_path / "a/c.TXT"])
    with pytest.raises(FileNotFoundError):
        scan(tmp_path / "missing")
