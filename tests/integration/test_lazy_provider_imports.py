"""A provider SDK is imported only when a model of its kind is configured (redis-py likewise).

Each case is a fresh interpreter (the test process itself has every SDK loaded): it builds the
app from the environment, answers one `POST /v1/chat/completions` through the app's lifespan,
and reports which optional modules it holds. The anthropic SDK alone costs about 1.7 s of
imports, the openai SDK 0.7 s, redis-py 70 ms, the MCP SDK with its LangChain adapters 1.8 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fakes.upstream import FakeUpstream, Fault, Reply

ROOT = Path(__file__).resolve().parents[2]

#: Every provider SDK and its LangChain integration, and redis-py, by top-level module.
SDKS = (
    "anthropic",
    "langchain_anthropic",
    "openai",
    "langchain_openai",
    "ollama",
    "langchain_ollama",
    "redis",  # only with REDIS_URL
    "mcp",  # the MCP SDK and the LangChain adapters (1.8 s): only with MCP_SERVERS
    "langchain_mcp_adapters",
)

_CHILD = f"""
import json, sys
from fastapi.testclient import TestClient
from server.app import create_app

with TestClient(create_app()) as client:
    response = client.post(
        "/v1/chat/completions",
        json={{"model": "m", "messages": [{{"role": "user", "content": "What is 17 * 23?"}}]}},
    )
print(json.dumps({{
    "status": response.status_code,
    "body": response.json(),
    "loaded": sorted(name for name in {SDKS!r} if name in sys.modules),
}}))
"""


def answer_in_a_fresh_process(tmp_path: Path, models: list[str], **env: str) -> dict[str, Any]:
    """One completion of alias `m` (the chain `models`) in a new interpreter, and what it loaded."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "SQLITE_PATH": str(tmp_path / "checkpoints.sqlite"),
        "LOAD_PLUGIN_TOOLS": "false",
        "LOG_LEVEL": "warning",
        "AGENT_MODELS": json.dumps({"m": models}),
        "PROVIDER_BACKOFF_BASE": "0.01",
        **env,
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", _CHILD],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def content(result: dict[str, Any]) -> str:
    return str(result["body"]["choices"][0]["message"]["content"])


def test_the_embedded_defaults_load_no_provider_sdk_and_no_redis(tmp_path: Path) -> None:
    result = answer_in_a_fresh_process(tmp_path, ["offline"])

    assert result["status"] == 200
    assert "391" in content(result)
    assert result["loaded"] == []


def test_an_openai_compatible_model_loads_the_openai_sdk_only(
    tmp_path: Path, primary: FakeUpstream
) -> None:
    primary.script(Reply("from the openai wire"))

    result = answer_in_a_fresh_process(
        tmp_path,
        ["openai-compatible:served-model"],
        OPENAI_COMPATIBLE_BASE_URL=primary.openai_base_url,
    )

    assert result["status"] == 200
    assert content(result) == "from the openai wire"
    assert result["loaded"] == ["langchain_openai", "openai"]


def test_an_anthropic_model_loads_its_sdk_and_its_errors_fall_through(
    tmp_path: Path, secondary: FakeUpstream
) -> None:
    """Every Anthropic call is rate limited: the anthropic SDK's own exception, caught and
    classified once the SDK is loaded, so each model call of the turn (before and after the
    calculator) falls through to the offline model instead of failing the request."""
    secondary.default = Fault.rate_limit(retry_after=0)

    result = answer_in_a_fresh_process(
        tmp_path,
        ["anthropic:claude-test", "offline"],
        ANTHROPIC_API_KEY="sk-ant-test",
        ANTHROPIC_BASE_URL=secondary.anthropic_base_url,
        PROVIDER_MAX_RETRIES="0",
    )

    assert result["status"] == 200, result["body"]
    assert "391" in content(result)
    assert [r.path for r in secondary.requests][:1] == ["/v1/messages"]
    assert {"anthropic", "langchain_anthropic"} <= set(result["loaded"])
    assert "ollama" not in result["loaded"]
