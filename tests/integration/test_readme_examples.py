"""Every ```python and ```bash block of the README and of docs/ is run against a served app,
or listed.

The blocks are read from README.md and docs/*.md as they are: each is named
`<file>: <heading> #<n>` (the n-th python/bash block under that heading of that file) and
run, in a served app on the embedded defaults (the offline model, SQLite, an open service),
with the addresses the pages use (`http://127.0.0.1:8000`, `http://HOST:8000`,
`localhost:8000`) turned into the test server's. A python block runs as a module
(top-level `await` allowed) and must not raise; a bash block runs under `bash -euo pipefail`
and must exit 0 without an `"error"` in what it prints. `CHECKS` adds what a block's
comments promise; a python block that goes on from an earlier one (its `client`) names it
in `CONTINUES`.

A block that cannot run here (it needs a real provider key, docker, `make run` itself, or it
is code to add to the repository rather than a client of the service) is listed in
`NOT_RUN` with the reason, or the test that runs what it shows. A new block is therefore
run by construction: it fails, naming its file, heading and line, until it runs or is
listed; a listed block that is gone fails too, so the list stays true.
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
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
"""The README and the manual's pages, read alike."""

NOT_RUN: dict[str, str] = {
    "docs/extending.md: Add a route #1": (
        "a fragment of a route's body: every door runs the same calls "
        "(server/chat/routes.py, server/mcp_server/chat.py), and "
        "tests/integration/test_door_parity.py proves the kit's guards on each"
    ),
    "README.md: Quick start #1": "`make run` and `make test` themselves",
    "README.md: Quick start #3": "needs real provider keys (OpenRouter, Anthropic)",
    "docs/knowledge.md: Knowledge base #1": (
        "`make ingest` and `make run`: tests/integration/test_knowledge_example.py runs the "
        "same CLI on examples/knowledge/ and asks the same question"
    ),
    "docs/langserve.md: Run under langgraph dev #1": (
        "`make langgraph-dev`: tests/integration/test_langgraph_dev.py runs the CLI"
    ),
    "docs/langserve.md: Run under langgraph dev #2": (
        "needs `langgraph dev` running: tests/integration/test_langgraph_dev.py makes the same "
        "get_client / threads.create / runs.wait calls against it"
    ),
    "docs/mcp.md: MCP tool servers #1": (
        "settings for MCP servers that do not exist here (shop, docs)"
    ),
    "docs/deploying.md: Docker compose #1": "docker compose",
    "docs/extending.md: Add a node: `guard` #1": (
        "code to add to the repository: tests/integration/test_extensions_doors.py"
    ),
    "docs/extending.md: Add a node: `guard` #2": "code to add to the repository (see #1)",
    "docs/extending.md: Add a node: `guard` #3": "code to add to the repository (see #1)",
    "docs/extending.md: Add a tool as a plugin package: `agent-tool-dice` #1": (
        "the plugin's code: examples/agent-tool-dice, tests/integration/test_extensions_doors.py"
    ),
    "docs/extending.md: Add a provider kind #1": "code to add to the repository: tests/unit/nodes/",
    "docs/extending.md: A read-only route: a thread's summary #1": (
        "code to add to the repository, on the turn kit's `TurnKitDep` (server/wiring/deps.py)"
    ),
    "docs/development.md: Development #1": (
        "`make dev`, `make check`, `make format`, `make bench-quick`"
    ),
}
"""Blocks not run here, by name, with why (or which test runs what they show)."""

CHECKS: dict[str, str | list[str]] = {
    "README.md: Quick start #2": ["17 * 23 = 391"],
    "README.md: Chat completions: the openai SDK, curl, any chat UI #1": (
        "reply.choices[0].message.content"
    ),
    "README.md: Chat completions: the openai SDK, curl, any chat UI #2": [
        'Earlier you said: \\"echo pineapple\\"'
    ],
    "README.md: The Responses API #1": (
        "later.output_text == 'Earlier you said: \"echo pineapple\"'"
    ),
    "README.md: MCP #1": (
        "second.structuredContent['answer'] == 'Earlier you said: \"echo pineapple\"'"
        " and '391' in product.content[0].text"
    ),
    "README.md: LangServe, the playground and the inspector #1": (
        "later['messages'][-1].content == 'Earlier you said: \"echo pineapple\"'"
        " and later['provider'] == 'offline'"
    ),
    "README.md: LangServe, the playground and the inspector #2": [
        '"thread_id":"demo"',
        '"checkpoints"',
    ],
    "README.md: LangGraph clients: the SDK, RemoteGraph, agent-chat-ui #1": (
        "later['messages'][-1]['content'] == 'Earlier you said: \"echo pineapple\"'"
    ),
    "docs/langgraph-api.md: The SDK #1": (
        "state['values']['messages'][-1]['type'] == 'ai' and thread['metadata'] == {'user': 'ada'}"
    ),
    "docs/langgraph-api.md: Assistants and the memory store #1": (
        "answer['messages'][-1]['content'] == '17 * 23 = 391'"
        " and item['value'] == {'favourite': 'green'}"
        " and [i['key'] for i in found['items']] == ['colour']"
    ),
    "docs/langgraph-api.md: RemoteGraph #1": (
        "later['messages'][-1]['content'] == 'Earlier you said: \"echo pineapple\"'"
    ),
    "docs/chat-completions.md: Calling it #1": "reply.choices[0].message.content",
    "docs/chat-completions.md: Legacy completions #1": (
        "answer.choices[0].text == '17 * 23 = 391' and fill.choices[0].text.startswith('al')"
    ),
    "docs/chat-completions.md: Use it from a chat client #1": "any(c.choices for c in stream)",
    "docs/mcp.md: The `/mcp` door #1": (
        "second.structuredContent['answer'] == 'Earlier you said: \"echo pineapple\"'"
        " and '391' in product.content[0].text"
    ),
    "docs/responses.md: The Responses API #1": (
        "later.output_text == 'Earlier you said: \"echo pineapple\"'"
    ),
    "docs/knowledge.md: Ingesting documents #1": ['"status":"added"', '"deleted":true'],
    "docs/langserve.md: The `/agent` door #1": (
        "later['messages'][-1].content == 'Earlier you said: \"echo pineapple\"'"
        " and later['provider'] == 'offline'"
    ),
    "docs/langserve.md: Inspect a thread #1": ['"thread_id":"demo"', '"checkpoints"'],
    "docs/extending.md: Add a tool to the catalogue: `word_count` #1": (
        "word_count_tool.name == 'word_count' and set(word_count_tool.args) == {'text'}"
    ),
    "docs/extending.md: Add a tool as a plugin package: `agent-tool-dice` #2": ["Rolled 2d6: "],
    "docs/how-it-works.md: The offline model #1": (
        "completion.choices[0].message.parsed.result == 391.0"
    ),
}
"""What a block's comments promise: substrings of a bash block's output, or a Python
expression that must be true in the namespace a python block left."""

HINT = "Make it run against the served app, or list it in NOT_RUN (this file) with the reason."

ADDRESSES = ("http://127.0.0.1:8000", "http://HOST:8000", "localhost:8000")


@dataclass(frozen=True)
class Block:
    """One fenced block of the README or of a page of docs/."""

    name: str
    file: str
    """Its file, relative to the repository (`README.md`, `docs/mcp.md`)."""
    line: int
    """The line of its opening fence."""
    language: str
    code: str

    def where(self) -> str:
        return f"block '{self.name}' ({self.file} line {self.line}, ```{self.language})"


def readme_blocks(text: str, file: str = "README.md") -> list[Block]:
    """The ```python and ```bash blocks of one file, each named after the file, its heading
    and its rank under that heading. A fence may be indented (in a list item): its block is
    found all the same, never skipped unseen."""
    blocks: list[Block] = []
    heading = ""
    ranks: dict[str, int] = {}
    fence: tuple[int, str, list[str]] | None = None
    indent = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is not None:
            if line.strip() == "```":
                start, language, lines = fence
                if language in ("python", "bash"):
                    ranks[heading] = ranks.get(heading, 0) + 1
                    name = f"{file}: {heading} #{ranks[heading]}"
                    code = "\n".join(lines) + "\n"
                    blocks.append(Block(name, file, start, language, code))
                fence = None
            else:
                fence[2].append(line[indent:] if line[:indent].isspace() else line)
        elif line.lstrip().startswith("```"):
            indent = len(line) - len(line.lstrip())
            fence = (number, line.strip()[3:].strip(), [])
        elif match := re.match(r"#{1,6} (.+)", line):
            heading = match.group(1).strip()
    return blocks


BLOCKS = [
    block
    for path in DOCUMENTS
    for block in readme_blocks(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
]
BY_NAME = {block.name: block for block in BLOCKS}


def test_every_block_not_run_is_still_in_the_readme() -> None:
    names = {block.name for block in BLOCKS}
    gone = sorted(set(NOT_RUN) - names)
    assert not gone, f"NOT_RUN lists blocks the README and docs/ no longer have: {gone}"
    stale = sorted((set(CHECKS) | set(CONTINUES) | set(CONTINUES.values()) | set(SETUP)) - names)
    assert not stale, f"CHECKS, CONTINUES or SETUP name blocks no longer there: {stale}"
    assert not set(CHECKS) & set(NOT_RUN)
    assert len(names) == len(BLOCKS), "two blocks of one name"


def test_the_blocks_of_every_page_are_read() -> None:
    """The docs' pages are read too, and a block in a list item (an indented fence) is found."""
    files = {block.file for block in BLOCKS}
    assert {"README.md", "docs/chat-completions.md", "docs/mcp.md"} <= files
    text = "# Page\n\n- an item:\n\n  ```bash\n  echo hi\n  ```\n"
    (block,) = readme_blocks(text, "docs/x.md")
    assert (block.name, block.line, block.code) == ("docs/x.md: Page #1", 5, "echo hi\n")


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


CONTINUES: dict[str, str] = {
    "docs/chat-completions.md: Legacy completions #1": "docs/chat-completions.md: Calling it #1"
}
"""A python block that goes on from an earlier one (its `client`, ...): that one runs first,
in the same namespace."""

SETUP = {
    "docs/langserve.md: Inspect a thread #1": thread_demo,
    "README.md: LangServe, the playground and the inspector #2": thread_demo,
}
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
        sdk_client = getattr(getattr(sync_client, "http", None), "client", None)
        if isinstance(sdk_client, httpx.Client):  # RemoteGraph's langgraph-sdk client
            sdk_client.close()


async def aclose_clients(namespace: dict[str, Any]) -> None:
    """Close the async clients a block left open, on the loop that opened them: langgraph-sdk's
    (`get_client`), and RemoteGraph's own."""
    for value in namespace.values():
        for client in (value, getattr(value, "client", None)):
            http = getattr(getattr(client, "http", None), "client", None)
            if isinstance(http, httpx.AsyncClient):
                await http.aclose()


def run_python(block: Block, url: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a python block (after the one it continues, in the same namespace)."""
    namespace = {"__name__": "readme_example"} if namespace is None else namespace
    if block.name in CONTINUES:
        run_python(BY_NAME[CONTINUES[block.name]], url, namespace)
    source = for_the_test_server(block.code, url)
    code = compile(
        source, f"{block.file}:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    if code.co_flags & inspect.CO_COROUTINE:

        async def run_then_close() -> None:
            try:
                await eval(code, namespace)  # noqa: S307 - the README's own block
            finally:
                await aclose_clients(namespace)

        asyncio.run(run_then_close())
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
