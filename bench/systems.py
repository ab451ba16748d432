"""The systems under test, each a `TargetProcess` pinned like the others.

* the service stateless: `python -m server`, the openai kind pointed at the fake upstream,
  nothing else configured (SQLite, never used without a thread; no Redis);
* the service with memory: the same plus DATABASE_URL (the benchmark's database) and
  REDIS_URL (a database number and prefix of the benchmark's own);
* the service on its embedded defaults (the `offline` model, SQLite, no Redis): cold start
  and memory over many threads;
* the one-node floor, with and without AsyncPostgresSaver;
* LiteLLM's proxy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.peers import litellm
from bench.pinning import Pinning
from bench.targets import TargetProcess, base_env
from bench.upstream import MODEL

__all__ = ["Systems"]


@dataclass(frozen=True)
class Systems:
    """Builds the target processes of one run.

    Attributes:
        workdir: Where each process gets its directory (and log).
        pinning: Where they run.
        upstream_url: The fake upstream's OpenAI base URL (ends in `/v1`).
        log_level: LOG_LEVEL of the service (None: its default).
    """

    workdir: Path
    pinning: Pinning
    upstream_url: str
    log_level: str | None = None

    def _home(self, name: str) -> Path:
        home = self.workdir / name
        home.mkdir(parents=True, exist_ok=True)
        return home

    def _service_env(self, home: Path) -> dict[str, str]:
        env = base_env(home) | {
            "AGENT_MODELS": json.dumps({MODEL: [f"openai:{MODEL}"]}),
            "OPENAI_BASE_URL": self.upstream_url,
            "OPENAI_API_KEY": "bench",
            "SQLITE_PATH": str(home / "checkpoints.sqlite"),
            "LOAD_PLUGIN_TOOLS": "false",
        }
        if self.log_level is not None:
            env["LOG_LEVEL"] = self.log_level
        return env

    def service(self) -> TargetProcess:
        """The service, stateless requests only."""
        home = self._home("service")
        return TargetProcess(
            "service", ["python", "-m", "server"], self._service_env(home), home, self.pinning
        )

    def service_memory(self, database_url: str, redis_url: str, prefix: str) -> TargetProcess:
        """The service on PostgreSQL and Redis."""
        home = self._home("service-pg")
        env = self._service_env(home) | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": prefix,
        }
        return TargetProcess("service-pg", ["python", "-m", "server"], env, home, self.pinning)

    def service_defaults(self, run: int) -> TargetProcess:
        """The service on its embedded defaults, in a fresh directory, plugins not loaded.

        Its SQLite is in `data/` there.
        """
        home = self._home(f"service-defaults-{run}")
        env = base_env(home) | {"LOAD_PLUGIN_TOOLS": "false"}
        if self.log_level is not None:
            env["LOG_LEVEL"] = self.log_level
        return TargetProcess(
            f"service-defaults-{run}",
            ["python", "-m", "server"],
            env,
            home,
            self.pinning,
            model="offline",
        )

    def floor(self, database_url: str | None = None) -> TargetProcess:
        """The one-node graph; with AsyncPostgresSaver when `database_url`."""
        name = "floor-pg" if database_url else "floor"
        home = self._home(name)
        env = base_env(home) | {"BENCH_UPSTREAM_URL": self.upstream_url}
        if database_url is not None:
            env["BENCH_DATABASE_URL"] = database_url
        command = ["python", "-m", "bench.peers.one_node"]
        return TargetProcess(name, command, env, home, self.pinning)

    def litellm(self, cache: Path) -> TargetProcess:
        """LiteLLM's proxy (installed into `cache` first when needed)."""
        home = self._home("litellm")
        executable = litellm.ensure_installed(cache)
        key = litellm.master_key()
        config = litellm.write_config(home / "config.yaml", self.upstream_url, key, MODEL)
        env = base_env(home) | litellm.environment()
        env.pop("PYTHONPATH")
        command = litellm.command(executable, config)
        headers = {"Authorization": f"Bearer {key}"}
        return TargetProcess("litellm", command, env, home, self.pinning, headers=headers)
