"""The rows of `graph_threads` (the LangGraph API's thread records), for either database.

The table's definition, its columns in the order every query reads them, and a row as a
`ThreadRecord` (`server.stores.graph_thread_sql` on PostgreSQL, `graph_thread_sqlite` on
SQLite).
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal, cast

from server.stores.graph_threads import SortBy, ThreadRecord, ThreadStatus

__all__ = ["COLUMNS", "KEY_INDEX", "METADATA_INDEX", "TABLE", "order_by", "record_of"]

COLUMNS: Final = "stored_id, key_id, metadata, created_at, updated_at, status, error"

TABLE: Final = """
CREATE TABLE IF NOT EXISTS graph_threads (
    stored_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    metadata {json} NOT NULL,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    status TEXT NOT NULL DEFAULT 'idle',
    error TEXT
)
"""

KEY_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS graph_threads_key ON graph_threads (key_id, created_at)"
)
METADATA_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS graph_threads_metadata"
    " ON graph_threads USING gin (metadata jsonb_path_ops)"
)

ORDER_COLUMNS: Final[dict[str, str]] = {
    "thread_id": "stored_id",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "status": "status",
}
"""The column of each `sort_by` (constants only ever reach the SQL)."""


def record_of(row: Any, *, parse: bool) -> ThreadRecord:
    """A row as a record (`parse`: its metadata is JSON text, as SQLite keeps it)."""
    metadata = row[2]
    return ThreadRecord(
        stored_id=str(row[0]),
        key_id=str(row[1]),
        metadata=json.loads(metadata) if parse else dict(metadata),
        created_at=float(row[3]),
        updated_at=float(row[4]),
        status=cast(ThreadStatus, str(row[5])),
        error=None if row[6] is None else str(row[6]),
    )


def order_by(sort_by: SortBy, sort_order: Literal["asc", "desc"]) -> str:
    """The `ORDER BY` of a search (constants only: never the client's text)."""
    direction = "ASC" if sort_order == "asc" else "DESC"
    return f"{ORDER_COLUMNS.get(sort_by, 'created_at')} {direction}, stored_id {direction}"
