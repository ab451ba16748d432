"""docs/extending.md's recipes followed on a copy of the repository, whose tests then pass.

The copy is this working tree as it is (tracked and untracked files, ignored ones left out),
in a temporary folder. The recipes are read from docs/extending.md by their headings, not
copied here, so a recipe that stops working fails this test: the `word_count` tool (its
module as the page gives it, and its registration in `_builtin_tools`), a node between the
guard and the router (its wiring, from the page's sentence that says how), and the read-only
route `GET /v1/threads/{thread_id}/summary` (its module as the page gives it, included in
`server/app.py`). Each gets a test of its own in the copy, as the recipes ask, written here.

Then the copy's `tests/unit` (the new tests among them) and the two door tests that once
pinned the tool and node lists (`test_mcp_door.py`, `test_langserve_door.py`) run in the copy,
with this checkout's interpreter and the copy as the working directory, so the copy's modules
are the ones imported. A test that fails there must fail on an unmodified copy too (an
unrelated failure of the tree itself), and no test file that existed before the recipes may
have changed: the recipes promise that no existing test needs an edit.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "extending.md"

TOOL_HEADING = "Add a tool to the catalogue: `word_count`"
NODE_HEADING = "Add a node: `guard`"
ROUTE_HEADING = "A read-only route: a thread's summary"

SUITE = (
    "tests/unit",
    "tests/integration/test_mcp_door.py",
    "tests/integration/test_langserve_door.py",
)
"""What the copy runs: the unit tests and the door tests that pinned tools and nodes before."""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


# --- reading the page ---------------------------------------------------------------------


def sections(text: str) -> dict[str, str]:
    """Each heading's text (up to the next heading of any level), by the heading's title."""
    found: dict[str, str] = {}
    title, fenced = "", False
    lines: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,6} ", line):
            found[title] = "\n".join(lines)
            title, lines = line.lstrip("#").strip(), []
            continue
        lines.append(line)
    found[title] = "\n".join(lines)
    return found


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of a section, as written."""
    return re.findall(r"^```python\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


def paragraph_with(section: str, words: str) -> str:
    """The paragraph of `section` that contains `words` (lines joined)."""
    for paragraph in re.split(r"\n\s*\n", section):
        joined = " ".join(paragraph.split())
        if words in joined:
            return joined
    raise AssertionError(f"docs/extending.md has no paragraph with {words!r}")


def one(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    assert match, f"docs/extending.md no longer says {pattern!r} in: {text[:300]}…"
    return match


def guide_section(heading: str) -> str:
    """The text under `heading` in docs/extending.md, as the page is now."""
    found = sections(GUIDE.read_text(encoding="utf-8"))
    assert heading in found, f"docs/extending.md has no heading {heading!r}"
    return found[heading]


# --- editing the copy -----------------------------------------------------------------------


def add_import(path: Path, statement: str) -> None:
    """Put an import statement right after the module's `from __future__` line."""
    text = path.read_text(encoding="utf-8")
    anchor = "from __future__ import annotations\n"
    assert anchor in text, path
    path.write_text(text.replace(anchor, f"{anchor}\n{statement}\n", 1), encoding="utf-8")


def insert_after_last(path: Path, pattern: str, line: str) -> None:
    """Insert `line`, alike indented, after the last line matching `pattern` (past indentation)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    found = [i for i, old in enumerate(lines) if re.match(pattern, old.lstrip())]
    assert found, f"{path.name} has no line like {pattern!r}"
    old = lines[found[-1]]
    lines.insert(found[-1] + 1, f"{old[: len(old) - len(old.lstrip())]}{line}\n")
    path.write_text("".join(lines), encoding="utf-8")


def module_of(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def apply_tool_recipe(copy: Path) -> dict[str, str]:
    """The tool: its module as the page gives it, added to the list the page names."""
    section = guide_section(TOOL_HEADING)
    step = " ".join(section.split())
    module = one(r"here `(nodes/tools/\w+\.py)`", step)[1]
    (copy / module).write_text(python_blocks(section)[0], encoding="utf-8")
    name, function, registry = one(
        r"add `(\w+)` to the list `(\w+)` returns in `([\w/]+\.py)`", step
    ).groups()
    path = copy / registry
    text = path.read_text(encoding="utf-8")
    returned = re.compile(r"return \[.*?(\])", re.DOTALL).search(
        text, text.index(f"def {function}(")
    )
    assert returned, f"{function} returns no list"
    path.write_text(f"{text[: returned.start(1)]}, {name}{text[returned.start(1) :]}", "utf-8")
    add_import(path, f"from {module_of(module)} import {name}")
    use, answer = one(
        r"so `(use \w+ [^`]+)` calls it at once, and the answer is .*?\(`([^`]+)`\)", step
    ).groups()
    return {"module": module_of(module), "name": name, "use": use, "answer": answer}


def apply_node_recipe(copy: Path) -> dict[str, str]:
    """A node between the guard and the router, wired as the page's sentence says."""
    section = guide_section(NODE_HEADING)
    builder = copy / one(r"Its wiring in `([\w/]+\.py)`", section)[1]
    sentence = paragraph_with(section, "between* two others")
    spans = re.findall(r"`([^`]+)`", sentence)

    def span(pattern: str) -> re.Match[str]:
        matches = [m for m in (re.fullmatch(pattern, s) for s in spans) if m]
        assert matches, f"the sentence on a node between two others has no `{pattern}`: {sentence}"
        return matches[0]

    module = span(r"nodes/\w+\.py")[0]
    constant, value = span(r'([A-Z_]+) = "(\w+)"').groups()
    added, function = span(r"add\((\w+), (\w+)\)").groups()
    branch, target = span(r'\{"(\w+)": (\w+), …\}').groups()
    edge_from, edge_to = span(r"builder\.add_edge\((\w+), (\w+)\)").groups()
    assert added == target == edge_from == constant, sentence
    routing = copy / span(r"graph/\w+\.py")[0]

    (copy / module).write_text(NODE_MODULE.format(function=function), encoding="utf-8")
    insert_after_last(routing, r'[A-Z_]+ = "\w+"$', f'{constant} = "{value}"')
    add_import(builder, f"from {module_of(module)} import {function}")
    add_import(builder, f"from {module_of(routing.relative_to(copy).as_posix())} import {constant}")
    text = builder.read_text(encoding="utf-8")
    mapped = re.compile(rf'(\w+)(, [^\n]*\{{"{branch}": )(\w+)')
    maps = mapped.findall(text)
    assert len(maps) == 1, f'{builder.name} has {len(maps)} {{"{branch}": …}} maps, not one'
    source = maps[0][0]
    builder.write_text(mapped.sub(rf"\g<1>\g<2>{constant}", text), encoding="utf-8")
    # Next to the node it follows: the nodes are listed in the order they are added.
    insert_after_last(builder, rf"add\({source}, ", f"add({constant}, {function})")
    insert_after_last(
        builder,
        rf"builder\.add_conditional_edges\({source}, ",
        f"builder.add_edge({constant}, {edge_to})",
    )
    return {
        "node_module": module_of(module),
        "constant": constant,
        "function": function,
        "next": edge_to,
    }


def apply_route_recipe(copy: Path) -> dict[str, str]:
    """The read-only route: its module as the page gives it, included in the app."""
    section = guide_section(ROUTE_HEADING)
    step = " ".join(section.split())
    path = one(r"`GET (/v1/threads/\{thread_id\}/summary)`", step)[1]
    module = one(r"in a module of its own.*?`(server/[\w/]+\.py)`", step)[1]
    (copy / module).write_text(python_blocks(section)[0], encoding="utf-8")
    app = copy / one(r"Register it with `app\.include_router\(\.\.\.\)` in `([\w/]+\.py)`", step)[1]
    add_import(app, f"from {module_of(module)} import router as recipe_router")
    insert_after_last(app, r"app\.include_router\(", "app.include_router(recipe_router)")
    return {"path": path}


# --- the tests the recipes ask for, written into the copy ------------------------------------

NODE_MODULE = '''"""The node docs/extending.md puts between the guard and the router: a pass.

Its code is this test's: the page gives the wiring of a node between two others, not its body.
"""

from __future__ import annotations

from typing import Any

from graph.state import State


async def {function}(state: State) -> dict[str, Any]:
    """Change nothing: the turn goes on as it came."""
    return {{}}
'''

TOOL_TEST = '''"""The tool docs/extending.md adds: it answers, and the registry offers it."""

import shlex

from nodes.tools.registry import ToolConfig, build_tool_registry
from {module} import {name}


async def test_the_tool_answers_the_pages_example() -> None:
    arguments = dict(word.split("=", 1) for word in shlex.split({use!r})[2:])
    assert await {name}.ainvoke(arguments) == {answer!r}


def test_the_registry_offers_it() -> None:
    assert {name}.name in build_tool_registry(ToolConfig(load_plugins=False)).names()
'''

NODE_TEST = '''"""The node docs/extending.md puts between the guard and the router runs there."""

from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from graph.builder import build_graph
from graph.routing import GUARD, {constant}, {next}
from tests.factories import make_deps


async def test_a_turn_passes_the_guard_then_the_node_then_the_router() -> None:
    graph = build_graph(lambda: make_deps(["offline"], {{}}), checkpointer=InMemorySaver())
    config: Any = {{"configurable": {{"thread_id": "recipe"}}}}
    turn: Any = {{"messages": [HumanMessage("hello")]}}
    updates = graph.astream(turn, config, stream_mode="updates")
    order = [name async for update in updates for name in update]
    assert order[:3] == [GUARD, {constant}, {next}]
'''

ROUTE_TEST = '''"""The read-only route docs/extending.md adds, through the app (lifespan run)."""

import httpx
from starlette.types import Receive, Scope, Send

from server.app import create_app
from tests.conftest import SettingsFactory

KEY = {{"Authorization": "Bearer sk-recipe"}}


async def test_the_summary_route_answers(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(api_keys=["sk-recipe"]))
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            turn = await client.post(
                "/v1/chat/completions",
                json={{"model": "offline", "messages": [{{"role": "user", "content": {use!r}}}]}},
                headers={{**KEY, "X-Thread-Id": "recipe-thread"}},
            )
            assert turn.status_code == 200, turn.text
            assert turn.json()["choices"][0]["message"]["content"] == {answer!r}

            summary = await client.get({path!r}.format(thread_id="recipe-thread"), headers=KEY)
            assert summary.status_code == 200, summary.text
            body = summary.json()
            assert body["thread_id"] == "recipe-thread"
            assert body["messages"] >= 2
            assert body["checkpoint_id"]

            unknown = await client.get({path!r}.format(thread_id="no-such-thread"), headers=KEY)
            assert unknown.status_code == 404, unknown.text
            anonymous = await client.get({path!r}.format(thread_id="recipe-thread"))
            assert anonymous.status_code == 401, anonymous.text
'''

NEW_TESTS = {
    "tests/unit/nodes/tools/test_recipe_tool.py": TOOL_TEST,
    "tests/unit/nodes/test_recipe_node.py": NODE_TEST,
    "tests/unit/server/test_recipe_route.py": ROUTE_TEST,
}


# --- the copy and its runs ------------------------------------------------------------------


def copy_tree(target: Path) -> Path:
    """This working tree's files (tracked and untracked, not ignored) as they are now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607 - git on PATH
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():  # deleted in the work tree
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            (target / name).symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target / name)
    return target


def digests(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("PYTHONPATH", None)
    return env


def run_pytest(copy: Path, *targets: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run pytest in `copy` on `targets` with this interpreter; the failed and errored ids."""
    report = copy / "recipe-report.xml"
    run = subprocess.run(  # noqa: S603 - this interpreter, pytest, in the copy
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            f"--junitxml={report}",
            f"--basetemp={copy.parent / (copy.name + '-tmp')}",
            *targets,
        ],
        cwd=copy,
        env=environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode in (0, 1), (
        f"pytest in the copy ended with {run.returncode}:\n"
        f"{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    )
    failed = {
        m[1] for m in re.finditer(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", run.stdout, re.MULTILINE)
    }
    return run, failed


def passed_cases(copy: Path) -> set[str]:
    """`module.test` of every test case the last run's report shows passed."""
    report = ET.parse(copy / "recipe-report.xml")  # noqa: S314 - the run above wrote it
    cases = report.getroot().iter("testcase")
    return {
        f"{case.get('classname')}.{case.get('name')}"
        for case in cases
        if not any(child.tag in ("failure", "error", "skipped") for child in case)
    }


def test_the_recipes_followed_on_a_copy_pass_the_tests_without_an_edit(tmp_path: Path) -> None:
    copy = copy_tree(tmp_path / "copy")
    before = {name: digest for name, digest in digests(copy).items() if name.startswith("tests/")}
    imported = subprocess.run(
        [sys.executable, "-c", "import server; print(server.__file__)"],
        cwd=copy,
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(imported).is_relative_to(copy), f"the copy imports {imported}, not its own server/"

    tool = apply_tool_recipe(copy)
    node = apply_node_recipe(copy)
    route = apply_route_recipe(copy)
    for name, template in NEW_TESTS.items():
        assert not (copy / name).exists(), name
        (copy / name).write_text(template.format(**tool, **node, **route), encoding="utf-8")

    run, failed = run_pytest(copy, *SUITE)

    after = digests(copy)
    changed = sorted(name for name, digest in before.items() if after.get(name) != digest)
    assert not changed, f"following the recipes changed existing tests: {changed}"
    passed = passed_cases(copy)
    for name in NEW_TESTS:  # each ran (from the copy) and none of its tests failed
        ran = any(case.startswith(f"{module_of(name)}.") for case in passed)
        broken = sorted(test for test in failed if test.startswith(name))
        assert not broken, f"{name} failed: {broken}\n{run.stdout[-6000:]}"
        assert ran, f"{name} passed no test:\n{run.stdout[-6000:]}"
    if failed:
        # Failures of the tree itself (on an unmodified copy too) are not the recipes'.
        pristine = copy_tree(tmp_path / "pristine")
        _, failed_there = run_pytest(pristine, *sorted(failed))
        caused = sorted(failed - failed_there)
        assert not caused, f"the recipes broke {caused}:\n{run.stdout[-8000:]}"
