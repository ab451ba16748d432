from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from graph.errors import ToolInputError, ToolUnavailableError
from nodes.tools.searxng import SNIPPET_LENGTH, make_searxng_tool
from tests.fakes.server_thread import ServedApp, free_port

TOOL_TIMEOUT = 0.3

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class SeenRequest:
    method: str
    path: str
    params: list[tuple[str, str]]


@dataclass
class FakeSearxng:
    """A scripted SearXNG: set ``handler`` per test, read ``requests`` afterwards."""

    url: str = ""
    requests: list[SeenRequest] = field(default_factory=list)
    handler: Handler | None = None
    release: threading.Event = field(default_factory=threading.Event)

    def reply_json(self, payload: Any, status: int = 200) -> None:
        async def handler(_: Request) -> Response:
            return JSONResponse(payload, status_code=status)

        self.handler = handler

    def reply_results(self, count: int) -> None:
        self.reply_json({"query": "q", "results": [result(i) for i in range(1, count + 1)]})

    async def hang(self, _: Request) -> Response:
        """Answer only after the test ends (bounded), far beyond the tool timeout."""
        deadline = time.monotonic() + 5
        while not self.release.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return JSONResponse({"results": []})


def result(number: int, content: str | None = None) -> dict[str, Any]:
    return {
        "title": f"Result {number}",
        "url": f"https://example.org/{number}",
        "content": content if content is not None else f"Snippet {number}.",
        "engine": "fake",
    }


@pytest.fixture
def searxng() -> Iterator[FakeSearxng]:
    fake = FakeSearxng()

    async def endpoint(request: Request) -> Response:
        fake.requests.append(
            SeenRequest(request.method, request.url.path, list(request.query_params.multi_items()))
        )
        if fake.handler is None:
            return PlainTextResponse("no handler scripted", status_code=599)
        return await fake.handler(request)

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
    served = ServedApp(app).start()
    fake.url = served.url
    try:
        yield fake
    finally:
        fake.release.set()
        served.stop()
    assert not served.running


def search_tool(base_url: str | None, **options: Any) -> Any:
    options.setdefault("timeout", TOOL_TIMEOUT)
    return make_searxng_tool(base_url, **options)


async def test_sends_one_get_to_search_with_q_and_format(searxng: FakeSearxng) -> None:
    searxng.reply_results(1)
    await search_tool(searxng.url).ainvoke({"query": "  langgraph checkpoints  "})
    assert searxng.requests == [
        SeenRequest("GET", "/search", [("q", "langgraph checkpoints"), ("format", "json")])
    ]


async def test_base_url_with_path_and_trailing_slash(searxng: FakeSearxng) -> None:
    searxng.reply_results(1)
    await search_tool(f"{searxng.url}/searx/").ainvoke({"query": "x"})
    assert [seen.path for seen in searxng.requests] == ["/searx/search"]


async def test_formats_top_k_results(searxng: FakeSearxng) -> None:
    searxng.reply_results(8)
    output = await search_tool(searxng.url, top_k=3).ainvoke({"query": "q"})
    assert output == (
        "1. Result 1\n   URL: https://example.org/1\n   Snippet 1.\n\n"
        "2. Result 2\n   URL: https://example.org/2\n   Snippet 2.\n\n"
        "3. Result 3\n   URL: https://example.org/3\n   Snippet 3."
    )


async def test_max_results_is_respected(searxng: FakeSearxng) -> None:
    searxng.reply_results(8)
    output = await search_tool(searxng.url, top_k=5).ainvoke({"query": "q", "max_results": 2})
    assert "2. Result 2" in output
    assert "Result 3" not in output


@pytest.mark.parametrize("max_results", [0, -1, 6])
async def test_max_results_out_of_range(searxng: FakeSearxng, max_results: int) -> None:
    with pytest.raises(ToolInputError, match="between 1 and 5"):
        await search_tool(searxng.url, top_k=5).ainvoke({"query": "q", "max_results": max_results})
    assert searxng.requests == []


async def test_long_snippets_are_truncated_and_flattened(searxng: FakeSearxng) -> None:
    searxng.reply_json({"results": [result(1, content="word\n" * 200)]})
    output = await search_tool(searxng.url).ainvoke({"query": "q"})
    snippet = output.splitlines()[2].strip()
    assert len(snippet) <= SNIPPET_LENGTH
    assert snippet.endswith("\u2026")
    assert snippet.startswith("word word")


async def test_results_without_url_are_skipped(searxng: FakeSearxng) -> None:
    searxng.reply_json({"results": [{"title": "no url"}, "junk", result(2, content="")]})
    output = await search_tool(searxng.url).ainvoke({"query": "q"})
    assert output == "1. Result 2\n   URL: https://example.org/2"


async def test_empty_results(searxng: FakeSearxng) -> None:
    searxng.reply_json({"query": "nothing", "results": []})
    assert await search_tool(searxng.url).ainvoke({"query": "nothing"}) == (
        "No results for 'nothing'."
    )


async def test_uses_the_given_pooled_client(searxng: FakeSearxng) -> None:
    searxng.reply_results(2)
    async with httpx.AsyncClient() as client:
        tool = search_tool(searxng.url, client=client)
        first = await tool.ainvoke({"query": "a"})
        second = await tool.ainvoke({"query": "b"})
        assert not client.is_closed
    assert first == second
    assert [seen.params[0] for seen in searxng.requests] == [("q", "a"), ("q", "b")]


async def test_hanging_server_times_out(searxng: FakeSearxng) -> None:
    searxng.handler = searxng.hang
    tool = search_tool(searxng.url)
    started = time.monotonic()
    with pytest.raises(ToolUnavailableError, match=r"timed out.*within 0\.3 s"):
        await tool.ainvoke({"query": "q"})
    assert time.monotonic() - started < 3


async def test_hanging_server_times_out_with_a_patient_pooled_client(
    searxng: FakeSearxng,
) -> None:
    searxng.handler = searxng.hang
    async with httpx.AsyncClient(timeout=60) as client:
        tool = search_tool(searxng.url, client=client)
        started = time.monotonic()
        with pytest.raises(ToolUnavailableError, match="timed out"):
            await tool.ainvoke({"query": "q"})
        assert time.monotonic() - started < 3


async def test_server_error(searxng: FakeSearxng) -> None:
    searxng.reply_json({"error": "boom"}, status=500)
    with pytest.raises(ToolUnavailableError, match="HTTP 500"):
        await search_tool(searxng.url).ainvoke({"query": "q"})


async def test_json_format_disabled(searxng: FakeSearxng) -> None:
    async def forbidden(_: Request) -> Response:
        return PlainTextResponse("Forbidden", status_code=403)

    searxng.handler = forbidden
    with pytest.raises(ToolUnavailableError, match=r"HTTP 403 \(is the JSON format enabled"):
        await search_tool(searxng.url).ainvoke({"query": "q"})


async def test_redirects_are_not_followed(searxng: FakeSearxng) -> None:
    async def redirect(_: Request) -> Response:
        return Response(status_code=302, headers={"location": "http://example.invalid/"})

    searxng.handler = redirect
    with pytest.raises(ToolUnavailableError, match="HTTP 302"):
        await search_tool(searxng.url).ainvoke({"query": "q"})
    assert len(searxng.requests) == 1


async def test_non_json_answer(searxng: FakeSearxng) -> None:
    async def html(_: Request) -> Response:
        return PlainTextResponse("<html>results</html>", media_type="text/html")

    searxng.handler = html
    with pytest.raises(ToolUnavailableError, match="did not answer with JSON"):
        await search_tool(searxng.url).ainvoke({"query": "q"})


@pytest.mark.parametrize("payload", [[1, 2], {"results": "many"}, {"answers": []}])
async def test_unexpected_json_shape(searxng: FakeSearxng, payload: Any) -> None:
    searxng.reply_json(payload)
    with pytest.raises(ToolUnavailableError, match="no `results` list"):
        await search_tool(searxng.url).ainvoke({"query": "q"})


@pytest.mark.parametrize("base_url", [None, "", "   "])
async def test_unconfigured(base_url: str | None) -> None:
    with pytest.raises(ToolUnavailableError, match="SEARXNG_URL") as caught:
        await search_tool(base_url).ainvoke({"query": "q"})
    assert caught.value.message == (
        "Web search is not configured: set SEARXNG_URL to a SearXNG instance with the JSON "
        "format enabled."
    )


async def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ToolUnavailableError, match="could not reach"):
        await search_tool(url).ainvoke({"query": "q"})


async def test_url_without_scheme() -> None:
    with pytest.raises(ToolUnavailableError, match="http:// or https://"):
        await search_tool("searxng.local:8080").ainvoke({"query": "q"})


@pytest.mark.parametrize(("query", "message"), [("   ", "empty"), ("x" * 501, "too long")])
async def test_invalid_query(searxng: FakeSearxng, query: str, message: str) -> None:
    with pytest.raises(ToolInputError, match=message):
        await search_tool(searxng.url).ainvoke({"query": query})
    assert searxng.requests == []


def test_rejects_nonsensical_settings() -> None:
    with pytest.raises(ValueError, match="top_k"):
        make_searxng_tool("http://127.0.0.1", top_k=0)


def test_tool_metadata() -> None:
    tool = make_searxng_tool(None, top_k=4)
    assert tool.name == "searxng_search"
    assert "at most 4 results" in tool.description
    properties = convert_to_openai_tool(tool)["function"]["parameters"]["properties"]
    assert set(properties) == {"query", "max_results"}
    assert all(field.get("description") for field in properties.values())
