"""Opens the checkpointer: PostgreSQL on a psycopg pool when configured, else a SQLite file.

PostgreSQL connections die under a running service: a restart (`pg_ctl restart -m fast`), a
failover, a proxy that drops idle connections. Without care, every pooled connection that
died fails one request with `AdminShutdown` before the pool replaces it. Here:

* the pool tests a connection before handing it out (`check`; not again within CHECKED_FOR
  of its last test, so a busy pool does not pay a round trip per checkout), and when one
  turns out dead it tests every idle one at once: a restart kills them all together, and
  the pool would otherwise pause (1 s, 2 s, 4 s, ...) before trying each next dead one
  (`_CheckAll`);
* idle connections beyond the pool's minimum are closed after DATABASE_POOL_MAX_IDLE, before
  a proxy's idle timeout can drop them silently; lost ones are reopened for up to
  DATABASE_RECONNECT_TIMEOUT, each attempt bounded by DATABASE_CONNECT_TIMEOUT;
* `ReconnectingPostgresSaver` runs a checkpointer call once more when the connection is lost
  in the middle of it (the race the check cannot close, or a connection handed out
  unchecked), after testing every idle connection;
* sessions carry an `application_name`, so a DBA sees who they are in `pg_stat_activity`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar
from weakref import WeakKeyDictionary

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from server.settings import Settings
from server.store_errors import connection_lost, store_unavailable

__all__ = ["connection_lost", "once_more", "open_checkpointer", "store_unavailable"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]

#: Connections the pool keeps open even when idle (fewer if DATABASE_POOL_SIZE is smaller).
MIN_POOL_SIZE: Final = 4

#: Seconds after a successful check during which a connection is handed out unchecked.
CHECKED_FOR: Final = 1.0


class _NoLock(asyncio.Lock):
    """What `AsyncPostgresSaver` takes around every operation, for a saver on a pool: nothing.

    Upstream serialises all operations of a saver through one `asyncio.Lock` (langgraph
    issue 7259), which a single shared connection needs; on a pool every operation takes
    its own connection, and the lock only makes concurrent turns wait for each other's
    checkpoints. The pool bounds the connections and queues the rest (DATABASE_POOL_TIMEOUT).
    """

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


async def once_more(pool: object, operation: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run `call`, and once more on a new connection if its connection was lost.

    For every query on the checkpointer's pool: the saver's (`ReconnectingPostgresSaver`)
    and the tables beside it (responses, images, the thread list). Only a lost connection
    (`connection_lost`) is retried, after the pool dropped its dead idle connections; the
    caller's query must be safe to run twice (a read, an upsert, a delete). A connection
    checked moments ago is handed out unchecked (`CHECKED_FOR`), so a restart right after a
    request meets one: without this, that request would answer 503.
    """
    try:
        return await call()
    except psycopg.OperationalError as error:
        if not connection_lost(error):
            raise
        _log_retry(operation, error)
    if isinstance(pool, AsyncConnectionPool):
        # The server went away: drop every dead idle connection before trying again.
        await pool.check()
    return await call()


class ReconnectingPostgresSaver(AsyncPostgresSaver):
    """`AsyncPostgresSaver` that runs a call once more when its connection was lost.

    The pool's check catches connections that died while idle; this covers the ones that
    die between that check and the reply (a restart during a request). Only a lost
    connection (`connection_lost`) is retried, once, on a new connection:

    * reads (`aget_tuple`, `aget_delta_channel_history`) have no effect to repeat; `alist`
      is retried only before it yielded anything, so a caller never sees an item twice;
    * writes (`aput`, `aput_writes`, `adelete_thread`) run in one pipeline, which the server
      applies all or nothing, and are idempotent by key (upserts of a checkpoint, its blobs
      and a task's writes by their ids; deletes of a thread). A session ended by the server
      had its work rolled back; when the socket merely broke, the write may or may not have
      landed, and running it again stores exactly the same rows.

    The sync methods of `AsyncPostgresSaver` run these coroutines, so they retry too.
    On a pool, operations run concurrently, without the saver's instance-wide lock.
    """

    def __init__(self, conn: Pool, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        if isinstance(conn, AsyncConnectionPool):
            self.lock = _NoLock()

    async def _once_more(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        return await once_more(self.conn, f"checkpoint {operation}", call)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """`AsyncPostgresSaver.aget_tuple`, once more on a lost connection."""
        read = super().aget_tuple
        return await self._once_more("read", lambda: read(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """`AsyncPostgresSaver.alist`, once more on a lost connection before the first item."""
        list_ = super().alist
        yielded = False
        try:
            async for item in list_(config, filter=filter, before=before, limit=limit):
                yielded = True
                yield item
            return
        except psycopg.OperationalError as error:
            if yielded or not connection_lost(error):
                raise
            _log_retry("checkpoint list", error)
        async for item in list_(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """`AsyncPostgresSaver.aput` (an upsert by checkpoint id), once more likewise."""
        put = super().aput
        return await self._once_more(
            "write", lambda: put(config, checkpoint, metadata, new_versions)
        )

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`AsyncPostgresSaver.aput_writes` (keyed by task and index), once more likewise."""
        put_writes = super().aput_writes
        await self._once_more(
            "write_pending", lambda: put_writes(config, writes, task_id, task_path)
        )

    async def adelete_thread(self, thread_id: str) -> None:
        """`AsyncPostgresSaver.adelete_thread`, once more on a lost connection."""
        delete = super().adelete_thread
        await self._once_more("delete", lambda: delete(thread_id))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """`AsyncPostgresSaver.aget_delta_channel_history`, once more on a lost connection."""
        history = super().aget_delta_channel_history
        return await self._once_more("read", lambda: history(config=config, channels=channels))


def _log_retry(operation: str, error: psycopg.OperationalError) -> None:
    logger.warning(
        "%s: the PostgreSQL connection was lost (%s: %s); trying once more",
        operation,
        type(error).__name__,
        str(error).splitlines()[0] if str(error) else "",
    )


class _CheckAll:
    """The pool's `check`: a dead connection makes it test every idle connection at once.

    After a failed check psycopg_pool tries the next idle connection, but from the second
    failure on only after a backoff pause that doubles each time (1 s, 2 s, 4 s, ...). A
    restart kills every idle connection, so the request that met the first would wait for
    the pool to work through all of them (7 s for four). `pool.check()` drops every dead
    idle connection now and opens replacements: that request's next try gets a new one.
    """

    def __init__(self) -> None:
        self.pool: Pool | None = None
        self._checked: WeakKeyDictionary[psycopg.AsyncConnection[DictRow], float] = (
            WeakKeyDictionary()
        )

    async def __call__(self, conn: psycopg.AsyncConnection[DictRow]) -> None:
        # A check is a round trip and a transaction of its own: under load, when the same
        # connections come back within milliseconds, it would double a turn's transactions.
        # One checked moments ago is handed out as it is; if the server went away in between,
        # the saver's retry checks the whole pool (`ReconnectingPostgresSaver._once_more`).
        now = time.monotonic()
        if now - self._checked.get(conn, -CHECKED_FOR) < CHECKED_FOR:
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
            self._checked[conn] = now
        except psycopg.Error:
            logger.warning("a pooled PostgreSQL connection is dead; checking all idle ones")
            if self.pool is not None:
                await self.pool.check()
            raise


def _psycopg_dsn(url: str) -> str:
    """Accept SQLAlchemy-style `postgresql+psycopg://` URLs too."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def connection_kwargs(dsn: str, settings: Settings, application_name: str) -> dict[str, Any]:
    """What every pooled connection is opened with, on top of the DSN.

    `application_name` and `connect_timeout` are added only when the DSN does not set them:
    an operator's URL wins.
    """
    given = conninfo_to_dict(dsn)
    kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    if "application_name" not in given:
        kwargs["application_name"] = application_name
    if "connect_timeout" not in given:
        kwargs["connect_timeout"] = settings.database_connect_timeout
    return kwargs


def _reconnect_failed(pool: Pool) -> None:
    logger.error(
        "PostgreSQL: gave up reopening a connection of pool %s; it opens new ones on demand",
        pool.name,
    )


def connection_pool(saver: BaseCheckpointSaver[Any]) -> Pool | None:
    """The psycopg pool under a PostgreSQL saver (for its stats); None for SQLite."""
    pool = saver.conn if isinstance(saver, AsyncPostgresSaver) else None
    return pool if isinstance(pool, AsyncConnectionPool) else None


@asynccontextmanager
async def open_checkpointer(
    settings: Settings, *, application_name: str | None = None
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the saver, run its migrations (`setup()`), and close it on exit.

    Args:
        settings: Where the checkpoints live and how to connect.
        application_name: How this process's sessions are named in PostgreSQL (default
            DATABASE_APPLICATION_NAME); tools such as retention name themselves apart.
    """
    if settings.database_url is not None:
        dsn = _psycopg_dsn(settings.database_url.get_secret_value())
        name = application_name or settings.database_application_name
        check = _CheckAll()
        pool: Pool
        async with AsyncConnectionPool(
            conninfo=dsn,
            min_size=min(MIN_POOL_SIZE, settings.database_pool_size),
            max_size=settings.database_pool_size,
            kwargs=connection_kwargs(dsn, settings, name),
            check=check,
            max_idle=settings.database_pool_max_idle,
            reconnect_timeout=settings.database_reconnect_timeout,
            timeout=settings.database_pool_timeout,
            reconnect_failed=_reconnect_failed,
            name=name,
            open=False,
        ) as pool:
            check.pool = pool
            await pool.wait()
            saver = ReconnectingPostgresSaver(pool)
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
