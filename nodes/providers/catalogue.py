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
    Price,
    ProviderConfig,
    ProviderSpec,
    provider_kinds,
    provider_spec,
)
from nodes.providers.windows import OFFLINE_WINDOW, family_window

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
    """One entry of a provider chain: an endpoint, its kind, and the model name it knows."""

    kind: str
    model: str
    endpoint: str = ""
    """The endpoint's name; the kind's name (the environment-only form) when left empty."""

    def __post_init__(self) -> None:
        if not self.endpoint:
            object.__setattr__(self, "endpoint", self.kind)

    @property
    def spec(self) -> ProviderSpec:
        """The declaration of the target's kind."""
        return provider_spec(self.kind)

    @property
    def id(self) -> str:
        """`endpoint:model`, the name used in settings, attempts, metrics and logs."""
        if self.spec.single_model is not None:
            return self.endpoint
        return f"{self.endpoint}:{self.model}"

    @classmethod
    def parse(
        cls, spec: str, endpoints: Mapping[str, ProviderConfig] | None = None
    ) -> ProviderTarget:
        """Parse `endpoint:model` (split on the first colon: model names may contain colons).

        The name before the colon is one of `endpoints` (named endpoints of the provider
        file), else a provider kind (the environment-only form's endpoint of that kind).
        """
        name, _, model = spec.strip().partition(":")
        config = (endpoints or {}).get(name)
        kind = config.kind if config is not None else name
        declared = provider_kinds().get(kind)
        if declared is None:
            known = ", ".join([*(endpoints or {}), *provider_kinds()])
            raise ValueError(f"unknown provider endpoint {name!r} in {spec!r}; known: {known}")
        if declared.single_model is not None:
            return cls(kind=kind, model=model or declared.single_model, endpoint=name)
        if not model:
            raise ValueError(f"provider target {spec!r} needs a model: write '{name}:<model>'")
        return cls(kind=kind, model=model, endpoint=name)


@dataclass
class ProviderCatalogue:
    """Resolves aliases to provider chains and owns one chat model per target.

    Chat models of one endpoint share what its `ChatModels` pools (an HTTP client);
    `aclose` releases them.
    """

    aliases: Mapping[str, list[ProviderTarget]]
    default_alias: str
    configs: Mapping[str, ProviderConfig] = field(default_factory=dict)
    """Endpoints by name (the environment-only form: one per kind, named after it)."""
    summary_alias: str | None = None
    """The alias whose chain summarises old turns when a prompt is compacted; None: the
    turn's own chain."""
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
        if self.summary_alias is not None and self.summary_alias not in self.aliases:
            raise ValueError(
                f"summary model alias {self.summary_alias!r} is not among the configured "
                f"aliases: {', '.join(self.aliases)}"
            )
        for alias, chain in self.aliases.items():
            for target in chain:
                missing = target.spec.missing_setting(self.config(target.endpoint))
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

    def config(self, endpoint: str) -> ProviderConfig:
        """The settings of an endpoint (a kind's defaults when it was not configured)."""
        return self.configs.get(endpoint) or ProviderConfig(kind=endpoint)

    def target(self, spec: str) -> ProviderTarget:
        """The target an `endpoint:model` id names (the ids a chain in the state holds)."""
        return ProviderTarget.parse(spec, self.configs)

    def context_window(self, target: ProviderTarget) -> int:
        """Tokens the target's model takes in one request (prompt and answer together).

        The endpoint's declared window, else the model family's (`windows.py`).
        """
        declared = self.config(target.endpoint).context_window
        if declared is not None:
            return declared
        if target.spec.single_model is not None:
            return OFFLINE_WINDOW
        return family_window(target.model)

    def price(self, target: ProviderTarget) -> Price | None:
        """What the target's endpoint charges, if the operator said."""
        return self.config(target.endpoint).price

    def chat_model(self, target: ProviderTarget) -> BaseChatModel:
        """The chat model of a target, built once and then reused."""
        model = self._models.get(target.id)
        if model is None:
            model = self._models_of(target).chat_model(target.model)
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

    def _models_of(self, target: ProviderTarget) -> ChatModels:
        models = self._kind_models.get(target.endpoint)
        if models is None:
            spec = target.spec
            config = self.config(target.endpoint)
            models = spec.open(replace(config, base_url=config.base_url or spec.default_base_url))
            self._kind_models[target.endpoint] = models
        return models

    async def aclose(self) -> None:
        """Close the pooled HTTP clients."""
        for models in self._kind_models.values():
            await models.aclose()
        self._kind_models.clear()
        self._models.clear()
        self._bound.clear()
