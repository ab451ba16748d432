"""The SQL of `server.stores.response_store`: its tables, indexes, the saver's table it reads."""

from __future__ import annotations

from typing import Final

POSTGRES_TABLE: Final = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    response JSONB NOT NULL,
    input_items JSONB NOT NULL,
    metadata JSONB NOT NULL
)
"""

SQLITE_TABLE: Final = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at REAL NOT NULL,
    response TEXT NOT NULL,
    input_items TEXT NOT NULL,
    metadata TEXT NOT NULL
)
"""

THREAD_INDEX: Final = "CREATE INDEX IF NOT EXISTS responses_thread ON responses (thread_id)"
"""Retention deletes a thread's responses with its checkpoints."""

ITEMS_TABLE: Final = """
CREATE TABLE IF NOT EXISTS response_items (
    key_id TEXT NOT NULL,
    id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    item {json} NOT NULL,
    PRIMARY KEY (key_id, id, response_id)
)
"""
"""One row per item of a stored response; an item sent again (by reference) is on each."""

ITEMS_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS response_items_response ON response_items (response_id)"
)

POSTGRES_BACKFILL: Final = """
INSERT INTO response_items (key_id, id, response_id, item)
SELECT r.key_id, e.item->>'id', r.id, e.item FROM responses r,
    jsonb_array_elements(r.input_items || COALESCE(r.response->'output', '[]'::jsonb)) e(item)
WHERE e.item->>'id' IS NOT NULL
ON CONFLICT DO NOTHING
"""

SQLITE_BACKFILL: Final = """
INSERT OR IGNORE INTO response_items (key_id, id, response_id, item)
SELECT r.key_id, json_extract(e.value, '$.id'), r.id, e.value
FROM responses r, json_each(r.input_items) e
WHERE json_extract(e.value, '$.id') IS NOT NULL
UNION ALL
SELECT r.key_id, json_extract(e.value, '$.id'), r.id, e.value
FROM responses r, json_each(r.response, '$.output') e
WHERE json_extract(e.value, '$.id') IS NOT NULL
"""

LATEST: Final = (
    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = ''"
    " ORDER BY checkpoint_id DESC LIMIT 1"
)
"""The newest checkpoint of a thread, from the checkpointer's own table (the query its
`aget_tuple` runs, without loading the checkpoint: a turn's record costs the same on a
long thread as on a new one)."""

COLUMNS: Final = (
    "id, key_id, thread_id, checkpoint_id, model, created_at, response, input_items, metadata"
)
