"""Which PostgreSQL errors are a lost connection, and what connections are opened with."""

from __future__ import annotations

import psycopg
import psycopg_pool
import pytest
from psycopg import errors

from server.settings import Settings
from server.stores.checkpointer import connection_kwargs, connection_lost


@pytest.mark.parametrize(
    "error",
    [
        errors.AdminShutdown("terminating connection due to administrator command"),
        errors.CrashShutdown("terminating connection because of crash of another process"),
        errors.CannotConnectNow("the database system is starting up"),
        errors.ConnectionFailure("connection failure"),
        psycopg.OperationalError("consuming input failed: server closed the connection"),
        psycopg.OperationalError("the connection is closed"),
    ],
    ids=lambda error: type(error).__name__ + ":" + str(error)[:20],
)
def test_a_session_the_server_ended_or_a_broken_socket_is_a_lost_connection(
    error: Exception,
) -> None:
    assert connection_lost(error)


@pytest.mark.parametrize(
    "error",
    [
        errors.QueryCanceled("canceling statement due to statement timeout"),
        errors.LockNotAvailable("could not obtain lock"),
        errors.TooManyConnections("sorry, too many clients already"),
        errors.UniqueViolation("duplicate key"),
        errors.UndefinedTable("relation does not exist"),
        psycopg_pool.PoolTimeout("couldn't get a connection after 30.00 sec"),
        psycopg_pool.TooManyRequests("too many requests waiting"),
        psycopg_pool.PoolClosed("the pool is closed"),
        OSError("not psycopg's"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_what_the_statement_or_the_pool_caused_is_not_a_lost_connection(
    error: Exception,
) -> None:
    assert not connection_lost(error)


def test_connections_get_the_service_name_and_a_connect_timeout() -> None:
    settings = Settings(_env_file=None, database_connect_timeout=7)

    kwargs = connection_kwargs("postgresql://u@db:5432/agent", settings, "agent-service")

    assert kwargs["application_name"] == "agent-service"
    assert kwargs["connect_timeout"] == 7
    assert kwargs["autocommit"] is True  # AsyncPostgresSaver's contract


def test_the_url_names_the_application_and_timeout_when_it_says_so() -> None:
    settings = Settings(_env_file=None)

    kwargs = connection_kwargs(
        "postgresql://u@db/agent?application_name=blue-replica&connect_timeout=3",
        settings,
        "agent-service",
    )

    assert "application_name" not in kwargs
    assert "connect_timeout" not in kwargs
