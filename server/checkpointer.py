"""Opens the checkpointer: PostgreSQL on a psycopg pool when configured, else a SQLite file."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from server.settings import Settings

logger = logging.getLogger(__name__)


def _psycopg_dsn(url: str) -> str:
    """Accept SQLAlchemy-style `postgresql+psycopg://` URLs too."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


@asynccontextmanager
async def open_checkpointer(settings: Settings) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the saver, run its migrations (`setup()`), and close it on exit."""
    if settings.database_url is not None:
        dsn = _psycopg_dsn(settings.database_url.get_secret_value())
        async with AsyncConnectionPool(
            conninfo=dsn,
            max_size=settings.database_pool_size,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=False,
        ) as pool:
            await pool.wait()
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            logger.info("checkpoints in PostgreSQL")
            yield saver
        return
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as sqlite_saver:
        await sqlite_saver.setup()
        logger.info("checkpoints in SQLite file %s", path)
        yield sqlite_saver
