"""Context windows of well-known model families, for endpoints that do not declare one.

An endpoint's `context_window` (the provider file) always wins. Without it, the model name
is matched against the families below, longest prefix first, after dropping an
organisation prefix (`meta-llama/`, `openai/`) and lower-casing; a model of no known family
gets `FALLBACK_WINDOW`, which is small on purpose: compacting a prompt that would have fit
costs one summary call, sending one that does not fit fails the turn.
"""

from __future__ import annotations

from typing import Final

FALLBACK_WINDOW: Final = 8192
"""Tokens assumed for a model of no known family (the smallest window in common use)."""

OFFLINE_WINDOW: Final = 131_072
"""The offline model reads any length; compaction treats it as a 128k model."""

#: Model name prefix -> context window in tokens (the providers' published figures).
FAMILY_WINDOWS: Final[dict[str, int]] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
    "claude": 200_000,
    "llama-3.1": 131_072,
    "llama-3.2": 131_072,
    "llama-3.3": 131_072,
    "llama3.1": 131_072,
    "llama3.2": 131_072,
    "llama3.3": 131_072,
    "llama-3": 8_192,
    "llama3": 8_192,
    "qwen3": 32_768,
    "qwen2.5": 32_768,
    "qwen": 32_768,
    "mistral-large": 131_072,
    "mistral": 32_768,
    "mixtral": 32_768,
    "deepseek": 65_536,
    "gemma-3": 131_072,
    "gemma3": 131_072,
    "gemma": 8_192,
    "phi-4": 16_384,
    "phi4": 16_384,
    "command-r": 131_072,
}


def family_window(model: str) -> int:
    """The context window of `model` by its family, or `FALLBACK_WINDOW`."""
    name = model.rsplit("/", 1)[-1].lower()
    for prefix in sorted(FAMILY_WINDOWS, key=len, reverse=True):
        if name.startswith(prefix):
            return FAMILY_WINDOWS[prefix]
    return FALLBACK_WINDOW
