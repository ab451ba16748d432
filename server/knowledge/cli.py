"""`make ingest PATH=docs/`: read a folder's documents into the knowledge base.

`python -m server.knowledge.cli PATH [--namespace NS] [--prune] [--json]` opens the knowledge
base exactly as the service does (the checkpointer's PostgreSQL with DATABASE_URL, else the
KNOWLEDGE_PATH file) and ingests every supported file under PATH (`server.knowledge.loaders`),
one at a time, with a progress bar on stderr. An unchanged file (same content hash) costs one
lookup; a changed one replaces its chunks. A file that cannot be read is reported and left
out; the others go in. `--prune` then deletes the namespace's documents that were ingested
from under PATH (their recorded path) and whose file is gone.

Exit status: 0, or 1 if a file failed or the knowledge base could not be opened or written,
or 2 for a wrong command line. The summary goes to stdout (one JSON object with `--json`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from nodes.tools.knowledge import SHARED_NAMESPACE
from server.knowledge.loaders import Scan, UnreadableFileError, load, scan
from server.knowledge.namespaces import NAMESPACE_HELP, parse_namespace
from server.knowledge.opening import open_knowledge
from server.knowledge.service import STORE_ERRORS, Knowledge
from server.knowledge.store import DocumentInfo
from server.settings import Settings
from server.stores.checkpointer import open_checkpointer

__all__ = ["IngestReport", "KnowledgeNotOpenedError", "ingest_path", "main", "prune"]

logger = logging.getLogger(__name__)


class KnowledgeNotOpenedError(RuntimeError):
    """`open_knowledge` gave no knowledge base (disabled, or it could not be opened)."""


@dataclass
class IngestReport:
    """What one run did, file by file counted."""

    path: str
    namespace: str
    store: str = ""
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    """Unsupported extensions, hidden entries, and files without any text."""
    chunks: int = 0
    """Chunks written (of the added and replaced documents)."""
    pruned: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    """A failed file's path, and why."""

    def lines(self) -> list[str]:
        """The human summary."""
        lines = [
            f"{self.path} → namespace {self.namespace!r} in {self.store}: "
            f"{self.added} added, {self.replaced} replaced, {self.unchanged} unchanged, "
            f"{self.failed} failed, {self.skipped} skipped; {self.chunks} chunks written",
        ]
        if self.pruned:
            lines.append(f"pruned {len(self.pruned)}: {', '.join(self.pruned)}")
        lines += [f"failed: {path}: {reason}" for path, reason in self.failures.items()]
        return lines


async def ingest_path(
    knowledge: Knowledge,
    found: Scan,
    *,
    namespace: str = SHARED_NAMESPACE,
    progress: bool | None = None,
) -> IngestReport:
    """Ingest the files of a scan, one at a time; unreadable ones are counted, not fatal.

    Args:
        knowledge: An opened knowledge base.
        found: What `scan` found.
        namespace: Where the documents go.
        progress: Show a progress bar on stderr (None: only when stderr is a terminal).

    Raises:
        psycopg.Error | sqlite3.Error | OSError: The store failed (what went in stays).
    """
    report = IngestReport(path=str(found.root), namespace=namespace, store=knowledge.store.where)
    report.skipped = len(found.unsupported) + len(found.hidden)
    disable = None if progress is None else not progress  # tqdm's None: "not a terminal"
    with tqdm(found.files, desc="ingest", unit="file", file=sys.stderr, disable=disable) as bar:
        for file in bar:
            bar.set_postfix_str(file.name, refresh=False)
            try:
                document = await asyncio.to_thread(load, file, found.root)
            except UnreadableFileError as error:
                report.failed += 1
                report.failures[str(file)] = error.reason
                bar.write(f"failed: {file}: {error.reason}", file=sys.stderr)
                continue
            if not document.text.strip():
                report.skipped += 1
                bar.write(f"skipped: {file}: no text in it", file=sys.stderr)
                continue
            outcome = await knowledge.ingest_one(document, namespace=namespace)
            setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            report.chunks += outcome.chunks
    return report


async def prune(knowledge: Knowledge, root: Path, *, namespace: str) -> list[str]:
    """Delete the namespace's documents read from under `root` whose file is gone.

    A document counts as read from under `root` by the absolute path its metadata records
    (`make ingest` records it; documents POSTed to `/admin/knowledge` have none and stay).

    Returns:
        The ids deleted.
    """
    documents = await knowledge.documents(namespace)
    gone = await asyncio.to_thread(_gone_under, root, documents)
    return [
        document_id
        for document_id in gone
        if await knowledge.delete(document_id, namespace=namespace)
    ]


def _gone_under(root: Path, documents: Sequence[DocumentInfo]) -> list[str]:
    folder = root.resolve()
    gone: list[str] = []
    for document in documents:
        recorded = document.metadata.get("path")
        if not isinstance(recorded, str):
            continue
        path = Path(recorded)
        if path.is_relative_to(folder) and not path.is_file():
            gone.append(document.id)
    return gone


async def run(
    settings: Settings,
    path: Path,
    *,
    namespace: str,
    prune_missing: bool,
    progress: bool | None = None,
) -> IngestReport:
    """Open the knowledge base as the service does, ingest `path`, and prune if asked.

    Raises:
        KnowledgeNotOpenedError: The knowledge base is disabled or could not be opened.
    """
    found = scan(path)
    name = f"{settings.database_application_name}-ingest"[:63]
    async with (
        open_checkpointer(settings, application_name=name) as saver,
        open_knowledge(settings, saver) as knowledge,
    ):
        if knowledge is None:
            raise KnowledgeNotOpenedError(
                "KNOWLEDGE_ENABLED is off"
                if not settings.knowledge_enabled
                else "the knowledge base could not be opened (the reason is logged above)"
            )
        report = await ingest_path(knowledge, found, namespace=namespace, progress=progress)
        if prune_missing:
            report.pruned = await prune(knowledge, found.root, namespace=namespace)
    return report


def _namespace(value: str) -> str:
    try:
        return parse_namespace(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m server.knowledge.cli PATH [--namespace NS] [--prune] [--json]`."""
    parser = argparse.ArgumentParser(
        prog="python -m server.knowledge.cli",
        description="Ingest text, Markdown, HTML and PDF files into the knowledge base.",
    )
    parser.add_argument("path", type=Path, help="a folder (read recursively) or one file")
    parser.add_argument(
        "--namespace",
        type=_namespace,
        default=SHARED_NAMESPACE,
        help=f"where the documents go: {NAMESPACE_HELP}; default {SHARED_NAMESPACE!r}",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="delete the namespace's documents ingested from under PATH whose file is gone",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if not args.path.exists():
        parser.error(f"{args.path}: no such file or folder")
    if args.prune and not args.path.is_dir():
        parser.error("--prune needs a folder")
    settings = Settings()
    # Warnings and errors (why the store cannot be opened), not the service's start-up news.
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    level = level if level <= logging.DEBUG else max(level, logging.WARNING)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        report = asyncio.run(
            run(settings, args.path, namespace=args.namespace, prune_missing=args.prune)
        )
    except KnowledgeNotOpenedError as error:
        sys.stderr.write(f"ingest: {error}\n")
        return 1
    except STORE_ERRORS as error:
        sys.stderr.write(f"ingest: the knowledge store failed: {type(error).__name__}: {error}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps(asdict(report)) + "\n")
    else:
        sys.stdout.write("".join(f"{line}\n" for line in report.lines()))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
