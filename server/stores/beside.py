"""Opening a store that keeps its tables beside the checkpoints, in the saver's database.

The response store, the LangGraph API's thread and assistant records, the image store and
the memory store each open the same way: PostgreSQL on the checkpointer's own pool when
the saver runs on one, else the SQLite file of SQLITE_PATH on a connection of their own
(the saver's connection is its own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol, TypeVar

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver

from server.settings import Settings
from server.stores.checkpointer import Pool, connection_pool

__all__ = ["SQLITE_BUSY_SECONDS", "Setup", "open_beside_checkpoints", "sqlite_beside_checkpoints"]

SQLITE_BUSY_SECONDS: Final = 5.0
"""How long a SQLite write waits for the checkpointer's write to finish."""


class Setup(Protocol):
    """A store that creates its tables (if they are missing) before its first use."""

    async def setup(self) -> None:
        """Create the store's tables and indexes if they are missing."""


OnPool = TypeVar("OnPool", bound=Setup)
OnFile = TypeVar("OnFile", bound=Setup)


@asynccontextmanager
async def sqlite_beside_checkpoints(
    settings: Settings, *, isolation_level: str | None = ""
) -> AsyncIterator[aiosqlite.Connection]:
    """A connection of its own to the SQLite checkpoint file (SQLITE_PATH), closed on exit.

    `isolation_level`: sqlite3's (None: autocommit; the default: its transactions).
    """
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(
        str(path), timeout=SQLITE_BUSY_SECONDS, isolation_level=isolation_level
    ) as conn:
        yield conn


@asynccontextmanager
async def open_beside_checkpoints(
    settings: Settings,
    saver: BaseCheckpointSaver[Any],
    postgres: Callable[[Pool], OnPool],
    sqlite: Callable[[aiosqlite.Connection], OnFile],
) -> AsyncIterator[OnPool | OnFile]:
    """The store in the database of `saver` (opened by `open_checkpointer`), set up.

    Args:
        settings: Where the SQLite file is.
        saver: The checkpointer.
        postgres: The store on a pool, when the saver runs on one.
        sqlite: The store on a connection to the SQLite file, else.
    """
    pool = connection_pool(saver)
    if pool is not None:
        store = postgres(pool)
        await store.setup()
        yield store
        return
    async with sqlite_beside_checkpoints(settings) as conn:
        sqlite_store = sqlite(conn)
        await sqlite_store.setup()
        yield sqlite_store
