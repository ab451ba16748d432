"""All configuration of the service: the only package that reads the environment (and `.env`).

`ServiceSettings` (`service.py`) holds every setting but the provider kinds' own variables,
`values.py` the structured values of KEY_BUDGETS and MCP_SERVERS. The provider kinds' own
variables (OPENAI_API_KEY, OLLAMA_BASE_URL, ...) are not listed here: each kind declares them
in `nodes/providers/kinds/`, and `settings_model` adds one typed field per declared variable,
named after it, to the settings read here (`Settings`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, create_model

from nodes.providers.registry import ProviderSpec, provider_kinds
from server.settings.service import ServiceSettings
from server.settings.values import (
    MCP_SERVER_NAME,
    KeyBudget,
    McpHttpServer,
    McpServerSpec,
    McpStdioServer,
)

__all__ = [
    "MCP_SERVER_NAME",
    "KeyBudget",
    "McpHttpServer",
    "McpServerSpec",
    "McpStdioServer",
    "ServiceSettings",
    "Settings",
    "settings_model",
]


_SETTINGS_DOC = """Environment variables (case-insensitive) and `.env`; see `.env.example`.

Besides the fields of `ServiceSettings`, one field per key or URL a provider kind declares
(`openai_api_key` for OPENAI_API_KEY); read them with `provider_api_key`/`provider_base_url`.
"""


def settings_model(kinds: Iterable[ProviderSpec]) -> type[ServiceSettings]:
    """`ServiceSettings` plus one typed field per variable the given kinds declare.

    A key is a `SecretStr | None` field and a URL a `str | None` field, both None by default
    and named after their variable, so OPENAI_API_KEY is read exactly as a hand-written
    `openai_api_key` field would be, from the environment or `.env`.
    """
    specs = tuple(kinds)
    fields: dict[str, Any] = {}
    for spec in specs:
        for role, setting in spec.settings():
            name = setting.field
            if name in ServiceSettings.model_fields or name in fields:
                raise ValueError(f"{setting.env} of provider kind {spec.kind!r} is taken")
            kind_of_value: Any = SecretStr | None if role == "api_key" else str | None
            what = "API key" if role == "api_key" else "base URL"
            fields[name] = (kind_of_value, Field(default=None, description=f"{spec.kind} {what}"))
    model = create_model(
        "Settings",
        __base__=ServiceSettings,
        __module__=__name__,
        __doc__=_SETTINGS_DOC,
        **fields,
    )
    model.provider_specs = specs
    return model


if TYPE_CHECKING:
    # mypy sees Settings without the generated provider fields: typed code reads those
    # through `provider_api_key` / `provider_base_url`, by the names a kind declares.
    class Settings(ServiceSettings):
        """Environment variables (case-insensitive) and `.env`; see `.env.example`."""

else:
    Settings = settings_model(provider_kinds().values())
