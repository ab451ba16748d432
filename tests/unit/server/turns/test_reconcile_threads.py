"""A node that rewrites the client's message (redaction) against a client that resends it.

The door's path without HTTP: the real adapter stamps the client's messages, the real turn
kit reconciles them with the thread, the real graph (plus a `redact` node in front,
as a developer would add one) runs over the service's own checkpointer (SQLite, PostgreSQL).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import START
from langgraph.types import Command

from graph.builder import AgentGraph, build_builder
from graph.context import Context
from graph.routing import GUARD
from graph.state import State
from nodes.deps import AgentDeps
from nodes.messages import CLIENT_ID_PREFIX, client_digest, content_digest, content_text
from server.chat import service
from server.chat.adapter import to_langchain
from server.chat.protocol import ChatCompletionRequest
from server.settings import Settings
from server.stores.checkpointer import open_checkpointer
from server.turns.threads import ThreadRef
from tests.factories import make_graph
from tests.fakes.ollama import FakeOllama, OllamaReply
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec
from tests.helpers import WEATHER_TOOL
from tests.unit.server.kit import CALLER, turn_kit

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+")  # linear time
RAW = "bob.secret@example.com"


async def redact(state: State) -> dict[str, Any]:
    """Masks e-mail addresses in the latest user message, in place (same id)."""
    latest = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
    masked = EMAIL.sub("[email]", content_text(latest.content))
    if masked == latest.content:
        return {}
    return {"messages": [latest.model_copy(update={"content": masked})]}


def redacting_graph(deps: AgentDeps, checkpointer: Any) -> AgentGraph:
    """The real graph, with `redact` run before `guard` (as a developer would add it)."""
    builder = build_builder(lambda: deps)
    builder.edges.discard((START, GUARD))
    # A name of its own: a developer following docs/extending.md may have added a `redact` node.
    builder.add_node("test_mask_emails", redact)
    builder.add_edge(START, "test_mask_emails")
    builder.add_edge("test_mask_emails", GUARD)
    return builder.compile(checkpointer=checkpointer)


def request(*messages: tuple[str, str]) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": r, "content": c} for r, c in messages]}
    )


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    values: dict[str, Any] = {"sqlite_path": tmp_path / "c.sqlite", "load_plugin_tools": False}
    if request.param == "postgres":
        values["database_url"] = request.getfixturevalue("postgres_url")
    settings = Settings(_env_file=None, **values)
    if request.param == "sqlite":
        settings.database_url = None
    return settings


async def test_a_resent_history_appends_and_the_thread_state_holds_only_the_masked_text(
    agent_deps: Any, settings: Settings
) -> None:
    thread = ThreadRef(client_id="t", stored_id="t")
    deps = agent_deps(["offline"], {})
    async with open_checkpointer(settings) as saver:
        graph = redacting_graph(deps, saver)
        kit = turn_kit(settings, deps, graph, graph, checkpointer=saver)
        first = f"Mail me at {RAW} please."
        turn = service.turn_request(request(("user", first)), CALLER, thread)
        async with kit.open(turn) as opened:
            answer = (await opened.complete()).text

        # Open WebUI resends the whole conversation, with the raw text it showed.
        history = [("user", first), ("assistant", answer), ("user", "What did I say?")]
        async with kit.open(service.turn_request(request(*history), CALLER, thread)) as opened:
            assert isinstance(opened.run.input, dict)
            sent = opened.run.input["messages"]
            assert [content_text(m.content) for m in sent] == ["What did I say?"]  # append only
            quoted = (await opened.complete()).text

        stored = (await graph.aget_state({"configurable": {"thread_id": "t"}})).values
    messages: list[BaseMessage] = stored["messages"]
    assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[0].content == "Mail me at [email] please."
    assert client_digest(messages[0]) == content_digest(first)  # survived the saver
    assert RAW not in json.dumps([m.model_dump() for m in messages], default=str)
    assert "[email]" in quoted  # the model only ever saw the masked text


def test_the_digest_survives_the_serializer_of_every_saver_and_a_rebuilt_message() -> None:
    (client,) = [to_langchain(m) for m in request(("user", f"I am {RAW}")).messages]
    rebuilt = HumanMessage("I am [email]", id=client.id)  # a node's fresh message, same id
    serde = JsonPlusSerializer()
    (stored,) = serde.loads_typed(serde.dumps_typed({"messages": [rebuilt]}))["messages"]
    assert stored.content == "I am [email]"
    assert client_digest(stored) == client_digest(client) == content_digest(f"I am {RAW}")


def stamped_history() -> list[Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "user", "content": "Thanks, and tomorrow?"},
        ],
    }
    return [to_langchain(m) for m in ChatCompletionRequest.model_validate(body).messages]


def assert_no_stamp_in(payload: object, history: list[Any]) -> None:
    text = json.dumps(payload)
    assert CLIENT_ID_PREFIX not in text
    for message in history:
        assert message.id not in text
        digest = client_digest(message)
        assert digest is None or digest not in text


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_ids_and_digests_never_reach_an_openai_or_anthropic_provider(
    agent_deps: Any, primary: FakeUpstream, kind: str
) -> None:
    url = primary.openai_base_url if kind == "openai" else primary.anthropic_base_url
    primary.script(Reply("Rain."))
    history = stamped_history()
    graph = make_graph(agent_deps([f"{kind}:model-test"], {kind: url}))
    await graph.ainvoke(
        {"messages": history}, {"configurable": {"thread_id": "p"}}, context=Context(model="m")
    )
    (sent,) = primary.requests
    assert sent.body is not None
    assert "sunny" in json.dumps(sent.body)  # the history did reach the provider
    assert_no_stamp_in(sent.body, history)


async def test_ids_and_digests_never_reach_ollama(agent_deps: Any, ollama: FakeOllama) -> None:
    ollama.reset()
    ollama.script(OllamaReply("Rain."))
    history = stamped_history()
    graph = make_graph(agent_deps(["ollama:llama3.1"], {"ollama": ollama.base_url}))
    await graph.ainvoke(
        {"messages": history}, {"configurable": {"thread_id": "o"}}, context=Context(model="m")
    )
    (sent,) = ollama.requests
    assert "sunny" in json.dumps(sent)
    assert_no_stamp_in(sent, history)


def test_the_door_stamps_every_client_message() -> None:
    system, user, assistant, tool, _ = stamped_history()
    for message in (system, user, tool):
        assert client_digest(message) == content_digest(message.content)
    assert client_digest(assistant) is None  # assistant text compares as text
    assert (assistant.id or "").startswith(CLIENT_ID_PREFIX)
    assert "Weather" not in (user.id or "")


async def test_client_tool_results_are_stored_with_the_digest_of_what_the_client_sent(
    agent_deps: Any, primary: FakeUpstream
) -> None:
    primary.script(Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Oslo"}, "c1")]))
    primary.script(Reply("Sunny in Oslo."))
    deps = agent_deps(["openai:model-test"], {"openai": primary.openai_base_url})
    graph = make_graph(deps)
    config: Any = {"configurable": {"thread_id": "ct"}}
    context = Context(model="m", client_tools=[WEATHER_TOOL])
    paused = await graph.ainvoke(
        {"messages": [HumanMessage("Weather in Oslo?")]}, config, context=context
    )
    assert paused["__interrupt__"]
    await graph.ainvoke(Command(resume={"c1": "sunny, 21 C"}), config, context=context)
    messages = (await graph.aget_state(config)).values["messages"]
    (result,) = [m for m in messages if isinstance(m, ToolMessage)]
    assert result.content == "sunny, 21 C"
    assert client_digest(result) == content_digest("sunny, 21 C")
