"""Web search through a self-hosted SearXNG instance.

SearXNG is a metasearch engine that can answer in JSON, so the agent gets web results
without an API key or a commercial search account. The tool talks only to the
configured instance (one ``GET {base_url}/search?q=...&format=json``, no redirects
followed) and reports every backend problem as ``ToolUnavailableError`` so the model
can tell the user that search is down instead of inventing results.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from graph.errors import ToolInputError, ToolUnavailableError
from nodes.redact import redact_urls

__all__ = [
    "MAX_QUERY_LENGTH",
    "NOT_CONFIGURED_MESSAGE",
    "SNIPPET_LENGTH",
    "SearxngInput",
    "make_searxng_tool",
]

#: Longest accepted query, in characters.
MAX_QUERY_LENGTH = 500
#: Snippets longer than this are cut (with an ellipsis) to keep the context small.
SNIPPET_LENGTH = 300
#: Titles longer than this are cut as well.
TITLE_LENGTH = 200
NOT_CONFIGURED_MESSAGE = (
    "Web search is not configured: set SEARXNG_URL to a SearXNG instance with the JSON "
    "format enabled."
)

_WHITESPACE = re.compile(r"\s+")


class SearxngInput(BaseModel):
    """Arguments of the ``searxng_search`` tool."""

    query: str = Field(
        description=f"What to search the web for, like a search-engine query "
        f"(at most {MAX_QUERY_LENGTH} characters)."
    )
    max_results: int | None = Field(
        default=None,
        description="How many results to return (at least 1); omit for the default number.",
    )


def _shorten(text: str, limit: int) -> str:
    """Collapse whitespace and cut to ``limit`` characters, marking the cut."""
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


def _check_query(query: str) -> str:
    text = query.strip()
    if not text:
        raise ToolInputError("The search query is empty; say what to search for.")
    if len(text) > MAX_QUERY_LENGTH:
        raise ToolInputError(
            f"The search query is too long ({len(text)} characters; the limit is "
            f"{MAX_QUERY_LENGTH}). Use a shorter query."
        )
    return text


def _check_max_results(max_results: int | None, top_k: int) -> int:
    if max_results is None:
        return top_k
    if not 1 <= max_results <= top_k:
        raise ToolInputError(f"`max_results` must be between 1 and {top_k}, got {max_results}.")
    return max_results


async def _fetch(client: httpx.AsyncClient, url: str, query: str, seconds: float) -> httpx.Response:
    """Send the one request, bounded by ``seconds`` overall as well as per phase."""
    try:
        async with asyncio.timeout(seconds):
            return await client.get(
                url,
                params={"q": query, "format": "json"},
                headers={"Accept": "application/json"},
                timeout=seconds,
                follow_redirects=False,
            )
    except (httpx.TimeoutException, TimeoutError):
        raise ToolUnavailableError(
            f"Web search timed out: the SearXNG instance did not answer within {seconds:g} s."
        ) from None
    except httpx.UnsupportedProtocol:
        raise ToolUnavailableError(
            "Web search is misconfigured: SEARXNG_URL must start with http:// or https://."
        ) from None
    except httpx.InvalidURL:
        raise ToolUnavailableError(
            "Web search is misconfigured: SEARXNG_URL is not a valid URL."
        ) from None
    except httpx.HTTPError as exc:
        raise ToolUnavailableError(
            "Web search is unavailable: could not reach the SearXNG instance "
            f"({redact_urls(repr(exc))})."
        ) from None


def _results(response: httpx.Response) -> list[Any]:
    """Return the ``results`` list of a SearXNG JSON answer, or explain what is wrong."""
    if not response.is_success:
        hint = (
            " (is the JSON format enabled in its settings?)" if response.status_code == 403 else ""
        )
        raise ToolUnavailableError(
            f"Web search failed: the SearXNG instance answered HTTP {response.status_code}{hint}."
        )
    try:
        payload: object = response.json()
    except ValueError:
        raise ToolUnavailableError(
            "Web search failed: the SearXNG instance did not answer with JSON (is the JSON "
            "format enabled in its settings?)."
        ) from None
    results = payload.get("results") if isinstance(payload, Mapping) else None
    if not isinstance(results, list):
        raise ToolUnavailableError("Web search failed: the SearXNG answer has no `results` list.")
    return results


def _format_entry(number: int, item: Mapping[str, Any]) -> str:
    url = str(item["url"])
    title = _shorten(str(item.get("title") or url), TITLE_LENGTH)
    snippet = _shorten(str(item.get("content") or ""), SNIPPET_LENGTH)
    lines = [f"{number}. {title}", f"   URL: {url}"]
    if snippet:
        lines.append(f"   {snippet}")
    return "\n".join(lines)


def _format_results(query: str, results: Sequence[Any], limit: int) -> str:
    """Number the first ``limit`` usable results; items without a URL are skipped."""
    usable = [item for item in results if isinstance(item, Mapping) and item.get("url")]
    if not usable:
        return f"No results for '{query}'."
    entries = [_format_entry(number, item) for number, item in enumerate(usable[:limit], 1)]
    return "\n\n".join(entries)


def make_searxng_tool(
    base_url: str | None,
    *,
    client: httpx.AsyncClient | None = None,
    timeout: float = 10.0,
    top_k: int = 5,
) -> BaseTool:
    """Build the ``searxng_search`` tool for one SearXNG instance.

    The tool always exists, even without a URL, so that the model's tool list does
    not depend on deployment details; unconfigured, it answers every call with a
    ``ToolUnavailableError`` that tells the operator which setting is missing.

    Args:
        base_url: Root URL of the instance, e.g. ``http://searxng:8080``; ``None`` or
            empty when search is not configured.
        client: A pooled client owned by the caller; when ``None`` each call opens
            and closes its own short-lived client.
        timeout: Seconds one search may take in total.
        top_k: Default and maximum number of results returned.

    Returns:
        The tool. Its output is numbered entries (title, ``URL:`` line, snippet cut
        to ``SNIPPET_LENGTH`` characters) separated by blank lines, or
        ``"No results for '<query>'."``.

    Raises:
        ValueError: If ``timeout`` or ``top_k`` is not positive.
    """
    if timeout <= 0 or top_k < 1:
        raise ValueError("timeout must be positive and top_k at least 1")
    root = (base_url or "").strip().rstrip("/")

    async def searxng_search(query: str, max_results: int | None = None) -> str:
        if not root:
            raise ToolUnavailableError(NOT_CONFIGURED_MESSAGE)
        text = _check_query(query)
        limit = _check_max_results(max_results, top_k)
        url = f"{root}/search"
        if client is not None:
            response = await _fetch(client, url, text, timeout)
        else:
            async with httpx.AsyncClient() as own_client:
                response = await _fetch(own_client, url, text, timeout)
        return _format_results(text, _results(response), limit)

    return StructuredTool.from_function(
        coroutine=searxng_search,
        name="searxng_search",
        description=(
            "Search the web and get the top results, each with a title, URL and short "
            "snippet. Use it for current events, facts you are unsure about, or anything "
            "after your training data; cite the URLs you rely on. Write `query` like a "
            f"search-engine query. Returns at most {top_k} results."
        ),
        args_schema=SearxngInput,
    )
