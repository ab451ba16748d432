"""`ollama`: a local or remote Ollama server (langchain-ollama's ChatOllama)."""

from __future__ import annotations

from nodes.providers.openers import open_ollama
from nodes.providers.registry import EnvSetting, ProviderSpec

KIND = ProviderSpec(
    kind="ollama",
    open=open_ollama,  # nodes/providers/ollama_wire.py, imported with the first model
    base_url=EnvSetting("OLLAMA_BASE_URL"),
    default_base_url="http://127.0.0.1:11434",
)
