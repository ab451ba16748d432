"""The structured values of two settings: KEY_BUDGETS' budgets and MCP_SERVERS' servers.

Plain Pydantic models, read from the JSON those variables hold; `ServiceSettings` declares
the fields and checks the names (`server/settings/service.py`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class KeyBudget(BaseModel):
    """One key's monthly budget in KEY_BUDGETS; a limit left out is no limit."""

    model_config = ConfigDict(extra="forbid")

    tokens: int | None = Field(default=None, ge=0)
    """Input plus output tokens per calendar month (UTC)."""
    usd: float | None = Field(default=None, ge=0)
    """US dollars per calendar month (UTC), at the endpoints' prices."""


MCP_SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,62}$")
"""A name of MCP_SERVERS: the prefix of its tools' names, which OpenAI limits to 64
characters of `[A-Za-z0-9_-]` (so at most 62, leaving `_` and one character)."""


class McpStdioServer(BaseModel):
    """An MCP server of MCP_SERVERS that the service starts as a child process (stdio)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1)
    """The executable, e.g. `npx`, `uvx` or a path."""
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    """Variables added to the few the child inherits (PATH, HOME, USER, SHELL, TERM, LOGNAME)."""
    cwd: str | None = None
    """Its working directory; the service's when unset."""


class McpHttpServer(BaseModel):
    """An MCP server of MCP_SERVERS reached over Streamable HTTP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://[^\s/]+")
    """The MCP endpoint, e.g. `http://127.0.0.1:9000/mcp`."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Sent with every request."""
    headers_env: dict[str, str] = Field(default_factory=dict)
    """Header -> name of the variable (environment or `.env`) that holds its value, so a
    secret stays out of MCP_SERVERS: {"Authorization": "DOCS_MCP_AUTH"}."""


def _mcp_transport(value: Any) -> str | None:
    if isinstance(value, McpStdioServer | McpHttpServer):
        return "stdio" if isinstance(value, McpStdioServer) else "http"
    if isinstance(value, dict):
        return "stdio" if "command" in value else "http" if "url" in value else None
    return None


McpServerSpec = Annotated[
    Annotated[McpStdioServer, Tag("stdio")] | Annotated[McpHttpServer, Tag("http")],
    Discriminator(
        _mcp_transport,
        custom_error_type="mcp_server",
        custom_error_message=(
            'an MCP server is {"command": ..., "args": [...], "env": {...}} (stdio) or '
            '{"url": ..., "headers": {...}} (Streamable HTTP)'
        ),
    ),
]
"""One server of MCP_SERVERS: a `command` to run (stdio) or a `url` (Streamable HTTP)."""
