"""One provider file, three endpoints: two OpenAI-compatible servers and Anthropic.

Each endpoint is its own fake upstream over real HTTP; the service runs under uvicorn and
the openai SDK is the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Fault, Reply

Serve = Callable[[Settings], ServedApp]


@pytest.fixture
def third() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def fleet_file(tmp_path: Path, a: FakeUpstream, b: FakeUpstream, c: FakeUpstream) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
default_model = "chat"

[endpoints.vllm-a]
kind = "openai-compatible"
base_url = "{a.openai_base_url}"
api_key_env = "VLLM_A_KEY"
retries = 0
headers = {{ "X-Team" = "search" }}
params = {{ temperature = 0.25 }}
context_window = 16384

[endpoints.vllm-b]
kind = "openai-compatible"
base_url = "{b.openai_base_url}"
retries = 0

[endpoints.claude]
kind = "anthropic"
base_url = "{c.anthropic_base_url}"
api_key_env = "CLAUDE_KEY"
retries = 0

[models]
chat = ["vllm-a:qwen2.5-7b", "vllm-b:llama-3.1-8b", "claude:claude-haiku-4-5"]
local = ["offline"]
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def fleet(
    tmp_path: Path,
    make_settings: SettingsFactory,
    serve: Serve,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    third: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> openai.OpenAI:
    monkeypatch.setenv("VLLM_A_KEY", "sk-vllm-a-secret")
    monkeypatch.setenv("CLAUDE_KEY", "sk-claude-secret")
    settings = make_settings(agent_config=fleet_file(tmp_path, primary, secondary, third))
    app = serve(settings)
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)


def test_a_chain_falls_back_across_three_endpoints_of_one_file(
    fleet: openai.OpenAI, primary: FakeUpstream, secondary: FakeUpstream, third: FakeUpstream
) -> None:
    primary.script(Fault.server_error())
    secondary.script(Fault.server_error())
    third.script(Reply(text="from claude"))

    completion = fleet.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "hello"}]
    )

    assert completion.choices[0].message.content == "from claude"
    (a,) = primary.requests
    (b,) = secondary.requests
    (c,) = third.requests
    assert (a.path, b.path, c.path) == (
        "/v1/chat/completions",
        "/v1/chat/completions",
        "/v1/messages",
    )
    assert a.body is not None
    assert b.body is not None
    assert c.body is not None
    assert (a.body["model"], b.body["model"], c.body["model"]) == (
        "qwen2.5-7b",
        "llama-3.1-8b",
        "claude-haiku-4-5",
    )
    # Each endpoint's own key, headers and default parameters, and nobody else's.
    assert a.headers["authorization"] == "Bearer sk-vllm-a-secret"
    assert a.headers["x-team"] == "search"
    assert a.body["temperature"] == 0.25
    assert "x-team" not in b.headers
    assert "temperature" not in b.body
    # (The anthropic SDK sends the key as a bearer token or as x-api-key, by version.)
    assert "sk-claude-secret" in (c.headers.get("x-api-key") or c.headers["authorization"])


def test_the_client_s_parameters_win_over_an_endpoint_s_defaults(
    fleet: openai.OpenAI, primary: FakeUpstream
) -> None:
    primary.script(Reply(text="ok"))
    fleet.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "hi"}], temperature=0.9
    )
    (request,) = primary.requests
    assert request.body is not None
    assert request.body["temperature"] == 0.9


def test_models_lists_the_file_s_aliases_with_owner_and_window(fleet: openai.OpenAI) -> None:
    models = {m.id: m for m in fleet.models.list()}
    assert list(models) == ["chat", "local"]
    assert models["chat"].owned_by == "vllm-a"
    assert models["chat"].model_extra == {"context_window": 16384}
    assert models["local"].owned_by == "offline"
    one = fleet.models.retrieve("chat")
    assert (one.owned_by, one.model_extra) == ("vllm-a", {"context_window": 16384})
