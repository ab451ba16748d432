"""Reading files into `Document`s for `make ingest`: text, Markdown, HTML and PDF.

A document's id and source are the file's path relative to the folder ingested (POSIX form,
`runbooks/database.md`), so the same folder ingested again, from anywhere, names the same
documents; its metadata records the absolute path (what `--prune` compares), the size in
bytes and the type. Titles: a Markdown file's first `# ` heading, an HTML file's `<title>`
or first `<h1>`, a PDF's metadata title; else the file's name without its extension.

Text files must be UTF-8 (a byte order mark is allowed): another encoding is refused, not
guessed, since a wrong guess would store garbage that no question ever finds. A file that
cannot be read or decoded raises `UnreadableFileError`; the caller reports it and goes on.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bs4 import BeautifulSoup
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from server.knowledge.service import Document
from server.knowledge.titles import markdown_title

__all__ = [
    "SUPPORTED",
    "Scan",
    "UnreadableFileError",
    "document_id",
    "load",
    "scan",
]

SUPPORTED: Final = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
"""The extensions read (lower case), and the type each is recorded as."""

_BLOCKS: Final = re.compile(
    r"^(?:address|article|aside|blockquote|dd|div|dl|dt|figcaption|figure|footer|form|h[1-6]"
    r"|header|hr|li|main|nav|ol|p|pre|section|table|td|th|tr|ul)$"
)
"""Elements that break a line (their text is a paragraph of its own)."""
_INVISIBLE: Final = ("script", "style", "noscript", "template", "head", "title")
_PDF_ERRORS: Final = (PyPdfError, ValueError, KeyError, IndexError, TypeError, zlib.error)
"""What pypdf raises on a malformed file: its own errors, and those of the parsing under them."""


class UnreadableFileError(Exception):
    """A file that cannot be read or decoded (not UTF-8, a broken or encrypted PDF)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Scan:
    """The files found under a path, and what was left out."""

    root: Path
    """The folder the document ids are relative to (a single file's own folder)."""
    files: list[Path] = field(default_factory=list)
    """Readable candidates, sorted: supported extensions, not hidden."""
    unsupported: list[Path] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)
    """Hidden files and folders (a name starting with a dot), not walked into."""


def scan(path: Path) -> Scan:
    """The files to ingest under a folder (recursively), or one file.

    Hidden files and folders are left out (`.git`, editors' swap files), as are files of
    other extensions; a file named on its own is taken even if hidden. Symbolic links to
    files are read; links to folders are not followed (they could loop).

    Raises:
        FileNotFoundError: The path is neither a file nor a folder.
    """
    if path.is_file():
        found = Scan(root=path.parent)
        (found.files if _type(path) else found.unsupported).append(path)
        return found
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    found = Scan(root=path)
    for folder, dirnames, filenames in os.walk(path):
        here = Path(folder)
        for name in sorted(dirnames):
            if name.startswith("."):
                found.hidden.append(here / name)
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            file = here / name
            if name.startswith("."):
                found.hidden.append(file)
            elif _type(file) is None:
                found.unsupported.append(file)
            else:
                found.files.append(file)
    found.files.sort()
    return found


def document_id(file: Path, root: Path) -> str:
    """The file's path relative to the ingested folder, in POSIX form."""
    return file.relative_to(root).as_posix()


def load(file: Path, root: Path) -> Document:
    """The document a file holds.

    Raises:
        UnreadableFileError: It cannot be read, is not UTF-8, or is a PDF pypdf cannot read.
    """
    kind = _type(file)
    if kind is None:
        raise UnreadableFileError(file, f"unsupported extension {file.suffix!r}")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise UnreadableFileError(file, error.strerror or type(error).__name__) from error
    title, text = _READERS[kind](file, data)
    relative = document_id(file, root)
    return Document(
        id=relative,
        text=text.replace("\x00", ""),
        title=(title or file.stem).replace("\x00", "").strip(),
        source=relative,
        metadata={"path": str(file.resolve()), "bytes": len(data), "type": kind},
    )


def _type(file: Path) -> str | None:
    return SUPPORTED.get(file.suffix.lower())


def _decode(file: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFileError(
            file, f"not UTF-8 (byte {error.start}: {data[error.start : error.start + 1]!r})"
        ) from None


def _text(file: Path, data: bytes) -> tuple[str, str]:
    return "", _decode(file, data)


def _markdown(file: Path, data: bytes) -> tuple[str, str]:
    text = _decode(file, data)
    return markdown_title(text), text


def _html(file: Path, data: bytes) -> tuple[str, str]:
    soup = BeautifulSoup(_decode(file, data), "html.parser")
    title = ""
    if soup.title is not None:
        title = " ".join(soup.title.get_text().split())
    if not title and (heading := soup.find("h1")) is not None:
        title = " ".join(heading.get_text().split())
    for hidden in soup.find_all(_INVISIBLE):
        hidden.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    return title, _paragraphs(soup.get_text())


def _paragraphs(text: str) -> str:
    """Whitespace runs made single spaces, lines kept, blank-line runs made one blank line."""
    out: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _pdf(file: Path, data: bytes) -> tuple[str, str]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFileError(file, "an encrypted PDF (a password is needed)")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = ""
        if reader.metadata is not None and reader.metadata.title:
            title = " ".join(str(reader.metadata.title).split())
    except _PDF_ERRORS as error:
        raise UnreadableFileError(
            file, f"not a readable PDF ({type(error).__name__}: {error})"
        ) from None
    return title, "\n\n".join(page.strip() for page in pages if page.strip())


_READERS: Final[dict[str, Callable[[Path, bytes], tuple[str, str]]]] = {
    "text": _text,
    "markdown": _markdown,
    "html": _html,
    "pdf": _pdf,
}
