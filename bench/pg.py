"""The benchmark's PostgreSQL: its own databases, their transaction counts, checkpoint rows.

Databases (created afresh by each run, refused while anything is connected to them):
`<name>` for the service, `<name>_floor` for the one-node + AsyncPostgresSaver floor,
`<name>_calib` for the check of the counting method.

Counting transactions (`xact_commit + xact_rollback` of `pg_stat_database`) needs care on
PostgreSQL 15: a backend publishes its counts when it goes idle at most once a second, and
otherwise only when it has been idle `PGSTAT_IDLE_INTERVAL` (10 s) or exits. A count is
therefore read only after every backend of that database has been idle `FLUSH_WAIT` seconds
(`Quiet`), from a session of the `postgres` database (whose own transactions count there).
`calibrate` checks the method against a known number of transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

__all__ = ["FLUSH_WAIT", "BenchDatabases", "Calibration", "CheckpointRows", "Quiet"]

#: Seconds after a database's last transaction by when every backend has published its
#: counts (PostgreSQL's PGSTAT_IDLE_INTERVAL is 10 s), with a margin.
FLUSH_WAIT = 11.5

TABLES = ("checkpoints", "checkpoint_writes", "checkpoint_blobs")


@dataclass(frozen=True)
class CheckpointRows:
    """Rows of the checkpointer's tables for a set of threads."""

    checkpoints: int
    writes: int
    blobs: int

    def __sub__(self, other: CheckpointRows) -> CheckpointRows:
        return CheckpointRows(
            self.checkpoints - other.checkpoints,
            self.writes - other.writes,
            self.blobs - other.blobs,
        )

    def per(self, turns: int) -> dict[str, float]:
        """Rows per turn, by table."""
        return {
            "checkpoints": self.checkpoints / turns,
            "writes": self.writes / turns,
            "blobs": self.blobs / turns,
        }


class BenchDatabases:
    """The benchmark's databases on one PostgreSQL server.

    Args:
        admin_url: A superuser DSN of the `postgres` database (127.0.0.1, trust).
        name: The service's database; the others are named after it.
    """

    def __init__(self, admin_url: str, name: str = "bench") -> None:
        self.admin_url = admin_url
        self.service = name
        self.floor = f"{name}_floor"
        self.calib = f"{name}_calib"
        self._base = admin_url.rsplit("/", 1)[0]

    def url(self, database: str) -> str:
        """The DSN of one of the databases."""
        return f"{self._base}/{database}"

    def recreate(self) -> None:
        """Drop and create all three.

        Raises:
            RuntimeError: Someone is connected to one of them (another benchmark?).
        """
        names = (self.service, self.floor, self.calib)
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            busy = admin.execute(
                "SELECT datname, count(*) FROM pg_stat_activity"
                " WHERE datname = ANY(%s) GROUP BY datname",
                (list(names),),
            ).fetchall()
            if busy:
                raise RuntimeError(
                    f"sessions are connected to {busy}: another benchmark? (--database NAME)"
                )
            for name in names:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def transactions(self, database: str) -> int:
        """Transactions committed or rolled back in `database`, as published so far."""
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_stat_clear_snapshot()")
            row = admin.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                (database,),
            ).fetchone()
        if row is None:
            raise KeyError(database)
        return int(row[0])

    def checkpoint_rows(self, database: str, thread_prefix: str) -> CheckpointRows:
        """Rows of threads whose id starts with `thread_prefix` (read after the counts)."""
        counts: list[int] = []
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            for table in TABLES:
                query = sql.SQL("SELECT count(*) FROM {} WHERE thread_id LIKE %s").format(
                    sql.Identifier(table)
                )
                row = conn.execute(query, (_like_prefix(thread_prefix),)).fetchone()
                counts.append(int(row[0]) if row else 0)
        return CheckpointRows(*counts)


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching what starts with `prefix` (its wildcards escaped)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


class Calibration:
    """A known number of transactions, counted the way the probes count theirs.

    `start` opens a connection to the calibration database, waits for the one transaction
    of its start to be published (a backend publishes at once when it has published
    nothing yet), reads the count and runs `known` one-statement transactions, leaving the
    connection idle: they are published only by the idle timeout, as a probe's last ones
    are. After `Quiet.wait`, `finish` reads the count again. Statements are never prepared
    (psycopg's `prepare_threshold`): the Parse of a prepared statement is a transaction of
    its own.
    """

    def __init__(self, databases: BenchDatabases, known: int = 10) -> None:
        self.databases = databases
        self.known = known
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._before = 0

    def start(self) -> None:
        """Open the connection and run the known transactions."""
        db = self.databases
        self._conn = psycopg.connect(db.url(db.calib), autocommit=True, prepare_threshold=None)
        time.sleep(0.3)
        self._before = db.transactions(db.calib)
        for _ in range(self.known):
            self._conn.execute("SELECT 1")

    def finish(self) -> int:
        """The transactions counted since `start` (should be `known`); closes the connection."""
        counted = self.databases.transactions(self.databases.calib) - self._before
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return counted


@dataclass
class Quiet:
    """When each database was last used, so that counts are read only once published.

    Attributes:
        last: Per database, `time.monotonic()` of its last transaction.
    """

    last: dict[str, float] = field(default_factory=dict)

    def touched(self, *databases: str) -> None:
        """The databases were just used."""
        now = time.monotonic()
        for database in databases:
            self.last[database] = now

    def remaining(self, *databases: str) -> float:
        """Seconds until all of them are quiet."""
        latest = max((self.last.get(d, float("-inf")) for d in databases), default=0.0)
        return max(0.0, latest + FLUSH_WAIT - time.monotonic())

    def wait(self, *databases: str, meanwhile: Callable[[], bool] | None = None) -> float:
        """Wait until the databases are quiet; return the seconds spent idle.

        Runs `meanwhile` (other work, which must not touch them) as long as it returns True
        and the wait lasts.
        """
        while meanwhile is not None and self.remaining(*databases) > 0 and meanwhile():
            pass
        idle = self.remaining(*databases)
        time.sleep(idle)
        return idle
