"""The `knowledge_search` tool, the offline model's knowledge rule and its cited answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from nodes.providers.offline import offline_reply, plan_tool_call
from nodes.tools.knowledge import (
    KNOWLEDGE_TOOL,
    SHARED_NAMESPACE,
    KnowledgeUnavailableError,
    Passage,
    format_passages,
    make_knowledge_tool,
    namespaces_of,
)
from nodes.tools.scope import is_caller_scoped

TOOLS = ["knowledge_search", "searxng_search", "clock", "calculator"]


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("search the knowledge base for vacation days", "vacation days"),
        ("Search the docs for restarting postgres?", "restarting postgres"),
        ("What do the docs say about the coffee machine?", "the coffee machine"),
        ("what does the documentation say on backups", "backups"),
        ("look through our knowledge base for on-call rotation", "on-call rotation"),
    ],
)
def test_the_offline_model_sends_knowledge_questions_to_the_tool(text: str, query: str) -> None:
    assert plan_tool_call(text, TOOLS) == ("knowledge_search", {"query": query})


def test_other_searches_and_unoffered_tools_are_left_alone() -> None:
    assert plan_tool_call("search for python news", TOOLS) == (
        "searxng_search",
        {"query": "python news"},
    )
    assert plan_tool_call("what do the docs say about backups", ["searxng_search"]) is None


class FakeKnowledge:
    def __init__(self, passages: list[Passage], *, documents: bool = True) -> None:
        self.passages = passages
        self.documents = documents
        self.searched: list[tuple[list[str], str, int]] = []

    async def search(self, namespaces: Sequence[str], query: str, k: int) -> list[Passage]:
        self.searched.append((list(namespaces), query, k))
        return self.passages[:k]

    def has_documents(self, namespaces: Sequence[str]) -> bool:
        return self.documents


PASSAGES = [
    Passage("Restart with pg_ctlcluster.", "db.md", "Database runbook", "runbooks/db.md", 0.61),
    Passage("25 days a year.", "hr", "Vacation (2026)", None, 0.12),
]


async def test_the_tool_searches_the_callers_namespaces_from_its_config() -> None:
    knowledge = FakeKnowledge(PASSAGES)
    tool = make_knowledge_tool(knowledge, default_top_k=3)
    output = await tool.ainvoke({"query": "restart"}, {"configurable": {"caller": "abc"}})
    assert knowledge.searched == [(["abc", SHARED_NAMESPACE], "restart", 3)]
    assert output == format_passages(PASSAGES)
    assert "[1] Database runbook (source: runbooks/db.md; document db.md; score 0.61)" in output
    assert "[2] Vacation (2026) (document hr; score 0.12)" in output

    await tool.ainvoke({"query": "x", "top_k": 1}, {"configurable": {}})
    assert knowledge.searched[-1] == ([SHARED_NAMESPACE], "x", 1)  # no caller: shared only


async def test_the_tool_says_plainly_when_there_is_nothing_to_search() -> None:
    empty = make_knowledge_tool(FakeKnowledge([], documents=False))
    assert "empty" in await empty.ainvoke({"query": "x"})
    no_match = make_knowledge_tool(FakeKnowledge([], documents=True))
    assert "No passage" in await no_match.ainvoke({"query": "x"})
    unconfigured = make_knowledge_tool(None)
    assert "not configured" in await unconfigured.ainvoke({"query": "x"})


def test_an_unavailable_knowledge_base_is_a_tool_error_the_model_sees() -> None:
    from graph.errors import ToolUnavailableError

    assert issubclass(KnowledgeUnavailableError, ToolUnavailableError)


def test_namespaces_of_a_caller() -> None:
    assert namespaces_of(None) == [SHARED_NAMESPACE]
    assert namespaces_of("0123456789abcdef") == ["0123456789abcdef", SHARED_NAMESPACE]


def test_the_offline_answer_quotes_the_best_passage_and_its_source() -> None:
    call = {"name": "knowledge_search", "args": {"query": "restart"}, "id": "k1"}
    thread = [
        HumanMessage("what do the docs say about restart"),
        AIMessage("", tool_calls=[call]),
        ToolMessage(format_passages(PASSAGES), tool_call_id="k1", name="knowledge_search"),
    ]
    answer = offline_reply(thread, TOOLS).content
    assert (
        answer == 'According to "Database runbook" (runbooks/db.md):\n\nRestart with pg_ctlcluster.'
    )

    without_source = [*thread[:2], ToolMessage(format_passages(PASSAGES[1:]), tool_call_id="k1")]
    without_source[-1].name = "knowledge_search"
    reply = offline_reply(without_source, TOOLS).content
    assert isinstance(reply, str)
    assert reply.startswith('According to "Vacation (2026)" (document hr):')

    empty = [*thread[:2], ToolMessage("The knowledge base is empty.", tool_call_id="k1")]
    empty[-1].name = "knowledge_search"
    assert offline_reply(empty, TOOLS).content == "The knowledge base is empty."


async def test_a_result_with_a_passage_of_the_callers_own_namespace_is_marked_as_its() -> None:
    own = [PASSAGES[0], replace(PASSAGES[1], namespace="abc")]
    for passages, scoped in ((PASSAGES, False), (own, True), ([], False)):
        tool = make_knowledge_tool(FakeKnowledge(passages))
        message = await tool.ainvoke(
            {"name": KNOWLEDGE_TOOL, "args": {"query": "x"}, "id": "k1", "type": "tool_call"},
            {"configurable": {"caller": "abc"}},
        )
        assert isinstance(message, ToolMessage)
        assert is_caller_scoped(message.artifact) is scoped
