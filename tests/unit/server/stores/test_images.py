"""The `images` table in the checkpointer's database: real SQLite and real PostgreSQL."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from nodes.images import StoredImage
from server.settings import Settings
from server.stores.checkpointer import open_checkpointer
from server.stores.images import PostgresImageStore, SqliteImageStore, open_image_store
from tests.conftest import SettingsFactory

CAT = StoredImage("image/png", b"\x89PNG cat")
DOG = StoredImage("image/jpeg", b"\xff\xd8 dog")


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, make_settings: SettingsFactory) -> Settings:
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("postgres_url"))
    return make_settings()


def count_rows(settings: Settings) -> int:
    """Rows of the `images` table, read with a plain client of the database."""
    query = "SELECT count(*) FROM images"
    if settings.database_url is not None:
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            row = conn.execute(query).fetchone()
    else:
        with sqlite3.connect(settings.sqlite_path) as lite:
            row = lite.execute(query).fetchone()
    assert row is not None
    return int(row[0])


async def test_an_image_is_stored_once_and_read_back(settings: Settings) -> None:
    async with open_checkpointer(settings) as saver, open_image_store(settings, saver) as store:
        kind = PostgresImageStore if settings.database_url else SqliteImageStore
        assert isinstance(store, kind)
        await store.save({"a" * 64: CAT})
        await store.save({"a" * 64: CAT, "b" * 64: DOG})  # the cat again: nothing changes

        found = await store.load(["a" * 64, "b" * 64, "c" * 64])

    assert found == {"a" * 64: CAT, "b" * 64: DOG}
    assert count_rows(settings) == 2


async def test_the_table_is_created_at_start_and_outlives_the_process(settings: Settings) -> None:
    async with open_checkpointer(settings) as saver, open_image_store(settings, saver) as store:
        await store.save({"a" * 64: CAT})
    async with open_checkpointer(settings) as saver, open_image_store(settings, saver) as store:
        assert await store.load(["a" * 64]) == {"a" * 64: CAT}
        assert await store.load([]) == {}
