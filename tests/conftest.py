"""Shared fixtures: explicit settings, fake upstreams, real PostgreSQL, the served app."""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql

from server.app import create_app
from server.edge.slow_clients import server_options
from server.settings import Settings
from tests.fakes.ollama import FakeOllama
from tests.fakes.postgres_cluster import PostgresCluster, pgserver_bindir
from tests.fakes.redis_server import RedisProcess
from tests.fakes.server_thread import ServedApp
from tests.fakes.service_process import ServiceProcess, settings_env
from tests.fakes.upstream import FakeUpstream

ADMIN_DSN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

SettingsFactory = Callable[..., Settings]

# A hard timeout that works while a thread holds the GIL. pytest-timeout (`timeout` in
# pyproject.toml) fails a slow test with SIGALRM, whose Python handler needs the GIL: a thread
# stuck in C code that holds it (a catastrophic regex in the served app's thread) is never
# interrupted, and the suite hangs for good. faulthandler's watchdog is a C thread that needs
# no GIL; armed for the same tests with the same timeout plus a grace, it writes every
# thread's traceback to the terminal and ends pytest (exit status 1).
HARD_TIMEOUT_GRACE = 30.0
_TERMINAL = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    """Keep the terminal's stderr (captured output would be lost when the process ends)."""
    config.stash[_TERMINAL] = os.dup(2)  # capture is suspended while plugins configure


def pytest_unconfigure(config: pytest.Config) -> None:
    faulthandler.cancel_dump_traceback_later()
    terminal = config.stash.get(_TERMINAL, None)
    if terminal is not None:
        os.close(terminal)


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """Arm the hard timeout beside pytest-timeout's own (returning None keeps it)."""
    if settings.timeout and settings.timeout > 0:
        faulthandler.dump_traceback_later(
            settings.timeout + HARD_TIMEOUT_GRACE, exit=True, file=item.config.stash[_TERMINAL]
        )


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    faulthandler.cancel_dump_traceback_later()


def pytest_enter_pdb() -> None:
    faulthandler.cancel_dump_traceback_later()  # a debugging session is never cut short


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Collect LangServe's clients where a test made some, in the main thread, between tests.

    `RemoteRunnable` closes its HTTP clients from a `weakref.finalize` that starts a
    `ThreadPoolExecutor`. Left to the cyclic collector, that finalizer can run in whatever
    thread allocates next: seen inside a served app's `asyncio.to_thread`, while that thread
    held `concurrent.futures`' global submit lock, which the finalizer's own `submit` then
    waited for, for ever (the next app's start hung). Collected here, it runs where no lock
    is held.
    """
    module = getattr(item, "module", None)
    if module is not None and "RemoteRunnable" in vars(module):
        gc.collect()


def service_missing(what: str, error: Exception) -> None:
    """Fail when CI promised the service (REQUIRE_SERVICES=1); skip for a laptop without it."""
    message = f"{what} is not reachable ({error}); start it or unset REQUIRE_SERVICES"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def settings_in(directory: Path, **overrides: Any) -> Settings:
    """Settings built only from what the test passes (no .env, no stray environment).

    Its SQLite files go in `directory`. `make_settings` for one test; a module-scoped fixture
    that shares an app between tests calls this with a directory of its own.
    """
    values: dict[str, Any] = {
        "sqlite_path": directory / "checkpoints.sqlite",
        "knowledge_path": directory / "knowledge.sqlite",
        "provider_backoff_base": 0.01,
        "load_plugin_tools": False,
    }
    values.update(overrides)
    settings = Settings(_env_file=None, **values)
    # Fields not passed still come from the environment; keep the ones that matter unset.
    if "database_url" not in overrides:
        settings.database_url = None
    if "redis_url" not in overrides:
        settings.redis_url = None
    return settings


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings built only from what the test passes (no .env, no stray environment)."""

    def factory(**overrides: Any) -> Settings:
        return settings_in(tmp_path, **overrides)

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


@pytest.fixture(scope="session")
def _ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def ollama(_ollama: FakeOllama) -> FakeOllama:
    """A fake Ollama server on 127.0.0.1, reset for this test."""
    _ollama.reset()
    return _ollama


@pytest.fixture
def secondary(_secondary: FakeUpstream) -> FakeUpstream:
    """A second fake provider, for fallback tests."""
    _secondary.reset()
    return _secondary


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped at the end (`postgres_url`, or a wider scope)."""
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
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test's own on a free port, which the test may restart.

    Never restart the shared server of `postgres_url`; restart this one
    (`postgres_cluster.restart()`). Its `url` is the `postgres` database (superuser, trust).
    """
    try:
        cluster = PostgresCluster().start()
    except (FileNotFoundError, RuntimeError) as error:
        service_missing("a private PostgreSQL cluster (initdb, pg_ctl)", error)
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pgvector_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL 16 cluster with pgvector, for this test session (loopback TCP).

    The machine's PostgreSQL may lack pgvector; the `pgserver` dev dependency bundles
    PostgreSQL 16 with it, so its binaries run this cluster (as `postgres` when run as root).
    Shared by the session: give each test a database of its own (`CREATE DATABASE`).
    """
    try:
        cluster = PostgresCluster(bindir=pgserver_bindir()).start()
    except (FileNotFoundError, RuntimeError) as error:
        service_missing("a PostgreSQL with pgvector (pgserver's bundled binaries)", error)
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pgvector_url(pgvector_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database of the pgvector cluster for this test, dropped afterwards."""
    database = f"test_{uuid.uuid4().hex[:12]}"
    name = sql.Identifier(database)
    # A connection for each statement: a test may restart the cluster in between.
    with psycopg.connect(pgvector_cluster.url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
    try:
        yield pgvector_cluster.database_url(database)
    finally:
        with psycopg.connect(pgvector_cluster.url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def reachable_redis() -> str:
    """The shared Redis's URL, once it answers (`redis_url`, or a wider scope)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as error:
        service_missing("Redis", error)
        raise
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_url() -> str:
    """A reachable Redis; pair it with `redis_prefix` (tests share it, so never FLUSHDB)."""
    return reachable_redis()


@contextlib.contextmanager
def own_redis_prefix() -> Iterator[str]:
    """A key prefix of its own (REDIS_PREFIX) in the shared Redis; its keys deleted at the end."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own (REDIS_PREFIX); its keys are deleted afterwards."""
    with own_redis_prefix() as prefix:
        yield prefix


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A `redis-server` of this test's own on a free port, which the test may stop and restart."""
    try:
        process = RedisProcess(tmp_path).start()
    except (FileNotFoundError, RuntimeError) as error:
        service_missing("redis-server", error)
        raise
    try:
        yield process
    finally:
        process.stop()


def serve_app(settings: Settings) -> ServedApp:
    """`create_app(settings)` served by uvicorn on a loopback port (the caller stops it).

    With the bounds `python -m server` applies (request head size, head and body time).
    """
    return ServedApp(create_app(settings), **server_options(settings)).start()


@pytest.fixture
def serve() -> Iterator[Callable[[Settings], ServedApp]]:
    """Serve `create_app(settings)` with uvicorn on a loopback port; stopped at the end."""
    served: list[ServedApp] = []

    def start(settings: Settings) -> ServedApp:
        app = serve_app(settings)
        served.append(app)
        return app

    yield start
    for app in served:
        app.stop()


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[[Settings], ServiceProcess]]:
    """Run `python -m server` with these settings as its environment; killed at the end."""
    started: list[ServiceProcess] = []

    def start(settings: Settings) -> ServiceProcess:
        service = ServiceProcess(tmp_path, settings_env(settings))
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


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
