"""The ollama provider through langchain-ollama against a fake Ollama server over HTTP."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage

from graph.context import Context
from tests.factories import make_graph
from tests.fakes.ollama import FakeOllama, OllamaError, OllamaReply
from tests.fakes.server_thread import free_port
from tests.fakes.upstream import FakeUpstream, Reply

OLLAMA = "ollama:llama3.1"
OPENAI = "openai:gpt-fallback"


async def run(deps: Any, text: str) -> dict[str, Any]:
    result = await make_graph(deps).ainvoke(
        {"messages": [HumanMessage(content=text)]},
        {"configurable": {"thread_id": "t"}},
        context=Context(model="m"),
    )
    return dict(result)


async def test_ollama_answers_and_reports_usage(agent_deps: Any, ollama: FakeOllama) -> None:
    ollama.script(OllamaReply("Hello from llama", usage=(12, 4)))
    deps = agent_deps([OLLAMA], {"ollama": ollama.base_url})

    result = await run(deps, "hi")

    assert result["messages"][-1].content.strip() == "Hello from llama"
    assert result["provider"] == OLLAMA
    assert result["usage"] == {"input_tokens": 12, "output_tokens": 4, "total_tokens": 16}
    assert ollama.requests[0]["model"] == "llama3.1"


async def test_ollama_drives_a_server_tool(agent_deps: Any, ollama: FakeOllama) -> None:
    ollama.script(
        OllamaReply(tool_calls=[("calculator", {"expression": "17 * 23"})]),
        OllamaReply("It is 391."),
    )
    deps = agent_deps([OLLAMA], {"ollama": ollama.base_url})

    result = await run(deps, "What is 17 * 23?")

    tool = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert tool.content == "391"
    assert result["messages"][-1].content.strip() == "It is 391."
    assert "tools" in ollama.requests[0]
    assert any(m.get("role") == "tool" for m in ollama.requests[1]["messages"])


async def test_ollama_error_falls_back(
    agent_deps: Any, ollama: FakeOllama, primary: FakeUpstream
) -> None:
    ollama.script(OllamaError(500))
    primary.script(Reply("fallback answer"))
    deps = agent_deps(
        [OLLAMA, OPENAI],
        {"ollama": ollama.base_url, "openai": primary.openai_base_url},
    )

    result = await run(deps, "hi")

    assert [(a["provider"], a["error"]) for a in result["attempts"]] == [
        (OLLAMA, "server_error"),
        (OPENAI, None),
    ]


async def test_ollama_unreachable_falls_back(agent_deps: Any, primary: FakeUpstream) -> None:
    primary.script(Reply("fallback answer"))
    deps = agent_deps(
        [OLLAMA, OPENAI],
        {
            "ollama": f"http://127.0.0.1:{free_port()}",
            "openai": primary.openai_base_url,
        },
    )

    result = await run(deps, "hi")

    assert [(a["provider"], a["error"]) for a in result["attempts"]] == [
        (OLLAMA, "connection"),
        (OPENAI, None),
    ]
