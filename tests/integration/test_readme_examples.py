"""Every ```python and ```bash block of the README is run against a served app, or listed.

The blocks are read from README.md as it is: each is named `<heading> #<n>` (the n-th
python/bash block under that heading) and run, in a served app on the embedded defaults
(the offline model, SQLite, an open service), with the README's address
(`http://127.0.0.1:8000`, `http://HOST:8000`, `localhost:8000`) turned into the test
server's. A python block runs as a module (top-level `await` allowed) and must not raise; a
bash block runs under `bash -euo pipefail` and must exit 0 without an `"error"` in what it
prints. `CHECKS` adds what a block's comments promise; a python block that goes on from an
earlier one (its `client`) names it in `CONTINUES`.

A block that cannot run here (it needs a real provider key, docker, `make run` itself, or it
is code to add to the repository rather than a client of the service) is listed in
`NOT_RUN` with the reason, or the test that runs what it shows. A new block is therefore
run by construction: it fails, naming its heading and line, until it runs or is listed;
a listed block that is gone fails too, so the list stays true.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from server.app import create_app
from server.settings import Settings
from tests.fakes.server_thread import ServedApp

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

NOT_RUN: dict[str, str] = {
    "agent-service #1": "`make run` and `make test` themselves",
    "agent-service #3": "needs real provider keys (OpenRouter, Anthropic)",
    "Knowledge base #1": (
        "`make ingest` and `make run`: tests/integration/test_knowledge_example.py runs the "
        "same CLI on examples/knowledge/ and asks the same question"
    ),
    "Run under langgraph dev #1": (
        "`make langgraph-dev`: tests/integration/test_langgraph_dev.py runs the CLI"
    ),
    "Run under langgraph dev #2": (
        "needs `langgraph dev` running: tests/integration/test_langgraph_dev.py makes the same "
        "get_client / threads.create / runs.wait calls against it"
    ),
    "MCP tool servers #1": "settings for MCP servers that do not exist here (shop, docs)",
    "Deploying and monitoring #1": "docker compose",
    "Add a node: `guard` #1": (
        "code to add to the repository: tests/integration/test_extensions_doors.py"
    ),
    "Add a node: `guard` #2": "code to add to the repository (see #1)",
    "Add a node: `guard` #3": "code to add to the repository (see #1)",
    "Add a tool as a plugin package: `agent-tool-dice` #1": (
        "the plugin's code: examples/agent-tool-dice, tests/integration/test_extensions_doors.py"
    ),
    "Add a provider kind #1": "code to add to the repository: tests/unit/nodes/",
    "Development #1": "`make dev`, `make check`, `make format`, `make bench-quick`",
}
"""Blocks not run here, by name, with why (or which test runs what they show)."""

CHECKS: dict[str, str | list[str]] = {
    "agent-service #2": ["17 * 23 = 391"],
    "Talking to it #1": "reply.choices[0].message.content",
    "Talking to it #2": (
        "answer.choices[0].text == '17 * 23 = 391' and fill.choices[0].text.startswith('al')"
    ),
    "Use it from a chat client #1": "any(c.choices for c in stream)",
    "Use it from an MCP client #1": (
        "second.structuredContent['answer'] == 'Earlier you said: \"echo pineapple\"'"
        " and '391' in product.content[0].text"
    ),
    "The Responses API #1": "later.output_text == 'Earlier you said: \"echo pineapple\"'",
    "Ingesting documents #1": ['"status":"added"', '"deleted":true'],
    "Playground and LangServe #1": (
        "later['messages'][-1].content == 'Earlier you said: \"echo pineapple\"'"
        " and later['provider'] == 'offline'"
    ),
    "Inspect a thread #1": ['"thread_id":"demo"', '"checkpoints"'],
    "Add a tool as a plugin package: `agent-tool-dice` #2": ["Rolled 2d6: "],
}
"""What a block's comments promise: substrings of a bash block's output, or a Python
expression that must be true in the namespace a python block left."""

HINT = "Make it run against the served app, or list it in NOT_RUN (this file) with the reason."

ADDRESSES = ("http://127.0.0.1:8000", "http://HOST:8000", "localhost:8000")


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    name: str
    line: int
    """The line of its opening fence."""
    language: str
    code: str

    def where(self) -> str:
        return f"README block '{self.name}' (README.md line {self.line}, ```{self.language})"


def readme_blocks(text: str) -> list[Block]:
    """The ```python and ```bash blocks, each named after its heading and its rank under it."""
    blocks: list[Block] = []
    heading = ""
    ranks: dict[str, int] = {}
    fence: tuple[int, str, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is not None:
            if line.startswith("```"):
                start, language, lines = fence
                if language in ("python", "bash"):
                    ranks[heading] = ranks.get(heading, 0) + 1
                    name = f"{heading} #{ranks[heading]}"
                    blocks.append(Block(name, start, language, "\n".join(lines) + "\n"))
                fence = None
            else:
                fence[2].append(line)
        elif line.startswith("```"):
            fence = (number, line[3:].strip(), [])
        elif match := re.match(r"#{1,6} (.+)", line):
            heading = match.group(1).strip()
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
BY_NAME = {block.name: block for block in BLOCKS}


def test_every_block_not_run_is_still_in_the_readme() -> None:
    names = {block.name for block in BLOCKS}
    gone = sorted(set(NOT_RUN) - names)
    assert not gone, f"NOT_RUN lists blocks the README no longer has: {gone}"
    stale = sorted((set(CHECKS) | set(CONTINUES) | set(CONTINUES.values())) - names)
    assert not stale, f"CHECKS or CONTINUES name blocks the README no longer has: {stale}"
    assert not set(CHECKS) & set(NOT_RUN)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[ServedApp]:
    """The service on its embedded defaults, as `make run` serves it, in a temporary folder.

    One per block: a block starts from a fresh service, as a reader following the README
    from `make run` does, whichever blocks ran before it.
    """
    data = tmp_path
    settings = Settings(
        _env_file=None,
        sqlite_path=data / "checkpoints.sqlite",
        knowledge_path=data / "knowledge.sqlite",
        load_plugin_tools=True,
    )
    settings.database_url = None
    settings.redis_url = None
    with ServedApp(create_app(settings)) as served:
        yield served


def thread_demo(url: str) -> None:
    """The thread "demo" that "Inspect a thread" reads, which the LangServe block writes."""
    httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "offline", "messages": [{"role": "user", "content": "echo kiwi"}]},
        headers={"X-Thread-Id": "demo"},
        timeout=30,
    ).raise_for_status()


CONTINUES: dict[str, str] = {"Talking to it #2": "Talking to it #1"}
"""A python block that goes on from an earlier one (its `client`, ...): that one runs first,
in the same namespace."""

SETUP = {"Inspect a thread #1": thread_demo}
"""What a block needs that an earlier block of the README gives it."""


def for_the_test_server(code: str, url: str) -> str:
    for address in ADDRESSES:
        code = code.replace(address, url)
    return code


def run_bash(block: Block, url: str) -> str:
    # `make run` lines start the service that the test serves already.
    lines = [line for line in block.code.splitlines() if not line.startswith("make run")]
    script = for_the_test_server("\n".join(lines), url)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ADMIN_KEY": "unused"}
    done = subprocess.run(  # noqa: S603 - the README's own block, on loopback
        ["/bin/bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"{block.where()} exited {done.returncode}: {HINT}\n{done.stderr}"
    error = re.search(r'"error":\s*\{', done.stdout)
    assert error is None, f"{block.where()} printed an error: {HINT}\n{done.stdout}"
    return done.stdout


def close_clients(namespace: dict[str, Any]) -> None:
    """Close the clients a block left open (it is an example, not a program that exits)."""
    for value in namespace.values():
        if isinstance(value, openai.OpenAI | openai.Stream | httpx.Client):
            value.close()
        sync_client = getattr(value, "sync_client", None)
        if isinstance(sync_client, httpx.Client):  # LangServe's RemoteRunnable
            sync_client.close()


def run_python(block: Block, url: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a python block (after the one it continues, in the same namespace)."""
    namespace = {"__name__": "readme_example"} if namespace is None else namespace
    if block.name in CONTINUES:
        run_python(BY_NAME[CONTINUES[block.name]], url, namespace)
    source = for_the_test_server(block.code, url)
    code = compile(source, f"README.md:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))  # noqa: S307 - the README's own block
    else:
        exec(code, namespace)  # noqa: S102 - the README's own block
    return namespace


RUN = [block for block in BLOCKS if block.name not in NOT_RUN]
"""Every block but those listed (each with its reason) in NOT_RUN: no skipped cases."""


@pytest.mark.parametrize("block", RUN, ids=[block.name for block in RUN])
def test_the_readme_block_runs_against_the_service(app: ServedApp, block: Block) -> None:
    check = CHECKS.get(block.name)
    if block.name in SETUP:
        SETUP[block.name](app.url)
    try:
        if block.language == "bash":
            output = run_bash(block, app.url)
            compact = re.sub(r'":\s+', '":', output)  # curl prints JSON as sent: compact
            for expected in check or []:
                assert expected in compact, f"{block.where()} did not print {expected!r}:\n{output}"
            return
        namespace = run_python(block, app.url)
    except AssertionError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of a block: name it, say what to do
        pytest.fail(f"{block.where()} failed: {type(error).__name__}: {error}\n{HINT}")
    try:
        if isinstance(check, str):
            assert eval(check, namespace), f"{block.where()}: {check} is not true"  # noqa: S307
    finally:
        close_clients(namespace)
