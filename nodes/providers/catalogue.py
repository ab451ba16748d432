"""Model aliases to provider chains, and one LangChain chat model per provider target."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from graph.errors import ModelNotFoundError
from nodes.providers.registry import (
    ChatModels,
    ProviderConfig,
    ProviderSpec,
    provider_kinds,
    provider_spec,
)

#: Tool sets bound to a model that are kept for reuse; client tool lists vary, so bounded.
MAX_BOUND_TOOL_SETS: Final = 256


def tool_set_key(tools: Sequence[BaseTool | dict[str, Any]], options: Mapping[str, Any]) -> str:
    """What identifies a tool set bound to a model, as a string.

    Server tools by name (one registry per process), client tools by their whole spec, and
    the binding's options (`tool_choice`, `parallel_tool_calls`).
    """
    named = [t.name if isinstance(t, BaseTool) else t for t in tools]
    return json.dumps([named, options], sort_keys=True, default=str)


@dataclass(frozen=True)
class ProviderTarget:
    """One entry of a provider chain: a provider kind and the model name it knows."""

    kind: str
    model: str

    @property
    def spec(self) -> ProviderSpec:
        """The declaration of the target's kind."""
        return provider_spec(self.kind)

    @property
    def id(self) -> str:
        """`kind:model`, the name used in settings, attempts, metrics and logs."""
        return self.kind if self.spec.single_model is not None else f"{self.kind}:{self.model}"

    @classmethod
    def parse(cls, spec: str) -> ProviderTarget:
        """Parse `kind:model` (split on the first colon: model names may contain colons)."""
        kind, _, model = spec.strip().partition(":")
        declared = provider_kinds().get(kind)
        if declared is None:
            known = ", ".join(provider_kinds())
            raise ValueError(f"unknown provider kind {kind!r} in {spec!r}; known: {known}")
        if declared.single_model is not None:
            return cls(kind=kind, model=model or declared.single_model)
        if not model:
            raise ValueError(f"provider target {spec!r} needs a model: write '{kind}:<model>'")
        return cls(kind=kind, model=model)


@dataclass
class ProviderCatalogue:
    """Resolves aliases to provider chains and owns one chat model per target.

    Chat models of one provider kind share what its `ChatModels` pools (an HTTP client);
    `aclose` releases them.
    """

    aliases: Mapping[str, list[ProviderTarget]]
    default_alias: str
    configs: Mapping[str, ProviderConfig] = field(default_factory=dict)
    _models: dict[str, BaseChatModel] = field(default_factory=dict, init=False)
    _kind_models: dict[str, ChatModels] = field(default_factory=dict, init=False)
    _bound: OrderedDict[tuple[str, str], Runnable[LanguageModelInput, Any]] = field(
        default_factory=OrderedDict, init=False
    )

    def __post_init__(self) -> None:
        if self.default_alias not in self.aliases:
            raise ValueError(
                f"default model alias {self.default_alias!r} is not among the configured "
                f"aliases: {', '.join(self.aliases)}"
            )
        for alias, chain in self.aliases.items():
            for target in chain:
                missing = target.spec.missing_setting(self.config(target.kind))
                if missing:
                    raise ValueError(f"alias {alias!r} uses {target.id!r}, which needs {missing}")

    def alias_names(self) -> list[str]:
        """Aliases in configuration order; what `GET /v1/models` lists."""
        return list(self.aliases)

    def resolve(self, alias: str | None) -> list[ProviderTarget]:
        """The provider chain of an alias (the default alias for None)."""
        name = alias or self.default_alias
        chain = self.aliases.get(name)
        if chain is None:
            raise ModelNotFoundError(name, self.alias_names())
        return chain

    def config(self, kind: str) -> ProviderConfig:
        """The settings of a provider kind (defaults when it was not configured)."""
        return self.configs.get(kind) or ProviderConfig(kind=kind)

    def chat_model(self, target: ProviderTarget) -> BaseChatModel:
        """The chat model of a target, built once and then reused."""
        model = self._models.get(target.id)
        if model is None:
            model = self._models_of(target.spec).chat_model(target.model)
            self._models[target.id] = model
        return model

    def with_tools(
        self,
        target: ProviderTarget,
        tools: Sequence[BaseTool | dict[str, Any]],
        options: Mapping[str, Any],
    ) -> Runnable[LanguageModelInput, Any]:
        """The target's chat model with these tools bound, converted once per tool set.

        `bind_tools` turns every tool into the provider's schema (a JSON schema generated
        from the tool's arguments model): on every turn that would be the same work again.
        """
        key = (target.id, tool_set_key(tools, options))
        bound = self._bound.get(key)
        if bound is None:
            bound = self.chat_model(target).bind_tools(list(tools), **options)
            self._bound[key] = bound
            while len(self._bound) > MAX_BOUND_TOOL_SETS:
                self._bound.popitem(last=False)
        else:
            self._bound.move_to_end(key)
        return bound

    def _models_of(self, spec: ProviderSpec) -> ChatModels:
        models = self._kind_models.get(spec.kind)
        if models is None:
            config = self.config(spec.kind)
            models = spec.open(replace(config, base_url=config.base_url or spec.default_base_url))
            self._kind_models[spec.kind] = models
        return models

    async def aclose(self) -> None:
        """Close the pooled HTTP clients."""
        for models in self._kind_models.values():
            await models.aclose()
        self._kind_models.clear()
        self._models.clear()
        self._bound.clear()
