"""Shared fixtures: explicit settings, fake upstreams, real PostgreSQL, the served app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from server.app import create_app
from server.settings import Settings
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream

ADMIN_DSN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

SettingsFactory = Callable[..., Settings]


def service_missing(what: str, error: Exception) -> None:
    """Fail when CI promised the service (REQUIRE_SERVICES=1); skip for a laptop without it."""
    message = f"{what} is not reachable ({error}); start it or unset REQUIRE_SERVICES"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings built only from what the test passes (no .env, no stray environment)."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "sqlite_path": tmp_path / "checkpoints.sqlite",
            "provider_backoff_base": 0.01,
            "load_plugin_tools": False,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        # Fields not passed still come from the environment; keep the ones that matter unset.
        if "database_url" not in overrides:
            settings.database_url = None
        return settings

    return factory


@pytest.fixture(scope="session")
def _primary() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="session")
def _secondary() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def primary(_primary: FakeUpstream) -> FakeUpstream:
    """A fake provider on 127.0.0.1, reset for this test."""
    _primary.reset()
    return _primary


@pytest.fixture
def secondary(_secondary: FakeUpstream) -> FakeUpstream:
    """A second fake provider, for fallback tests."""
    _secondary.reset()
    return _secondary


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        service_missing("PostgreSQL", error)
        raise
    name = f"test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        base = ADMIN_DSN.rsplit("/", 1)[0]
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def serve() -> Iterator[Callable[[Settings], ServedApp]]:
    """Serve `create_app(settings)` with uvicorn on a loopback port; stopped at the end."""
    served: list[ServedApp] = []

    def start(settings: Settings) -> ServedApp:
        app = ServedApp(create_app(settings)).start()
        served.append(app)
        return app

    yield start
    for app in served:
        app.stop()


@pytest.fixture
async def agent_deps() -> Any:
    """`tests.factories.make_deps`, with every catalogue's HTTP clients closed afterwards."""
    from tests.factories import make_deps

    made: list[Any] = []

    def factory(*args: Any, **kwargs: Any) -> Any:
        deps = make_deps(*args, **kwargs)
        made.append(deps)
        return deps

    yield factory
    for deps in made:
        await deps.providers.aclose()
