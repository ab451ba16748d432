"""Which database errors mean "the conversation store is not there right now".

Pure classification of psycopg's exceptions, shared by the checkpointer (which retries a
call whose connection was lost) and the error handlers of every door (a 503 to retry).
"""

from __future__ import annotations

from typing import Final

import psycopg
import psycopg_pool

#: SQLSTATEs of a session the server ended: admin_shutdown (a fast or smart shutdown,
#: `pg_terminate_backend`), crash_shutdown, cannot_connect_now (still starting up). The
#: server rolls back what the session was doing before it sends them.
_SESSION_ENDED: Final = frozenset({"57P01", "57P02", "57P03"})

#: The pool's own failures: it already waited (or refused to) for a connection, so running
#: the call again would only double the wait.
_POOL_FAILURES: Final = (
    psycopg_pool.PoolTimeout,
    psycopg_pool.TooManyRequests,
    psycopg_pool.PoolClosed,
)


def connection_lost(error: BaseException) -> bool:
    """Whether `error` says the connection went away, rather than the statement failing.

    True for a session the server ended (`AdminShutdown` and its kin), a connection
    exception (SQLSTATE class 08), and psycopg's own errors without a SQLSTATE ("server
    closed the connection unexpectedly", "the connection is closed"). False for everything
    the statement itself caused (constraint, syntax, a cancelled query, a lock timeout)
    and for the pool's timeouts.
    """
    if not isinstance(error, psycopg.OperationalError) or isinstance(error, _POOL_FAILURES):
        return False
    state = error.sqlstate
    return state is None or state.startswith("08") or state in _SESSION_ENDED


def store_unavailable(error: BaseException) -> bool:
    """Whether `error` says PostgreSQL cannot be reached now (down, failing over, pool empty).

    The client gets a 503 with `Retry-After` for these: the request was fine, the store
    was not there. Any other database error stays a logged 500.
    """
    return isinstance(error, psycopg_pool.PoolTimeout) or connection_lost(error)
