"""Ingestion into the knowledge base: `make ingest` / the CLI, and the `/admin/knowledge` routes.

The CLI runs as a real process (`python -m server.knowledge.cli`, and once through `make
ingest PATH=...`) on a corpus written here: three Markdown files on distinct topics, an HTML
page, a one-page PDF built byte by byte, and a broken PDF. The admin routes are served by
uvicorn and called over HTTP (httpx), and a `/v1` turn through the openai SDK then answers
from what they stored, naming the source.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

from nodes.tools.knowledge import SHARED_NAMESPACE
from server.auth import digest
from server.knowledge.embeddings import OfflineEmbeddings, offline_spec
from server.knowledge.service import Document, Knowledge
from server.knowledge.sqlite_store import SqliteVectorStore
from server.knowledge.store import DocumentInfo
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp

Serve = Callable[[Settings], ServedApp]

ROOT = Path(__file__).resolve().parents[2]

MARKDOWN = {
    "garden/tomatoes.md": (
        "# Growing tomatoes\n\n"
        "Tomato seedlings go outside after the last frost, sixty centimetres apart. Water the "
        "roots, never the leaves, and pinch out the side shoots every week.\n"
    ),
    "garden/compost.md": (
        "```bash\n# not a heading: a comment in a code block\n```\n\n"
        "# Compost heap\n\n"
        "Turn the compost heap every fortnight; mix green kitchen scraps with brown cardboard "
        "so it never smells.\n"
    ),
    "bikes/chain.md": (
        "Some words before any heading.\n\n"
        "# Bicycle chain\n\nOil the bicycle chain every 300 kilometres and wipe off the excess "
        "oil with a rag.\n"
    ),
}
HTML = (
    "<!doctype html><html><head><title>Parking rules</title>"
    "<style>p { color: red }</style><script>var hidden = 'no';</script></head>"
    "<body><h1>Visitors</h1><p>Visitor parking is on level <b>minus two</b>; "
    "tickets are validated at the front desk.</p></body></html>"
)
PDF_TEXT = "The water pump is primed with two litres of water before the first start."


def tiny_pdf(text: str, title: str) -> bytes:
    """A valid one-page PDF showing `text` in Helvetica, with `title` in its metadata."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def write_corpus(folder: Path) -> Path:
    """The corpus, plus what is skipped (an image, a hidden folder) and a broken PDF."""
    for relative, text in MARKDOWN.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text, encoding="utf-8")
    (folder / "site").mkdir()
    (folder / "site/parking.html").write_text(HTML, encoding="utf-8")
    (folder / "manuals").mkdir()
    (folder / "manuals/pump.pdf").write_bytes(tiny_pdf(PDF_TEXT, "Water pump manual"))
    (folder / "manuals/broken.pdf").write_bytes(b"%PDF-1.4\nnot a PDF after all\n")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / ".drafts").mkdir()
    (folder / ".drafts/secret.md").write_text("# Draft\n\nnot for the knowledge base\n")
    return folder


def cli_env(settings: Settings) -> dict[str, str]:
    """A clean environment naming the test's files (no DATABASE_URL, no .env: cwd is tmp)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(settings.knowledge_path.parent),
        "PYTHONPATH": str(ROOT),
        "KNOWLEDGE_PATH": str(settings.knowledge_path),
        "SQLITE_PATH": str(settings.sqlite_path),
        "LOG_LEVEL": "warning",
    }


def ingest_cli(
    settings: Settings, *args: str | Path, json_report: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "server.knowledge.cli", *map(str, args)]
    if json_report:
        command.append("--json")
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        command,
        cwd=settings.knowledge_path.parent,
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def report_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def counts(report: dict[str, Any]) -> dict[str, int]:
    keys = ("added", "replaced", "unchanged", "failed", "skipped")
    return {key: report[key] for key in keys}


def stored(settings: Settings, namespace: str = SHARED_NAMESPACE) -> dict[str, DocumentInfo]:
    async def read() -> dict[str, DocumentInfo]:
        knowledge = Knowledge(
            SqliteVectorStore(settings.knowledge_path), OfflineEmbeddings(), offline_spec()
        )
        await knowledge.open()
        try:
            return {d.id: d for d in await knowledge.documents(namespace)}
        finally:
            await knowledge.close()

    return asyncio.run(read())


def ask(app: ServedApp, text: str, key: str = "unused") -> str:
    client = openai.OpenAI(base_url=f"{app.url}/v1", api_key=key, max_retries=0)
    completion = client.chat.completions.create(
        model="offline", messages=[{"role": "user", "content": text}]
    )
    return completion.choices[0].message.content or ""


# --- the CLI ------------------------------------------------------------------------------


def test_the_cli_ingests_a_folder_skips_unchanged_files_replaces_edited_ones_and_prunes(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    corpus = write_corpus(tmp_path / "docs")

    first = ingest_cli(settings, corpus)
    assert first.returncode == 1, first.stderr  # the broken PDF failed; the rest went in
    report = report_of(first)
    assert counts(report) == {
        "added": 5,
        "replaced": 0,
        "unchanged": 0,
        "failed": 1,
        "skipped": 2,  # logo.png, .drafts/
    }
    assert report["chunks"] >= 5
    assert list(report["failures"]) == [str(corpus / "manuals/broken.pdf")]
    assert "not a readable PDF" in report["failures"][str(corpus / "manuals/broken.pdf")]

    documents = stored(settings)
    assert {d: documents[d].title for d in documents} == {
        "garden/tomatoes.md": "Growing tomatoes",
        "garden/compost.md": "Compost heap",  # not the comment in the code block
        "bikes/chain.md": "Bicycle chain",  # the first `# ` heading, not the first line
        "site/parking.html": "Parking rules",
        "manuals/pump.pdf": "Water pump manual",
    }
    pump = documents["manuals/pump.pdf"]
    assert pump.source == "manuals/pump.pdf"
    assert pump.metadata == {
        "path": str((corpus / "manuals/pump.pdf").resolve()),
        "bytes": (corpus / "manuals/pump.pdf").stat().st_size,
        "type": "pdf",
    }

    (corpus / "manuals/broken.pdf").unlink()
    again = ingest_cli(settings, corpus)
    assert again.returncode == 0, again.stderr
    assert counts(report_of(again)) == {
        "added": 0,
        "replaced": 0,
        "unchanged": 5,
        "failed": 0,
        "skipped": 2,
    }
    assert report_of(again)["chunks"] == 0
    assert {d.content_hash for d in stored(settings).values()} == {
        d.content_hash for d in documents.values()
    }

    (corpus / "garden/compost.md").write_text("# Compost heap\n\nThe heap moved behind the shed.\n")
    edited = report_of(ingest_cli(settings, corpus))
    assert (edited["added"], edited["replaced"], edited["unchanged"]) == (0, 1, 4)

    # A document that did not come from a file (as POSTed to /admin/knowledge) is never pruned.
    async def post_like() -> None:
        knowledge = Knowledge(
            SqliteVectorStore(settings.knowledge_path), OfflineEmbeddings(), offline_spec()
        )
        await knowledge.open()
        await knowledge.ingest([Document(id="faq", text="Frequently asked questions.")])
        await knowledge.close()

    asyncio.run(post_like())
    (corpus / "bikes/chain.md").unlink()
    without_prune = report_of(ingest_cli(settings, corpus))
    assert without_prune["pruned"] == []
    assert "bikes/chain.md" in stored(settings)

    pruned = ingest_cli(settings, corpus, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert report_of(pruned)["pruned"] == ["bikes/chain.md"]
    assert set(stored(settings)) == {
        "garden/tomatoes.md",
        "garden/compost.md",
        "site/parking.html",
        "manuals/pump.pdf",
        "faq",
    }


def test_the_cli_summary_namespace_and_refusals(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    corpus = write_corpus(tmp_path / "docs")
    key_id = digest("sk-some-client")[:16]

    done = ingest_cli(settings, corpus / "garden", "--namespace", key_id, json_report=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(
        "2 added, 0 replaced, 0 unchanged, 0 failed, 0 skipped; 2 chunks written"
    )
    assert f"namespace {key_id!r}" in done.stdout
    assert set(stored(settings, key_id)) == {"tomatoes.md", "compost.md"}  # relative to garden/
    assert stored(settings) == {}

    one = report_of(ingest_cli(settings, corpus / "site/parking.html"))
    assert (one["added"], one["skipped"]) == (1, 0)
    assert set(stored(settings)) == {"parking.html"}

    refused = ingest_cli(settings, corpus, "--namespace", "everyone")
    assert refused.returncode == 2
    assert "is not a namespace" in refused.stderr
    missing = ingest_cli(settings, tmp_path / "nowhere")
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr

    off = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "server.knowledge.cli", str(corpus)],
        cwd=tmp_path,
        env={**cli_env(settings), "KNOWLEDGE_ENABLED": "false"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert off.returncode == 1
    assert "KNOWLEDGE_ENABLED is off" in off.stderr


def test_make_ingest_path_takes_the_folder_and_still_finds_its_commands(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """`make ingest PATH=...` although PATH is the recipes' search path too (see Makefile)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine")
    settings = make_settings()
    corpus = write_corpus(tmp_path / "docs")
    (corpus / "manuals/broken.pdf").unlink()
    done = subprocess.run(  # noqa: S603 - make, fixed arguments
        [
            make,
            "--no-print-directory",
            "-f",
            str(ROOT / "Makefile"),
            "ingest",
            f"PATH={corpus}",
            f"VENV_PYTHON={sys.executable}",
        ],
        cwd=tmp_path,  # no .env of the checkout is read
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 added, 0 replaced, 0 unchanged, 0 failed, 2 skipped" in done.stdout
    assert len(stored(settings)) == 5


def test_a_v1_turn_answers_from_files_the_cli_ingested(
    make_settings: SettingsFactory, serve: Serve, tmp_path: Path
) -> None:
    settings = make_settings()
    corpus = write_corpus(tmp_path / "docs")
    ingest_cli(settings, corpus)
    app = serve(settings)

    answer = ask(app, "search the knowledge base for priming the water pump")
    assert answer.startswith('According to "Water pump manual" (manuals/pump.pdf)'), answer
    assert "two litres of water" in answer
    answer = ask(app, "What do the docs say about visitor parking tickets?")
    assert answer.startswith('According to "Parking rules" (site/parking.html)'), answer
    assert "front desk" in answer


# --- the admin routes ---------------------------------------------------------------------

CLIENT, ADMIN = "sk-client", "sk-operator"
CLIENT_ID = digest(CLIENT)[:16]

DOCS: list[dict[str, Any]] = [
    {
        "id": "runbooks/database.md",
        "title": "Database runbook",
        "source": "wiki/runbooks/database",
        "text": "To restart the PostgreSQL cluster, drain the replicas first, then run "
        "`pg_ctlcluster 16 main restart` on the primary.",
        "metadata": {"team": "platform"},
    },
    {
        "id": "hr/vacation",
        "title": "Vacation policy",
        "text": "Every employee has 25 vacation days a year; unused days carry over until March.",
    },
    {"id": "coffee", "text": "The espresso machine is descaled every Friday with citric acid."},
]


@pytest.fixture
def admin_app(make_settings: SettingsFactory, serve: Serve) -> ServedApp:
    return serve(make_settings(api_keys=[SecretStr(CLIENT)], admin_api_keys=[SecretStr(ADMIN)]))


def call(
    app: ServedApp,
    method: str,
    path: str,
    *,
    key: str | None = ADMIN,
    **kwargs: Any,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    headers.update(kwargs.pop("headers", {}))
    return httpx.request(method, f"{app.url}{path}", headers=headers, timeout=30, **kwargs)


def test_admin_routes_add_list_replace_and_delete_documents(admin_app: ServedApp) -> None:
    added = call(admin_app, "POST", "/admin/knowledge", json={"documents": DOCS})
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["object"] == "list"
    assert [(d["id"], d["status"]) for d in body["data"]] == [(d["id"], "added") for d in DOCS]
    assert all(d["chunks"] >= 1 for d in body["data"])

    again = call(admin_app, "POST", "/admin/knowledge", json={"documents": DOCS})
    assert [(d["status"], d["chunks"]) for d in again.json()["data"]] == [("unchanged", 0)] * 3

    changed = {**DOCS[2], "text": "The espresso machine was replaced by a tea kettle."}
    replaced = call(admin_app, "POST", "/admin/knowledge", json={"documents": [changed]})
    assert replaced.json()["data"] == [{"id": "coffee", "status": "replaced", "chunks": 1}]

    listed = call(admin_app, "GET", "/admin/knowledge")
    assert listed.status_code == 200
    documents = {d["id"]: d for d in listed.json()["data"]}
    assert set(documents) == {d["id"] for d in DOCS}
    runbook = documents["runbooks/database.md"]
    assert runbook["object"] == "knowledge.document"
    assert runbook["namespace"] == SHARED_NAMESPACE
    assert runbook["title"] == "Database runbook"
    assert runbook["source"] == "wiki/runbooks/database"
    assert runbook["metadata"] == {"team": "platform"}
    assert runbook["chunks"] == 1
    assert len(runbook["content_hash"]) == 64
    assert runbook["updated_at"]
    assert documents["coffee"]["title"] == "coffee"  # no title: the id
    assert documents["coffee"]["source"] is None

    gone = call(admin_app, "DELETE", "/admin/knowledge/runbooks/database.md")
    assert gone.status_code == 200
    assert gone.json() == {
        "id": "runbooks/database.md",
        "object": "knowledge.document",
        "deleted": True,
    }
    assert {d["id"] for d in call(admin_app, "GET", "/admin/knowledge").json()["data"]} == {
        "hr/vacation",
        "coffee",
    }
    twice = call(admin_app, "DELETE", "/admin/knowledge/runbooks/database.md")
    assert twice.status_code == 404
    assert twice.json()["error"]["code"] == "document_not_found"
    assert twice.json()["error"]["type"] == "not_found_error"


def test_admin_routes_keep_namespaces_apart(admin_app: ServedApp) -> None:
    mine = {"documents": DOCS[:1], "namespace": CLIENT_ID.upper()}  # case does not matter
    assert call(admin_app, "POST", "/admin/knowledge", json=mine).status_code == 200
    assert call(admin_app, "GET", "/admin/knowledge").json()["data"] == []
    listed = call(admin_app, "GET", "/admin/knowledge", params={"namespace": CLIENT_ID})
    assert [d["id"] for d in listed.json()["data"]] == ["runbooks/database.md"]
    everywhere = call(admin_app, "GET", "/admin/knowledge", params={"namespace": "*"})
    assert [d["namespace"] for d in everywhere.json()["data"]] == [CLIENT_ID]

    path = "/admin/knowledge/runbooks/database.md"
    assert call(admin_app, "DELETE", path).status_code == 404  # not in `shared`
    deleted = call(admin_app, "DELETE", path, params={"namespace": CLIENT_ID})
    assert deleted.status_code == 200


def test_admin_routes_need_the_admin_key(admin_app: ServedApp) -> None:
    for method, path in (
        ("POST", "/admin/knowledge"),
        ("GET", "/admin/knowledge"),
        ("DELETE", "/admin/knowledge/x"),
    ):
        body = {"documents": DOCS} if method == "POST" else None
        anonymous = call(admin_app, method, path, key=None, json=body)
        assert anonymous.status_code == 401, (method, anonymous.text)
        client = call(admin_app, method, path, key=CLIENT, json=body)
        assert client.status_code == 403, (method, client.text)
        assert client.json()["error"]["type"] == "permission_error"
    assert call(admin_app, "GET", "/admin/knowledge").json()["data"] == []  # nothing went in


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"documents": []}, "documents"),
        ({}, "documents"),
        ({"documents": [{"id": "a"}]}, "documents[0].text"),
        ({"documents": [{"id": "a", "text": "   "}]}, "documents[0].text"),
        ({"documents": [{"id": "", "text": "x"}]}, "documents[0].id"),
        ({"documents": [{"id": "a" * 513, "text": "x"}]}, "documents[0].id"),
        ({"documents": [{"id": "a", "text": "x", "colour": "red"}]}, "documents[0].colour"),
        ({"documents": [{"id": "a", "text": "x"}], "namespace": "everyone"}, "namespace"),
        ({"documents": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, None),
        ({"documents": [{"id": f"d{i}", "text": "x"} for i in range(1001)]}, "documents"),
    ],
    ids=[
        "no-documents",
        "no-list",
        "no-text",
        "blank-text",
        "empty-id",
        "long-id",
        "unknown-field",
        "bad-namespace",
        "repeated-id",
        "too-many",
    ],
)
def test_admin_post_refuses_bad_bodies_with_400(
    admin_app: ServedApp, body: dict[str, Any], param: str | None
) -> None:
    refused = call(admin_app, "POST", "/admin/knowledge", json=body)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_request"
    if param is not None:
        assert error["param"] == param
    assert call(admin_app, "GET", "/admin/knowledge").json()["data"] == []


def test_admin_bad_namespace_and_not_json_are_400(admin_app: ServedApp) -> None:
    listed = call(admin_app, "GET", "/admin/knowledge", params={"namespace": "0123"})
    assert listed.status_code == 400
    assert listed.json()["error"]["param"] == "namespace"
    deleted = call(admin_app, "DELETE", "/admin/knowledge/x", params={"namespace": "nobody"})
    assert deleted.status_code == 400
    garbled = call(
        admin_app,
        "POST",
        "/admin/knowledge",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert garbled.status_code == 400


def test_admin_routes_answer_503_without_a_knowledge_base(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(admin_api_keys=[SecretStr(ADMIN)], knowledge_enabled=False))
    refused = call(app, "POST", "/admin/knowledge", json={"documents": DOCS})
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "knowledge_unavailable"
    assert call(app, "GET", "/admin/knowledge").status_code == 503


def test_a_v1_turn_finds_what_the_admin_route_added(admin_app: ServedApp) -> None:
    assert "According to" not in ask(admin_app, "search the knowledge base for vacation", CLIENT)
    assert call(admin_app, "POST", "/admin/knowledge", json={"documents": DOCS}).status_code == 200

    answer = ask(admin_app, "search the knowledge base for vacation days", CLIENT)
    assert answer.startswith('According to "Vacation policy" (document hr/vacation)'), answer
    assert "25 vacation days" in answer
    answer = ask(admin_app, "What do the docs say about restarting the PostgreSQL cluster?", CLIENT)
    assert answer.startswith('According to "Database runbook" (wiki/runbooks/database)'), answer
    assert "pg_ctlcluster 16 main restart" in answer
