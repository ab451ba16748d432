"""LiteLLM's proxy as a comparator (only when BENCH_PEERS=1).

Installed on first use into a virtual environment of its own under the cache directory,
configured with one model routed to the fake upstream, one worker.

uv makes the environment when there is one (on PATH, the repository's `.tools/bin/uv`, or
beside the interpreter), else `python -m venv` and pip. Nothing of LiteLLM reaches the
project's own environment.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from bench.targets import ROOT

__all__ = ["VERSION", "command", "ensure_installed", "environment", "master_key", "write_config"]

#: The LiteLLM release measured (pinned: its defaults change between releases).
VERSION = "1.108.7"


def _uv() -> str | None:
    for candidate in (
        shutil.which("uv"),
        ROOT / ".tools" / "bin" / "uv",
        Path(sys.executable).parent / "uv",
    ):
        if candidate is not None and Path(candidate).is_file():
            return str(candidate)
    return None


def ensure_installed(cache: Path, version: str = VERSION) -> Path:
    """The `litellm` executable of `litellm[proxy]==version` in `<cache>/litellm`.

    Installs it first when it is not there (that takes a minute or two, once).

    Raises:
        subprocess.CalledProcessError: The installation failed.
    """
    venv = cache / "litellm"
    executable = venv / "bin" / "litellm"
    marker = venv / f".installed-{version}"
    if executable.is_file() and marker.is_file():
        return executable
    venv.parent.mkdir(parents=True, exist_ok=True)
    requirement = f"litellm[proxy]=={version}"
    uv = _uv()
    if uv is not None:
        python = str(venv / "bin" / "python")
        commands = [
            [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
            [uv, "pip", "install", "--quiet", "--python", python, requirement],
        ]
    else:
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        commands = [
            [sys.executable, "-m", "venv", str(venv)],
            [*pip, "--disable-pip-version-check", requirement],
        ]
    for step in commands:
        subprocess.run(step, check=True)  # noqa: S603 - fixed tools, arguments built here
    marker.write_text(requirement + "\n")
    return executable


def master_key() -> str:
    """A fresh, strong key for one run."""
    return f"sk-{secrets.token_hex(32)}"


def write_config(path: Path, upstream_base_url: str, master_key: str, model: str = "bench") -> Path:
    """A proxy config routing `model` to the fake upstream (JSON is valid YAML).

    Clients authenticate with `master_key` (the proxy refuses to start without one).
    """
    config = {
        "general_settings": {"master_key": master_key},
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": upstream_base_url,
                    "api_key": "bench",
                },
            }
        ],
        "litellm_settings": {"telemetry": False},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def command(executable: Path, config: Path) -> list[str]:
    """The proxy on 127.0.0.1:{port} (TargetProcess fills the port in), one worker."""
    return [
        *(str(executable), "--config", str(config)),
        *("--host", "127.0.0.1", "--port", "{port}", "--num_workers", "1"),
    ]


def environment() -> dict[str, str]:
    """Keep it off the network: the bundled model cost map, no telemetry, no update check."""
    return {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "DISABLE_SCHEMA_UPDATE": "true",
    }
