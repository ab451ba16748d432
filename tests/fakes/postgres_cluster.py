"""A throwaway PostgreSQL cluster of one test's own, which the test may restart.

The shared server at 127.0.0.1:5432 serves every session's tests and must never be restarted;
a test that needs PostgreSQL to go away and come back (`pg_ctl restart -m fast`, as a
failover or an operator does) creates its own cluster with `initdb` on a free port instead.

PostgreSQL refuses to run as root. When the tests run as root, the cluster runs as the
`postgres` OS user (`runuser -u postgres --`) in a temporary directory that user owns:
pytest's `tmp_path` sits under a root-only directory the server could not enter.

Example:
    >>> with PostgresCluster() as cluster:
    ...     psycopg.connect(cluster.url).close()
    ...     cluster.restart()
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from tests.fakes.server_thread import StartStop, free_port

__all__ = ["PostgresCluster", "find_bindir", "pgserver_bindir"]

#: Seconds for initdb or one pg_ctl command (pg_ctl's own `-t` is a little less).
_COMMAND_TIMEOUT = 60
_PG_CTL_WAIT = 45
_OS_USER = "postgres"


def find_bindir() -> Path:
    """The directory holding `initdb` and `pg_ctl`: PATH first, else Debian's newest.

    Raises:
        FileNotFoundError: Neither place has both.
    """
    on_path = shutil.which("initdb"), shutil.which("pg_ctl")
    if on_path[0] and on_path[1]:
        return Path(os.path.realpath(on_path[0])).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    for initdb in reversed(candidates):
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    raise FileNotFoundError("PostgreSQL's initdb and pg_ctl are not installed")


def pgserver_bindir() -> Path:
    """The PostgreSQL 16 binaries bundled (with pgvector) in the `pgserver` dev dependency.

    Found without importing `pgserver`, whose import sets up lock files of its own.

    Raises:
        FileNotFoundError: `pgserver` is not installed, or its wheel lacks the binaries.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the pgserver package (PostgreSQL with pgvector) is not installed")
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    if not ((bindir / "initdb").exists() and (bindir / "pg_ctl").exists()):
        raise FileNotFoundError(f"pgserver has no initdb and pg_ctl in {bindir}")
    return bindir


def _as_server_user() -> list[str]:
    """The command prefix that runs the server as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise FileNotFoundError("running as root, and runuser is not installed")
    try:
        pwd.getpwnam(_OS_USER)
    except KeyError:
        raise FileNotFoundError(f"running as root, and there is no {_OS_USER!r} user") from None
    return [runuser, "-u", _OS_USER, "--"]


class PostgresCluster(StartStop):
    """A private cluster: trust auth, superuser `postgres`, listening on 127.0.0.1 only.

    `start()` creates it (the first time) and starts it; `restart()` is `pg_ctl restart
    -m fast`, which ends every session (clients see `AdminShutdown`) and keeps the data;
    `stop()` stops it and removes its directory.

    `bindir` picks the binaries (default `find_bindir()`; `pgserver_bindir()` for pgvector).

    Raises:
        FileNotFoundError: (from the constructor) the binaries, or the way to run them, are
            missing.
    """

    def __init__(self, port: int | None = None, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self._prefix = _as_server_user()
        self.port = port or free_port()
        self.root: Path | None = None

    @property
    def url(self) -> str:
        """DSN of the `postgres` database."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """DSN of one database of the cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    @property
    def log_path(self) -> Path:
        """The server's log file (read it when something goes wrong)."""
        assert self.root is not None
        return self.root / "server.log"

    def log(self) -> str:
        """What the server logged so far."""
        if self.root is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._prefix, str(self.bindir / tool), *args]
        try:
            done = subprocess.run(  # noqa: S603 - fixed binaries, arguments built here
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"{tool} did not finish in {_COMMAND_TIMEOUT}s") from error
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}\n{self.log()}"
            )

    def _pg_ctl(self, action: str, *extra: str) -> None:
        assert self.root is not None
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            action,
            "-D",
            str(self.root / "data"),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(_PG_CTL_WAIT),
            "-o",
            options,
            *extra,
        )

    def _create(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="pgcluster-"))
        if self._prefix:
            entry = pwd.getpwnam(_OS_USER)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        self.root = root
        self._run(
            "initdb",
            "-D",
            str(root / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> Self:
        """Create the cluster if need be, start it, and wait until it accepts connections.

        Raises:
            RuntimeError: initdb or pg_ctl failed (their output and the server log attached).
        """
        if self.root is None:
            try:
                self._create()
            except RuntimeError:
                self._remove()
                raise
        self._pg_ctl("start")
        return self

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, the data stays."""
        self._pg_ctl("restart", "-m", "fast")

    def halt(self) -> None:
        """`pg_ctl stop -m fast`: the server is down (an outage, a failover) until `resume`."""
        self._pg_ctl("stop", "-m", "fast")

    def resume(self) -> None:
        """Start the halted server again, on the same port, with the same data."""
        self._pg_ctl("start")

    def stop(self) -> None:
        """Stop the server (immediately: nothing here needs a clean shutdown) and remove it."""
        if self.root is None:
            return
        if (self.root / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.root / "data"), "-m", "immediate", "-w")
        self._remove()

    def _remove(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
