"""Retention on real checkpointers: idle threads go, active ones stay."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint

from server.settings import Settings
from server.stores.checkpointer import open_checkpointer
from server.stores.response_store import StoredResponse, open_response_store
from server.stores.retention import parse_duration, purge
from tests.conftest import SettingsFactory

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("postgres_url"))
    return make_settings()


async def write_thread(saver: BaseCheckpointSaver[Any], thread_id: str, *ages: timedelta) -> None:
    """Checkpoints of a thread at the given ages, each with a pending write."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    for age in sorted(ages, reverse=True):
        checkpoint = empty_checkpoint()
        checkpoint["ts"] = (NOW - age).isoformat()
        config = await saver.aput(config, checkpoint, {"source": "input", "step": -1}, {})
        await saver.aput_writes(config, [("messages", "pending")], task_id="t")


async def stored_threads(saver: BaseCheckpointSaver[Any]) -> set[str]:
    return {str(t.config["configurable"]["thread_id"]) async for t in saver.alist(None)}


async def test_threads_idle_longer_than_the_ttl_are_deleted(store: Settings) -> None:
    async with open_checkpointer(store) as saver:
        await write_thread(saver, "old", timedelta(days=60), timedelta(days=40))
        await write_thread(saver, "old-too", timedelta(days=31))
        # Started long ago but used yesterday: its newest checkpoint decides.
        await write_thread(saver, "ongoing", timedelta(days=90), timedelta(days=1))
        await write_thread(saver, "new", timedelta(hours=1))

        dry = await purge(saver, timedelta(days=30), dry_run=True)
        assert dry.thread_ids == ["old", "old-too"]
        assert await stored_threads(saver) == {"old", "old-too", "ongoing", "new"}

        report = await purge(saver, timedelta(days=30))
        assert report.as_dict()["deleted"] == 2
        assert await stored_threads(saver) == {"ongoing", "new"}
        gone: RunnableConfig = {"configurable": {"thread_id": "old", "checkpoint_ns": ""}}
        assert await saver.aget_tuple(gone) is None


def response_of(thread_id: str, response_id: str) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        key_id="k",
        thread_id=thread_id,
        checkpoint_id="c",
        model="offline",
        created_at=NOW.timestamp(),
        response={"id": response_id, "output": [{"type": "message", "content": "secret"}]},
        input_items=[{"type": "message", "role": "user", "content": "private"}],
    )


async def test_a_deleted_threads_stored_responses_go_with_it(store: Settings) -> None:
    async with open_checkpointer(store) as saver, open_response_store(store, saver) as rows:
        await write_thread(saver, "old", timedelta(days=40))
        await write_thread(saver, "new", timedelta(hours=1))
        for thread_id, response_id in (("old", "resp_a"), ("old", "resp_b"), ("new", "resp_c")):
            await rows.save(response_of(thread_id, response_id))

        dry = await purge(saver, timedelta(days=30), dry_run=True, responses=rows)
        assert dry.responses == 0
        assert await rows.get("resp_a", "k") is not None

        report = await purge(saver, timedelta(days=30), responses=rows)
        assert report.as_dict()["responses_deleted"] == 2
        assert await rows.get("resp_a", "k") is None
        assert await rows.get("resp_b", "k") is None
        assert await rows.get("resp_c", "k") is not None  # its thread is in use


@pytest.mark.postgres
def test_the_command_prints_a_json_report(
    make_settings: SettingsFactory, postgres_url: str
) -> None:
    async def seed() -> None:
        async with open_checkpointer(make_settings(database_url=postgres_url)) as saver:
            await write_thread(saver, "stale", timedelta(days=45))
            await write_thread(saver, "fresh", timedelta(minutes=5))

    asyncio.run(seed())
    env = {**os.environ, "DATABASE_URL": postgres_url}

    def command(*args: str) -> dict[str, Any]:
        done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "server.stores.retention", "--older-than", "30d", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    dry = command("--dry-run")
    assert (dry["dry_run"], dry["deleted"], dry["thread_ids"]) == (True, 0, ["stale"])
    real = command()
    assert (real["deleted"], real["thread_ids"]) == (1, ["stale"])
    assert command()["thread_ids"] == []


def test_durations() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("1.5m") == timedelta(seconds=90)
    for bad in ("30", "d", "-1d", "0s", "3y"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)
