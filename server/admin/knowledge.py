"""`/admin/knowledge`: add, list and delete the knowledge base's documents over HTTP.

For operators (the `/admin` keys, see `server.admin.admin`), beside `make ingest`: a
document is JSON (`id`, `text`, optional `title`, `source`, `metadata`), in a namespace
(`shared` unless told: every caller searches it; or a key id, or `anonymous`). A POST is
idempotent: a document whose title and text are the stored ones is `unchanged` and costs no
embedding; a changed one is `replaced`, all its chunks at once. Documents are ingested one
after another: when the store fails midway (503), the ones before stay, and the same POST
again finishes the job.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from graph.errors import ErrorCode
from nodes.tools.knowledge import SHARED_NAMESPACE, KnowledgeUnavailableError
from server.errors import OpenAIHTTPError, error_responses
from server.knowledge.namespaces import NAMESPACE_HELP, parse_namespace
from server.knowledge.service import STORE_ERRORS, Document
from server.knowledge.store import DocumentInfo, EmbeddingsUnavailableError
from server.knowledge.titles import markdown_title
from server.wiring.deps import KnowledgeDep, authenticate_operator

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(authenticate_operator)])

MAX_DOCUMENTS = 1000
"""Documents one POST may carry (the request body is bounded by MAX_REQUEST_BYTES too)."""
MAX_ID_CHARS = 512


class DocumentIn(BaseModel):
    """A document to add or replace."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    """Unique in its namespace; re-POSTing an id replaces that document."""
    text: str = Field(min_length=1)
    title: str = Field(default="", max_length=1000)
    """Default: the text's first `# ` heading, else the id."""
    """Shown with its passages (default: the id)."""
    source: str | None = Field(default=None, max_length=2048)
    """Where it comes from (a path, a URL), named with its passages."""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class IngestRequest(BaseModel):
    """`POST /admin/knowledge`."""

    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    namespace: str = SHARED_NAMESPACE
    """`shared`, a key id (16 hex characters), or `anonymous`."""

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return parse_namespace(value)

    @model_validator(mode="after")
    def _unique_ids(self) -> IngestRequest:
        seen: dict[str, int] = {}
        for index, document in enumerate(self.documents):
            if document.id in seen:
                raise ValueError(
                    f"documents[{index}].id {document.id!r} repeats documents[{seen[document.id]}]"
                )
            seen[document.id] = index
        return self


class IngestedDocument(BaseModel):
    """What a POST did with one document."""

    id: str
    status: Literal["added", "replaced", "unchanged"]
    chunks: int
    """Chunks written (0 when unchanged)."""


class IngestResult(BaseModel):
    """`POST /admin/knowledge`: one line per document, in the request's order."""

    object: Literal["list"] = "list"
    data: list[IngestedDocument]


class KnowledgeDocument(BaseModel):
    """A stored document (its text lives in its chunks)."""

    object: Literal["knowledge.document"] = "knowledge.document"
    id: str
    namespace: str
    title: str
    source: str | None
    content_hash: str
    """SHA-256 of the title and text: what tells an unchanged document from a changed one."""
    chunks: int
    updated_at: datetime
    metadata: dict[str, Any]


class KnowledgeDocumentList(BaseModel):
    """`GET /admin/knowledge`: the namespace's documents, newest first."""

    object: Literal["list"] = "list"
    data: list[KnowledgeDocument]


class DeletedDocument(BaseModel):
    """`DELETE /admin/knowledge/{id}`."""

    id: str
    object: Literal["knowledge.document"] = "knowledge.document"
    deleted: Literal[True] = True


def _namespace_param(value: str) -> str:
    try:
        return parse_namespace(value)
    except ValueError:
        raise OpenAIHTTPError(
            400,
            f"Invalid 'namespace': {value!r}; give {NAMESPACE_HELP}.",
            code=ErrorCode.INVALID_REQUEST,
            param="namespace",
        ) from None


@contextmanager
def _unavailable_as_503() -> Iterator[None]:
    """A store or embedding failure as 503 `knowledge_unavailable` (retry shortly)."""
    try:
        yield
    except (*STORE_ERRORS, EmbeddingsUnavailableError, KnowledgeUnavailableError) as error:
        raise OpenAIHTTPError(
            503,
            f"The knowledge base cannot be reached right now ({type(error).__name__}); "
            "retry shortly.",
            code=ErrorCode.KNOWLEDGE_UNAVAILABLE,
            headers={"retry-after": "2"},
        ) from None


def _listed(info: DocumentInfo) -> KnowledgeDocument:
    return KnowledgeDocument(
        id=info.id,
        namespace=info.namespace,
        title=info.title,
        source=info.source,
        content_hash=info.content_hash,
        chunks=info.chunks,
        updated_at=info.updated_at,
        metadata=info.metadata,
    )


NamespaceQuery = Annotated[str, Query(description=f"{NAMESPACE_HELP}; `*` lists every one")]


@router.post(
    "/knowledge", response_model=IngestResult, responses=error_responses(400, 401, 403, 503)
)
async def add_documents(body: IngestRequest, knowledge: KnowledgeDep) -> IngestResult:
    """Add or replace documents; unchanged ones are skipped by content hash."""
    documents = [
        Document(
            id=d.id,
            text=d.text,
            title=d.title or markdown_title(d.text),
            source=d.source,
            metadata=dict(d.metadata),
        )
        for d in body.documents
    ]
    with _unavailable_as_503():
        outcomes = await knowledge.ingest(documents, namespace=body.namespace)
    return IngestResult(
        data=[IngestedDocument.model_validate(o, from_attributes=True) for o in outcomes]
    )


@router.get(
    "/knowledge",
    response_model=KnowledgeDocumentList,
    responses=error_responses(400, 401, 403, 503),
)
async def list_documents(
    knowledge: KnowledgeDep, namespace: NamespaceQuery = SHARED_NAMESPACE
) -> KnowledgeDocumentList:
    """The documents of a namespace (`*`: of all), newest first, with their chunk counts."""
    chosen = None if namespace.strip() == "*" else _namespace_param(namespace)
    with _unavailable_as_503():
        documents = await knowledge.documents(chosen)
    return KnowledgeDocumentList(data=[_listed(info) for info in documents])


@router.delete(
    "/knowledge/{document_id:path}",
    response_model=DeletedDocument,
    responses=error_responses(400, 401, 403, 404, 503),
)
async def delete_document(
    document_id: str, knowledge: KnowledgeDep, namespace: NamespaceQuery = SHARED_NAMESPACE
) -> DeletedDocument:
    """Delete a document and its chunks."""
    chosen = _namespace_param(namespace)
    with _unavailable_as_503():
        deleted = await knowledge.delete(document_id, namespace=chosen)
    if not deleted:
        raise OpenAIHTTPError(
            404,
            f"No document {document_id!r} in namespace {chosen!r}.",
            code=ErrorCode.DOCUMENT_NOT_FOUND,
            param="id",
        )
    return DeletedDocument(id=document_id)
