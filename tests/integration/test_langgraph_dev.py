"""`langgraph dev` loads langgraph.json and runs our graph; driven with langgraph-sdk.

The CLI runs in a subprocess on a loopback port, with analytics, the version check and
tracing off, so nothing leaves the machine. It resolves paths against its working directory
and persists its in-memory runtime there (`.langgraph_api/`); so that the test writes nothing
into the repository, it runs in a temporary directory on a copy of the repository's
langgraph.json whose paths are anchored at the repository (its `.env` is then missing there,
which must be fine).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from graph.builder import build_graph
from tests.factories import make_deps
from tests.fakes.server_thread import free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90.0

# Variables that could send anything off the machine, or pick a real provider.
_SCRUBBED = ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGSMITH_ENDPOINT", "DATABASE_URL")


def _environment() -> dict[str, str]:
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
    return env


@pytest.fixture(scope="module")
def langgraph_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`langgraph dev --config langgraph.json` on a free loopback port; yields its URL."""
    workdir = tmp_path_factory.mktemp("langgraph-dev")
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
            env=_environment(),
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


def last_text(output: dict[str, Any]) -> str:
    message = output["messages"][-1]
    assert message["type"] == "ai"
    return str(message["content"])


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


async def test_langgraph_dev_runs_the_graph_on_a_thread(langgraph_dev: str) -> None:
    async with get_client(url=langgraph_dev) as client:
        (assistant,) = await client.assistants.search(graph_id="agent")
        thread = await client.threads.create()

        first = await client.runs.wait(
            thread["thread_id"], "agent", input=human("What is 17 * 23?")
        )
        assert isinstance(first, dict)
        assert "391" in last_text(first)
        assert first["provider"] == "offline"
        assert [m["type"] for m in first["messages"]] == ["human", "ai", "tool", "ai"]
        assert first["messages"][2]["name"] == "calculator"

        second = await client.runs.wait(
            thread["thread_id"], assistant["assistant_id"], input=human("What did I say before?")
        )
        assert isinstance(second, dict)
        assert last_text(second) == 'Earlier you said: "What is 17 * 23?"'
        state = await client.threads.get_state(thread["thread_id"])
        assert isinstance(state["values"], dict)
        assert len(state["values"]["messages"]) == 6


async def test_langgraph_dev_runs_the_guard_node_with_the_run_context(langgraph_dev: str) -> None:
    async with get_client(url=langgraph_dev) as client:
        thread = await client.threads.create()
        output = await client.runs.wait(
            thread["thread_id"], "agent", input=human("x" * 80), context={"max_input_chars": 50}
        )
        assert isinstance(output, dict)
        assert last_text(output).startswith("Your message is too long for me to process: 80")
        assert output["route"] == "respond"
        assert output.get("provider") is None


async def test_langgraph_dev_loads_the_plugin_tool(langgraph_dev: str) -> None:
    async with get_client(url=langgraph_dev) as client:
        thread = await client.threads.create()
        output = await client.runs.wait(
            thread["thread_id"], "agent", input=human("use roll_dice count=2 sides=6 seed=3")
        )
        assert isinstance(output, dict)
        tool_result = output["messages"][2]
        assert tool_result["type"] == "tool"
        assert tool_result["name"] == "roll_dice"
        assert last_text(output) == tool_result["content"]
        assert last_text(output).startswith("Rolled 2d6: ")


async def test_langgraph_dev_draws_the_graph_the_builder_wires(langgraph_dev: str) -> None:
    expected = build_graph(lambda: make_deps(["offline"], {})).get_graph()
    async with get_client(url=langgraph_dev) as client:
        (assistant,) = await client.assistants.search(graph_id="agent")
        drawn = await client.assistants.get_graph(assistant["assistant_id"])
    assert {n["id"] for n in drawn["nodes"]} == set(expected.nodes)
    assert {(e["source"], e["target"]) for e in drawn["edges"]} == {
        (e.source, e.target) for e in expected.edges
    }
