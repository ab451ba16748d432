"""Which core each process runs on: the target on core 0, everything else on core 1.

The target's command is prefixed with `taskset -c 0` when taskset exists and the machine
has two cores or more; otherwise it runs unpinned, and `Pinning.note` says so (the report
prints it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["Pinning", "pinning"]

TARGET_CORE = 0
CLIENT_CORE = 1


@dataclass(frozen=True)
class Pinning:
    """How the benchmark's processes are placed.

    Attributes:
        taskset: Path of `taskset`, or None when targets run unpinned.
        client_pinned: The load generator (and the fake upstream) run on `CLIENT_CORE`.
        note: One line for the report.
    """

    taskset: str | None
    client_pinned: bool
    note: str

    def target_command(self, command: list[str]) -> list[str]:
        """`command`, run on `TARGET_CORE` when pinning is possible."""
        if self.taskset is None:
            return command
        return [self.taskset, "-c", str(TARGET_CORE), *command]

    def client_command(self, command: list[str]) -> list[str]:
        """`command`, run on `CLIENT_CORE` (beside the load generator) when possible."""
        if self.taskset is None or not self.client_pinned:
            return command
        return [self.taskset, "-c", str(CLIENT_CORE), *command]

    def pin_running(self, pid: int) -> None:
        """Move a running process, every thread of it, to `TARGET_CORE` (`taskset -a -p`).

        Threads it starts later inherit the affinity.
        """
        if self.taskset is None:
            return
        subprocess.run(  # noqa: S603 - taskset, arguments built here
            [self.taskset, "-a", "-p", "-c", str(TARGET_CORE), str(pid)],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def pin_this_process(self) -> None:
        """Move the calling process (the load generator) to `CLIENT_CORE`, if possible."""
        if self.client_pinned:
            os.sched_setaffinity(0, {CLIENT_CORE})


def pinning() -> Pinning:
    """Look at the machine and decide where the processes go."""
    cores = os.sched_getaffinity(0)
    two = {TARGET_CORE, CLIENT_CORE} <= cores
    taskset = shutil.which("taskset")
    if not two:
        return Pinning(None, False, f"unpinned: this process may only use cores {sorted(cores)}")
    if taskset is None:
        return Pinning(None, True, "target unpinned (no taskset on PATH); load generator on core 1")
    return Pinning(taskset, True, "target on core 0 (taskset); load generator and upstream on 1")
