"""How each provider SDK's chat models are opened: the SDK is imported on the first call.

Every kind module is imported at start (the settings are generated from what they declare),
but an SDK costs up to 1.7 s of imports (anthropic's, openai's 0.7 s): each opener imports
its SDK's module only when a catalogue first builds a model of that kind, so a service whose
`AGENT_MODELS` names no Anthropic target never loads the anthropic SDK. The kinds name these
openers as their `ProviderSpec.open`; `nodes/providers/errors.py` classifies an SDK's
exceptions once the SDK is loaded, and no sooner.
"""

from __future__ import annotations

from nodes.providers.registry import ChatModels, ProviderConfig


def open_openai_wire(config: ProviderConfig) -> ChatModels:
    """ChatOpenAI models (langchain-openai and the openai SDK), for every OpenAI-shaped kind."""
    from nodes.providers.openai_wire import OpenAIWireModels

    return OpenAIWireModels(config)


def open_reasoning_content_wire(config: ProviderConfig) -> ChatModels:
    """ChatOpenAI models that send reasoning back as `reasoning_content` (DeepSeek, vLLM)."""
    from nodes.providers.openai_wire import OpenAIWireModels

    return OpenAIWireModels(config, reasoning_echo="reasoning_content")


def open_openrouter_wire(config: ProviderConfig) -> ChatModels:
    """ChatOpenAI models that send reasoning back as OpenRouter's `reasoning` fields."""
    from nodes.providers.openai_wire import OpenAIWireModels

    return OpenAIWireModels(config, reasoning_echo="openrouter")


def open_anthropic(config: ProviderConfig) -> ChatModels:
    """ChatAnthropic models (langchain-anthropic and the anthropic SDK)."""
    from nodes.providers.anthropic_wire import AnthropicModels

    return AnthropicModels(config)


def open_ollama(config: ProviderConfig) -> ChatModels:
    """ChatOllama models (langchain-ollama and the ollama client)."""
    from nodes.providers.ollama_wire import OllamaModels

    return OllamaModels(config)
