"""The LangGraph API's info, assistants, threads and thread state, driven with `langgraph_sdk`.

Every test runs against both targets of tests/langgraph_api_servers.py: `reference`
(`langgraph dev` on this repository's graph) and `service` (our LangGraph API door), with the
same body; only the base URL differs. What `reference` does is the expected behaviour.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from graph.builder import build_graph
from tests import langgraph_api_servers as servers
from tests.factories import make_deps
from tests.langgraph_api_servers import error_body, human, last_text

client = servers.client

NODES = {"guard", "router", "compact", "fallback_provider", "tools", "client_tools", "respond"}


async def system_assistant(client: LangGraphClient) -> dict[str, object]:
    """The one assistant the server made for the graph `agent` of langgraph.json."""
    found = await client.assistants.search(graph_id="agent", metadata={"created_by": "system"})
    assert len(found) == 1, found
    return dict(found[0])


async def finished_thread(client: LangGraphClient, *texts: str) -> str:
    """A new thread after one run per text; returns its id."""
    thread = await client.threads.create()
    for text in texts:
        await client.runs.wait(thread["thread_id"], "agent", input=human(text))
    return thread["thread_id"]


async def test_info_answers_with_a_version_and_flags(client: LangGraphClient) -> None:
    info = await client.http.get("/info")
    assert isinstance(info["version"], str)
    assert info["version"]
    assert info["flags"]["assistants"] is True


async def test_assistants_search_by_graph_id_finds_the_graph_of_langgraph_json(
    client: LangGraphClient,
) -> None:
    assistant = await system_assistant(client)
    assert assistant["graph_id"] == "agent"
    assert assistant["name"] == "agent"
    assert assistant["version"] == 1
    uuid.UUID(str(assistant["assistant_id"]))
    for field in ("config", "context", "created_at", "updated_at"):
        assert field in assistant


async def test_assistant_get_by_id_and_its_stable_id(client: LangGraphClient) -> None:
    assistant = await system_assistant(client)
    fetched = await client.assistants.get(str(assistant["assistant_id"]))
    assert fetched == assistant
    # The reference takes a graph id in place of an assistant id on runs and /graph, but its
    # GET /assistants/{id} wants a UUID: 422 {"detail": "Invalid assistant ID: …"}. The
    # service takes the graph id there too, for the same assistant.
    response = await client.http.client.get("/assistants/agent")
    if response.status_code == 422:
        assert "detail" in response.json()
    else:
        assert response.json() == assistant


async def test_assistant_schemas_describe_input_output_state_and_context(
    client: LangGraphClient,
) -> None:
    assistant = await system_assistant(client)
    schemas = await client.assistants.get_schemas(str(assistant["assistant_id"]))
    assert schemas["graph_id"] == "agent"
    for name in ("input_schema", "output_schema", "state_schema"):
        assert name in schemas
        schema = schemas[name]
        assert isinstance(schema, dict)
        assert "messages" in schema["properties"], name
    context = schemas["context_schema"]
    assert isinstance(context, dict)
    assert {"model", "client_tools", "tool_choice", "max_input_chars"} <= set(context["properties"])
    # The reference also serves the context schema as the (deprecated) config schema.
    assert "config_schema" in schemas


async def test_assistant_graph_draws_the_nodes_and_edges_the_builder_wires(
    client: LangGraphClient,
) -> None:
    expected = build_graph(lambda: make_deps(["offline"], {})).get_graph()
    drawn = await client.assistants.get_graph("agent")
    ids = {node["id"] for node in drawn["nodes"]}
    assert ids == set(expected.nodes)
    assert NODES | {"__start__", "__end__"} == ids
    edges = {(edge["source"], edge["target"]) for edge in drawn["edges"]}
    assert edges == {(edge.source, edge.target) for edge in expected.edges}
    assert ("__start__", "guard") in edges


async def test_a_created_assistant_is_a_versioned_context_preset_that_runs(
    client: LangGraphClient,
) -> None:
    created = await client.assistants.create(
        "agent", context={"max_input_chars": 10}, name="terse", metadata={"team": "docs"}
    )
    assistant_id = created["assistant_id"]
    assert created["version"] == 1
    assert created["context"] == {"max_input_chars": 10}
    assert created["metadata"] == {"team": "docs"}
    updated = await client.assistants.update(assistant_id, context={"max_input_chars": 12})
    assert updated["version"] == 2
    assert (await client.assistants.get(assistant_id))["version"] == 2
    versions = await client.assistants.get_versions(assistant_id)
    assert [(v["version"], v["context"]) for v in versions] == [
        (2, {"max_input_chars": 12}),
        (1, {"max_input_chars": 10}),
    ]
    listed = {a["assistant_id"] for a in await client.assistants.search(graph_id="agent")}
    assert assistant_id in listed

    thread = await client.threads.create()
    output = await client.runs.wait(thread["thread_id"], assistant_id, input=human("x" * 20))
    # The guard node refuses by the preset's (latest) limit: the run took its context.
    assert last_text(output).startswith("Your message is too long for me to process: 20")
    assert "the limit is 12" in last_text(output)
    stamped = (await client.threads.get(thread["thread_id"]))["metadata"]
    assert stamped is not None
    assert stamped["assistant_id"] == assistant_id


async def test_thread_create_with_metadata_and_a_chosen_id(client: LangGraphClient) -> None:
    thread_id = str(uuid.uuid4())
    thread = await client.threads.create(thread_id=thread_id, metadata={"owner": "ada"})
    assert thread["thread_id"] == thread_id
    assert thread["metadata"] == {"owner": "ada"}
    assert thread["status"] == "idle"
    fetched = await client.threads.get(thread_id)
    assert fetched["thread_id"] == thread_id
    assert fetched["metadata"] == {"owner": "ada"}
    assert fetched["created_at"] == thread["created_at"]


async def test_thread_create_if_exists(client: LangGraphClient) -> None:
    thread_id = str(uuid.uuid4())
    await client.threads.create(thread_id=thread_id, metadata={"n": 1})
    again = await client.threads.create(
        thread_id=thread_id, metadata={"n": 2}, if_exists="do_nothing"
    )
    assert again["thread_id"] == thread_id
    assert again["metadata"] == {"n": 1}
    for if_exists in ("raise", None):  # "raise" is the default
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await client.threads.create(thread_id=thread_id, if_exists=if_exists)
        assert "detail" in error_body(raised.value, 409)


async def test_thread_search_by_metadata_with_limit_offset_and_sort(
    client: LangGraphClient,
) -> None:
    tag = str(uuid.uuid4())
    for n in range(4):
        await client.threads.create(metadata={"tag": tag, "n": n})
    await client.threads.create(metadata={"tag": "someone else"})

    def numbers(threads: list[dict[str, object]]) -> list[object]:
        return [t["metadata"]["n"] for t in threads]  # type: ignore[index]

    newest_first = await client.threads.search(metadata={"tag": tag})
    assert numbers(newest_first) == [3, 2, 1, 0]  # type: ignore[arg-type]
    page = await client.threads.search(metadata={"tag": tag}, limit=2, offset=1)
    assert numbers(page) == [2, 1]  # type: ignore[arg-type]
    oldest_first = await client.threads.search(
        metadata={"tag": tag}, sort_by="created_at", sort_order="asc"
    )
    assert numbers(oldest_first) == [0, 1, 2, 3]  # type: ignore[arg-type]
    assert len(await client.threads.search(metadata={"tag": tag}, status="idle")) == 4
    assert await client.threads.search(metadata={"tag": tag}, status="busy") == []


async def test_thread_update_merges_metadata(client: LangGraphClient) -> None:
    thread = await client.threads.create(metadata={"keep": "me", "n": 1})
    updated = await client.threads.update(thread["thread_id"], metadata={"n": 2, "new": True})
    assert updated["metadata"] == {"keep": "me", "n": 2, "new": True}
    fetched = await client.threads.get(thread["thread_id"])
    assert fetched["metadata"] == {"keep": "me", "n": 2, "new": True}


async def test_thread_delete_then_get_is_404(client: LangGraphClient) -> None:
    thread_id = await finished_thread(client, "echo gone")
    await client.threads.delete(thread_id)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        await client.threads.get(thread_id)
    assert "detail" in error_body(raised.value, 404)


async def test_thread_copy_has_the_state_under_a_new_id(client: LangGraphClient) -> None:
    thread_id = await finished_thread(client, "echo original")
    label = str(uuid.uuid4())
    await client.threads.update(thread_id, metadata={"label": label})
    await client.threads.copy(thread_id)  # the reference answers with the new thread
    (copy,) = [
        t
        for t in await client.threads.search(metadata={"label": label})
        if t["thread_id"] != thread_id
    ]
    assert copy["metadata"] == (await client.threads.get(thread_id))["metadata"]
    original = await client.threads.get_state(thread_id)
    copied = await client.threads.get_state(copy["thread_id"])
    assert copied["values"] == original["values"]
    await client.runs.wait(copy["thread_id"], "agent", input=human("echo only in the copy"))
    assert (await client.threads.get_state(thread_id))["values"] == original["values"]


async def test_a_run_stamps_graph_and_assistant_into_the_thread(client: LangGraphClient) -> None:
    assistant = await system_assistant(client)
    thread = await client.threads.create(metadata={"owner": "ada"})
    await client.runs.wait(thread["thread_id"], "agent", input=human("echo stamped"))
    after = await client.threads.get(thread["thread_id"])
    assert after["metadata"] == {
        "owner": "ada",
        "graph_id": "agent",
        "assistant_id": assistant["assistant_id"],
    }
    assert after["status"] == "idle"
    assert last_text(after["values"]) == "stamped"
    found = await client.threads.search(metadata={"graph_id": "agent", "owner": "ada"})
    assert thread["thread_id"] in {t["thread_id"] for t in found}


async def test_get_state_after_a_run(client: LangGraphClient) -> None:
    thread_id = await finished_thread(client, "What is 17 * 23?")
    state = await client.threads.get_state(thread_id)
    values = state["values"]
    assert isinstance(values, dict)
    assert [m["type"] for m in values["messages"]] == ["human", "ai", "tool", "ai"]
    assert last_text(values) == "17 * 23 = 391"
    assert state["next"] == []
    assert state["tasks"] == []
    assert state["checkpoint"]["thread_id"] == thread_id
    assert state["checkpoint"]["checkpoint_id"]
    assert state["metadata"]["source"] == "loop"  # type: ignore[index]
    assert state["parent_checkpoint"] is not None


async def test_update_state_as_a_node_adds_a_checkpoint(client: LangGraphClient) -> None:
    thread_id = await finished_thread(client, "echo before")
    before = await client.threads.get_state(thread_id)
    injected = {"messages": [{"type": "ai", "content": "injected"}]}
    written = await client.threads.update_state(thread_id, injected, as_node="respond")
    checkpoint_id = written["checkpoint"]["checkpoint_id"]
    assert checkpoint_id != before["checkpoint"]["checkpoint_id"]
    after = await client.threads.get_state(thread_id)
    assert after["checkpoint"]["checkpoint_id"] == checkpoint_id
    assert last_text(after["values"]) == "injected"
    assert after["next"] == []  # as the last node, nothing follows
    assert after["metadata"]["source"] == "update"  # type: ignore[index]


async def test_get_state_at_an_earlier_checkpoint(client: LangGraphClient) -> None:
    thread_id = await finished_thread(client, "echo one")
    first = await client.threads.get_state(thread_id)
    await client.runs.wait(thread_id, "agent", input=human("echo two"))
    now = await client.threads.get_state(thread_id)
    assert len(now["values"]["messages"]) == 8  # type: ignore[call-overload]
    then = await client.threads.get_state(
        thread_id, checkpoint_id=first["checkpoint"]["checkpoint_id"]
    )
    assert then["values"] == first["values"]
    assert then["checkpoint"]["checkpoint_id"] == first["checkpoint"]["checkpoint_id"]


async def test_history_is_newest_first_with_limit_and_before(client: LangGraphClient) -> None:
    thread_id = await finished_thread(client, "echo one", "echo two")
    history = await client.threads.get_history(thread_id, limit=100)
    assert history[0]["checkpoint"] == (await client.threads.get_state(thread_id))["checkpoint"]
    sizes = [len(s["values"].get("messages", [])) for s in history]  # type: ignore[union-attr]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 8
    ids = [s["checkpoint"]["checkpoint_id"] for s in history]
    assert len(set(ids)) == len(ids)
    parents = [s["parent_checkpoint"] for s in history[:-1]]
    assert [p["checkpoint_id"] if p else None for p in parents] == ids[1:]
    limited = await client.threads.get_history(thread_id, limit=3)
    assert [s["checkpoint"]["checkpoint_id"] for s in limited] == ids[:3]
    # `before` as a config: the one form the reference takes. Though the SDK's signature
    # allows them, it refuses a bare checkpoint id (422) and fails on a checkpoint, the form
    # RemoteGraph sends (500); the service may accept those too.
    before: Any = {"configurable": {"checkpoint_id": ids[1]}}
    older = await client.threads.get_history(thread_id, limit=2, before=before)
    assert [s["checkpoint"]["checkpoint_id"] for s in older] == ids[2:4]


async def test_update_state_at_a_checkpoint_branches_from_it(client: LangGraphClient) -> None:
    thread_id = await finished_thread(client, "echo one")
    first = await client.threads.get_state(thread_id)
    await client.runs.wait(thread_id, "agent", input=human("echo two"))
    await client.threads.update_state(
        thread_id,
        {"messages": [{"type": "ai", "content": "edited"}]},
        as_node="respond",
        checkpoint_id=first["checkpoint"]["checkpoint_id"],
    )
    head = await client.threads.get_state(thread_id)
    assert head["parent_checkpoint"] is not None
    assert head["parent_checkpoint"]["checkpoint_id"] == first["checkpoint"]["checkpoint_id"]
    values = head["values"]
    assert isinstance(values, dict)
    assert [m["content"] for m in values["messages"]] == ["echo one", "", "one", "one", "edited"]
    updates = await client.threads.get_history(thread_id, metadata={"source": "update"})
    assert [s["checkpoint"] for s in updates] == [head["checkpoint"]]


async def test_json_sent_as_text_plain_is_accepted(api: servers.Api) -> None:
    # LangGraph Studio posts its JSON bodies with Content-Type: text/plain.
    async with httpx.AsyncClient(base_url=api.url) as raw:
        created = await raw.post(
            "/threads",
            content=b'{"metadata": {"from": "studio"}}',
            headers={"content-type": "text/plain;charset=UTF-8"},
        )
    assert created.status_code == 200, created.text
    assert created.json()["metadata"] == {"from": "studio"}
