"""`langgraph dev` (the LangGraph API's reference server) serving this repository's graph.

The CLI runs in a subprocess on a loopback port, with analytics, the version check and
tracing off, so nothing leaves the machine. It resolves paths against its working directory
and persists its in-memory runtime there (`.langgraph_api/`); so that a test writes nothing
into the repository, it runs in a temporary directory on a copy of the repository's
langgraph.json whose paths are anchored at the repository (its `.env` is then missing there,
which must be fine).

Example:
    >>> with langgraph_dev_server(tmp_path) as url:
    ...     httpx.get(f"{url}/ok")
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from tests.fakes.server_thread import free_port

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 90.0

# Variables that could send anything off the machine, or pick a real provider.
_SCRUBBED = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGSMITH_ENDPOINT", "DATABASE_URL")


def environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment: this one without keys or tracing, the offline model, `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in _SCRUBBED}
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        AGENT_MODELS=json.dumps({"offline": ["offline"]}),
        LOAD_PLUGIN_TOOLS="true",
        PYTHONUNBUFFERED="1",
        # This checkout's packages, not those of the checkout an editable install points at.
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    env.pop("SEARXNG_URL", None)
    env.update(overrides or {})
    return env


@contextlib.contextmanager
def langgraph_dev_server(workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """`langgraph dev --config langgraph.json` on a free loopback port; yields its URL.

    Args:
        workdir: An empty directory of the caller's (the CLI's working directory and log).
        env: Variables over `environment()`'s, e.g. AGENT_MODELS and a fake provider's URL.
    """
    port = free_port()
    cli = Path(sys.executable).with_name("langgraph")
    log_path = workdir / "langgraph-dev.log"
    command = [
        str(cli),
        "dev",
        "--config",
        str(anchored_config(workdir)),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            command,
            cwd=workdir,
            env=environment(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path)
        yield url
    finally:
        _stop(process)


def anchored_config(workdir: Path) -> Path:
    """The repository's langgraph.json, with its graph and dependency paths made absolute."""
    config = json.loads((ROOT / "langgraph.json").read_text())
    assert list(config["graphs"]) == ["agent"]
    assert config["dependencies"] == ["."]
    for name, spec in config["graphs"].items():
        path, _, attribute = spec.partition(":")
        config["graphs"][name] = f"{(ROOT / path).resolve()}:{attribute}"
    config["dependencies"] = [str(ROOT)]
    target = workdir / "langgraph.json"
    target.write_text(json.dumps(config))
    return target


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"langgraph dev exited ({process.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"langgraph dev did not start in {STARTUP_SECONDS}s:\n{log_path.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the CLI and whatever it started (its own process group, by id)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
