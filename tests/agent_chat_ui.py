"""LangChain's agent-chat-ui, built once from tests/clients/agent-chat-ui/ and served statically.

`built_app()` returns the folder of the app's static export, building it when the cache
has none for this project: a copy of the project (package.json, package-lock.json,
build.mjs) in a temporary folder, `npm ci` (the npm registry is the only download), then
`node build.mjs` (see its header for what it patches); the export (`out/`, a few MB) is
kept in `agent-service/agent-chat-ui/<key>/` under the user's cache folder
(`$XDG_CACHE_HOME`, else `~/.cache`; AGENT_CHAT_UI_CACHE overrides it), where the key hashes
those three files, and the rest is deleted: every clone of the repository on the machine
(CI's fresh ones included) reuses one build. Builds of other keys are removed. A lock file
makes concurrent sessions build it once.

`static_app(folder)` serves the export (a Starlette app for `ServedApp`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "tests" / "clients" / "agent-chat-ui"
PROJECT_FILES = ("package.json", "package-lock.json", "build.mjs")
NPM_CI_SECONDS = 300
BUILD_SECONDS = 600


class BuildError(RuntimeError):
    """`npm ci` or the app's build failed (the message ends with its output)."""


class NodeMissingError(BuildError):
    """node or npm is not on PATH."""


def cache_root() -> Path:
    """Where builds are kept: AGENT_CHAT_UI_CACHE, else the user's cache folder."""
    chosen = os.environ.get("AGENT_CHAT_UI_CACHE")
    if chosen:
        return Path(chosen)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "agent-service" / "agent-chat-ui"


def build_key() -> str:
    """A hash of what the build depends on: the project's files (the lock file among them)."""
    digest = hashlib.sha256()
    for name in PROJECT_FILES:
        digest.update(name.encode() + b"\0" + (PROJECT / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def built_app() -> Path:
    """The app's static export for this project, built first if the cache has none.

    Raises:
        NodeMissingError: npm or node is not on PATH.
        BuildError: `npm ci` or `node build.mjs` failed.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / build_key()
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
        if not (target / "index.html").is_file():
            _build_into(target)
        for stale in root.iterdir():
            if stale.is_dir() and stale != target:
                shutil.rmtree(stale, ignore_errors=True)
    return target


def _build_into(target: Path) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise NodeMissingError(
            "node and npm are needed to build agent-chat-ui (apt-get install nodejs npm)"
        )
    env = {
        **os.environ,
        "NEXT_TELEMETRY_DISABLED": "1",
        "npm_config_update_notifier": "false",
        "NO_UPDATE_NOTIFIER": "1",
    }
    with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent) as scratch:
        work = Path(scratch)
        for name in PROJECT_FILES:
            shutil.copy2(PROJECT / name, work / name)
        _run([npm, "ci", "--no-audit", "--no-fund"], work, env, NPM_CI_SECONDS)
        _run([node, "build.mjs"], work, env, BUILD_SECONDS)
        shutil.rmtree(target, ignore_errors=True)
        (work / "out").rename(target)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> None:
    try:
        done = subprocess.run(  # noqa: S603 (fixed commands on a copy of the repository's project)
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise BuildError(f"{' '.join(command)} took over {timeout:g}s") from error
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        raise BuildError(f"{' '.join(command)} failed ({done.returncode}):\n{output}")


def static_app(folder: Path) -> Starlette:
    """The export served as files (`/` is its index.html)."""
    return Starlette(routes=[Mount("/", StaticFiles(directory=folder, html=True))])
