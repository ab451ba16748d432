"""`python -m server`: the app is built with the collector off, then frozen and collected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

#: The entry point up to serving: uvicorn's run is replaced so that the child returns.
_CHILD = """
import gc, json
from server.stores import drain

drain.DrainingServer.run = lambda self, *args, **kwargs: None
import server.__main__ as entry

before = gc.isenabled()
entry.main()
print(json.dumps({"before": before, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def test_the_entry_point_freezes_what_it_built_and_collects_again(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "SQLITE_PATH": str(tmp_path / "checkpoints.sqlite"),
        "LOAD_PLUGIN_TOOLS": "false",
        "LOG_LEVEL": "warning",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", _CHILD],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] is True
    assert seen["enabled"] is True  # a service without cyclic collection would leak cycles
    assert seen["frozen"] > 100_000  # the app's long-lived objects, out of later collections
