"""docs/knowledge.md's example: `examples/knowledge/` ingested, then asked about.

On both stores: the CLI writes, a served app answers a `/v1` turn on the offline model with
the passage and its source. On PostgreSQL the store is pgvector (`pgvector_url`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import openai
import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "knowledge"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> dict[str, str]:
    """The embedded store, or PostgreSQL with pgvector (a database of its own)."""
    if request.param == "postgres":
        return {"DATABASE_URL": request.getfixturevalue("pgvector_url")}
    return {}


def test_the_readme_example_answers_from_the_example_documents(
    make_settings: SettingsFactory,
    serve: Callable[[Settings], ServedApp],
    tmp_path: Path,
    store: dict[str, str],
) -> None:
    settings = make_settings(database_url=store.get("DATABASE_URL"))
    env = {**os.environ, "KNOWLEDGE_PATH": str(settings.knowledge_path)}
    env.pop("DATABASE_URL", None)
    env.update(store)  # `make ingest` writes where the service reads: the same setting
    done = subprocess.run(  # noqa: S603 - our own CLI, on our own example folder
        [sys.executable, "-m", "server.knowledge.cli", str(EXAMPLE)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    client = openai.OpenAI(base_url=f"{serve(settings).url}/v1", api_key="x", max_retries=0)
    cases = {
        "What do the docs say about restarting PostgreSQL?": (
            '"Database runbook" (runbooks/database.md)',
            "pg_ctlcluster",
        ),
        "search the knowledge base for unacknowledged pages": (
            '"On-call" (runbooks/on-call.md)',
            "escalates",
        ),
        "what do the docs say about unused vacation days": (
            '"Vacation policy" (handbook/vacation.md)',
            "25 vacation days",
        ),
    }
    for question, (source, words) in cases.items():
        completion = client.chat.completions.create(
            model="offline", messages=[{"role": "user", "content": question}]
        )
        answer = completion.choices[0].message.content or ""
        assert answer.startswith(f"According to {source}"), (question, answer)
        assert words in answer
