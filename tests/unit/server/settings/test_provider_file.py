"""The provider file (AGENT_CONFIG): named endpoints and aliases, checked at start."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from nodes.providers.catalogue import ProviderTarget
from nodes.providers.registry import Price
from server.settings.provider_file import LoadedProviders, ProviderFileError, load_provider_file
from server.wiring.services import provider_catalogue
from tests.conftest import SettingsFactory

FLEET = """\
default_model = "chat"

[endpoints.vllm-a]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9001/v1"
api_key_env = "VLLM_A_KEY"
timeout = 12.5
retries = 2
headers = { "X-Team" = "search", "X-Env" = "test" }
params = { temperature = 0.2 }
context_window = 32768
price = { input = 0.15, output = 0.6 }

[endpoints.vllm-b]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9002/v1"

[endpoints.claude]
kind = "anthropic"
base_url = "http://127.0.0.1:9003"
api_key_env = "CLAUDE_KEY"

[models]
chat = ["vllm-a:qwen2.5-7b", "vllm-b:qwen2.5-7b", "claude:claude-haiku-4-5"]
local = ["offline"]
"""

SECRETS = {"VLLM_A_KEY": "sk-vllm-a", "CLAUDE_KEY": "sk-claude"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(path: Path, secrets: dict[str, str] | None = None) -> LoadedProviders:
    values = SECRETS if secrets is None else secrets

    def secret(name: str) -> SecretStr | None:
        return SecretStr(values[name]) if name in values else None

    return load_provider_file(path, secret=secret, default_timeout=60.0, default_retries=1)


def test_a_fleet_of_endpoints_and_aliases_is_read(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, FLEET))
    endpoints = loaded.endpoints
    a = endpoints["vllm-a"]
    assert (a.kind, a.name, a.base_url) == (
        "openai-compatible",
        "vllm-a",
        "http://127.0.0.1:9001/v1",
    )
    assert a.api_key is not None
    assert a.api_key.get_secret_value() == "sk-vllm-a"
    assert (a.timeout, a.max_retries) == (12.5, 2)
    assert dict(a.headers) == {"X-Team": "search", "X-Env": "test"}
    assert dict(a.params) == {"temperature": 0.2}
    assert a.context_window == 32768
    assert a.price == Price(0.15, 0.6)
    b = endpoints["vllm-b"]  # unset fields take the service-wide defaults
    assert (b.timeout, b.max_retries, b.api_key, b.price) == (60.0, 1, None, None)
    chain = loaded.models["chat"]
    assert [t.id for t in chain] == [
        "vllm-a:qwen2.5-7b",
        "vllm-b:qwen2.5-7b",
        "claude:claude-haiku-4-5",
    ]
    assert [t.kind for t in chain] == ["openai-compatible", "openai-compatible", "anthropic"]
    assert loaded.default_model == "chat"


def test_the_catalogue_takes_the_file_beside_the_environment_form(
    tmp_path: Path, make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = make_settings(agent_config=write(tmp_path, FLEET), ollama_base_url="http://x:1")
    catalogue = provider_catalogue(settings)
    assert catalogue.alias_names() == ["chat", "local"]
    assert catalogue.default_alias == "chat"
    first, second, third = catalogue.resolve("chat")
    assert catalogue.context_window(first) == 32768  # declared
    assert catalogue.context_window(second) == 32768  # qwen2.5's family default
    assert catalogue.context_window(third) == 200_000  # claude's
    assert catalogue.price(first) == Price(0.15, 0.6)
    assert catalogue.price(second) is None
    # The environment-only form's endpoints (named after kinds) are still there by id.
    assert catalogue.target("ollama:llama3.1") == ProviderTarget("ollama", "llama3.1")
    assert catalogue.target("vllm-b:x").endpoint == "vllm-b"
    # Each endpoint has its own pooled client: two OpenAI-compatible endpoints, two configs.
    assert catalogue.config("vllm-a").base_url != catalogue.config("vllm-b").base_url


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            '[endpoints.a]\nkind = "openai-compatible"\nbase_url = "http://h/v1"\ntimeout = -1\n',
            4,
            "endpoints.a.timeout: Input should be greater than 0",
        ),
        (
            '[endpoints.a]\nkind = "openia"\n',
            2,
            "endpoints.a.kind: Value error, unknown kind 'openia'",
        ),
        (
            '[endpoints.a]\nkind = "ollama"\nbase_url = "http://h"\ncolour = "red"\n',
            4,
            "endpoints.a.colour: Extra inputs are not permitted",
        ),
        (
            '[endpoints.a]\nkind = "openai"\napi_key_env = "NOT_SET_ANYWHERE"\n',
            3,
            "endpoints.a.api_key_env: the environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            '[endpoints.a]\nkind = "openai"\napi_key_env = "sk-live-123"\n',
            3,
            "endpoints.a.api_key_env: String should match pattern",
        ),
        (
            '[endpoints.a]\nkind = "openai-compatible"\n',
            1,
            "endpoints.a.base_url: a 'openai-compatible' endpoint needs base_url",
        ),
        (
            '[endpoints.a]\nkind = "ollama"\nbase_url = "http://h"\n\n[models]\nm = ["b:x"]\n',
            6,
            "models.m: unknown provider endpoint 'b'",
        ),
        ('[models]\nm = ["ollama"]\n', 2, "models.m: provider target 'ollama' needs a model"),
        ("[models]\nm = []\n", 2, "models.m: List should have at least 1 item"),
        (
            'default_model = "x"\n[models]\nm = ["offline"]\n',
            1,
            "default_model: 'x' is not an alias",
        ),
        (
            '[endpoints.a]\nkind = "ollama"\nbase_url = "http://h"\nprice = { input = -1 }\n',
            4,
            "endpoints.a.price.input: Input should be greater than or equal to 0",
        ),
    ],
)
def test_a_wrong_field_is_named_with_its_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProviderFileError) as caught:
        load(path, secrets={})
    message = str(caught.value)
    assert f"{path}:{line}: " in message
    assert words in message


def test_not_toml_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[endpoints.a]\nkind = "ollama\n')
    with pytest.raises(ProviderFileError, match=r"agent.toml: not valid TOML: .*line 2"):
        load(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProviderFileError, match="cannot read the provider file"):
        load(tmp_path / "nope.toml")


def test_the_service_refuses_to_start_on_a_wrong_file_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[endpoints.a]\nkind = "ollama"\nbase_url = "http://h"\ntimeout = 0\n')
    root = Path(__file__).resolve().parents[4]
    env = {"AGENT_CONFIG": str(path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert f"agent-service: {path}:4: endpoints.a.timeout: Input should be greater than 0" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_the_docs_example_file_passes_the_start_up_check(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[4] / "docs" / "configuration.md"
    text = docs.read_text(encoding="utf-8")
    blocks = [part.split("```", 1)[0] for part in text.split("```toml\n")[1:]]
    (block,) = [b for b in blocks if "[endpoints." in b]
    loaded = load(write(tmp_path, block), {"VLLM_A_KEY": "k", "ANTHROPIC_API_KEY": "k"})
    assert loaded.summary_model == "cheap"
    assert [t.id for t in loaded.models["chat"]] == [
        "vllm-a:qwen2.5-7b",
        "vllm-b:qwen2.5-7b",
        "claude:claude-haiku-4-5",
    ]
