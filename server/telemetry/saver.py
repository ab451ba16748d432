"""Times every checkpointer read and write, and reads a turn's thread once.

`InstrumentedSaver` wraps the real checkpointer (in the lifespan) and feeds
`checkpoint_duration` and `checkpoint_errors` by operation.

A turn reads its thread twice: the door reads it to reconcile the request with it
(`server.turns.prepare.prepare_run`), then LangGraph reads the same checkpoint again to start the
run, deserialising the whole thread each time. Both reads happen in the request's task, under the
thread's lock, so nothing can write the thread between them: the first read is kept for the
task (a context variable) and the next read of the same checkpoint is answered with it, once.
Any write or delete through this saver drops what was kept.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from server.telemetry.metrics import Metrics

T = TypeVar("T")

ReadKey = tuple[str, str, str | None]
"""A read's thread, namespace and checkpoint id (None: the latest)."""


class _Kept:
    """The last read of a request, shared by the tasks the request starts.

    A stream's task sees and consumes what the handler read, and the handler then sees it
    consumed: a context variable holding a plain value would be copied into the task.
    """

    __slots__ = ("found", "key")

    def __init__(self) -> None:
        self.key: ReadKey | None = None
        self.found: CheckpointTuple | None = None


_kept: ContextVar[_Kept | None] = ContextVar("kept_checkpoint_read", default=None)


def _forget() -> None:
    kept = _kept.get()
    if kept is not None:
        kept.key = None
        kept.found = None


def _read_key(config: RunnableConfig) -> ReadKey | None:
    configurable = config.get("configurable") or {}
    thread = configurable.get("thread_id")
    if not isinstance(thread, str):
        return None
    return thread, str(configurable.get("checkpoint_ns") or ""), configurable.get("checkpoint_id")


class InstrumentedSaver(BaseCheckpointSaver[Any]):
    """Delegates to a real checkpointer and times each call by operation.

    Operations: `read` (get_tuple), `write` (put), `write_pending` (put_writes), `list`,
    `delete` (delete_thread, delete_for_runs, prune), `copy`. Anything else (`setup`, the
    pool, ...) is passed straight through.
    """

    def __init__(self, inner: BaseCheckpointSaver[Any], metrics: Metrics) -> None:
        super().__init__(serde=inner.serde)
        self.serde = inner.serde
        self.inner = inner
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes this class lacks; `inner` itself missing means a
        # half-built copy, which must not recurse.
        if name == "inner" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _timed(self, operation: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        except Exception:
            self._metrics.checkpoint_errors.labels(operation=operation).inc()
            raise
        finally:
            self._observe(operation, started)

    async def _atimed(self, operation: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return await call()
        except Exception:
            self._metrics.checkpoint_errors.labels(operation=operation).inc()
            raise
        finally:
            self._observe(operation, started)

    def _observe(self, operation: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        self._metrics.checkpoint_duration.labels(operation=operation).observe(elapsed)

    @property
    def config_specs(self) -> list[Any]:
        """The wrapped saver's configurable fields."""
        specs: list[Any] = self.inner.config_specs
        return specs

    def get_next_version(self, current: Any, channel: None) -> Any:
        """The wrapped saver's versioning (it must match what it stores)."""
        return self.inner.get_next_version(current, channel)

    def with_allowlist(
        self, extra_allowlist: Collection[tuple[str, ...]]
    ) -> BaseCheckpointSaver[Any]:
        """The wrapped saver's allowlisted clone, still instrumented."""
        inner = self.inner.with_allowlist(extra_allowlist)
        return self if inner is self.inner else InstrumentedSaver(inner, self._metrics)

    # sync

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Timed `read`."""
        return self._timed("read", lambda: self.inner.get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Timed `list` (until exhausted)."""
        started = time.perf_counter()
        try:
            yield from self.inner.list(config, filter=filter, before=before, limit=limit)
        finally:
            self._observe("list", started)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Timed `write`."""
        return self._timed(
            "write", lambda: self.inner.put(config, checkpoint, metadata, new_versions)
        )

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Timed `write_pending`."""
        self._timed(
            "write_pending", lambda: self.inner.put_writes(config, writes, task_id, task_path)
        )

    def delete_thread(self, thread_id: str) -> None:
        """Timed `delete`."""
        self._timed("delete", lambda: self.inner.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Timed `delete`."""
        self._timed("delete", lambda: self.inner.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Timed `copy`."""
        self._timed("copy", lambda: self.inner.copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Timed `delete`."""
        self._timed("delete", lambda: self.inner.prune(thread_ids, strategy=strategy))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Timed `read` (the wrapped saver may have a faster walk than the base class)."""
        return self._timed(
            "read", lambda: self.inner.get_delta_channel_history(config=config, channels=channels)
        )

    # async

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Timed `read`; the same read again in this task is answered from the first, once."""
        key = _read_key(config)
        kept = _kept.get()
        if key is not None and kept is not None and kept.key == key:
            found = kept.found
            _forget()
            return found
        result: CheckpointTuple | None = await self._atimed(
            "read", lambda: self.inner.aget_tuple(config)
        )
        if kept is None:
            kept = _Kept()
            _kept.set(kept)
        kept.key, kept.found = key, result
        return result

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Timed `list` (until exhausted)."""
        started = time.perf_counter()
        try:
            async for item in self.inner.alist(config, filter=filter, before=before, limit=limit):
                yield item
        finally:
            self._observe("list", started)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Timed `write`."""
        _forget()
        result: RunnableConfig = await self._atimed(
            "write", lambda: self.inner.aput(config, checkpoint, metadata, new_versions)
        )
        return result

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Timed `write_pending`."""
        _forget()
        await self._atimed(
            "write_pending", lambda: self.inner.aput_writes(config, writes, task_id, task_path)
        )

    async def adelete_thread(self, thread_id: str) -> None:
        """Timed `delete`."""
        _forget()
        await self._atimed("delete", lambda: self.inner.adelete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Timed `delete`."""
        _forget()
        await self._atimed("delete", lambda: self.inner.adelete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Timed `copy`."""
        _forget()
        await self._atimed(
            "copy", lambda: self.inner.acopy_thread(source_thread_id, target_thread_id)
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Timed `delete`."""
        _forget()
        await self._atimed("delete", lambda: self.inner.aprune(thread_ids, strategy=strategy))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Timed `read`."""
        result: Mapping[str, DeltaChannelHistory] = await self._atimed(
            "read",
            lambda: self.inner.aget_delta_channel_history(config=config, channels=channels),
        )
        return result
