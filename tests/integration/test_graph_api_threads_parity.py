"""One threads script, run against the reference (`langgraph dev` on this graph) and the service.

What LangGraph's clients read of a thread must be the same on both: the fields of `Thread`
and `ThreadState`, `if_exists`, metadata merges and search, `update_state` (as a node, and
`__copy__` of a checkpoint), history newest first, copy, delete, and the 404/409/422 answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.integration.test_langgraph_dev import langgraph_dev

__all__ = ["langgraph_dev"]  # the reference's fixture, used here by name

THREAD_FIELDS = {"thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "status"}
STATE_FIELDS = {
    "values",
    "next",
    "tasks",
    "metadata",
    "created_at",
    "checkpoint",
    "parent_checkpoint",
    "interrupts",
    "checkpoint_id",
    "parent_checkpoint_id",
}
TASK_FIELDS = {"id", "name", "path", "error", "interrupts", "checkpoint", "state", "result"}


HELLO = {"messages": [{"type": "human", "content": "a"}]}
AI = {"type": "ai", "content": "b"}
AI_TOO = {"type": "ai", "content": "c"}


@pytest.fixture(params=["service", "langgraph_dev"])
def base_url(
    request: pytest.FixtureRequest,
    make_settings: SettingsFactory,
    serve: Callable[[Settings], ServedApp],
) -> str:
    """The URL of the service, or of the reference."""
    if request.param == "service":
        return serve(make_settings()).url
    return str(request.getfixturevalue("langgraph_dev"))


async def test_the_same_threads_script_passes_on_both(base_url: str) -> None:
    marker = {"suite": str(uuid4())}
    async with get_client(url=base_url) as sdk:
        threads: Any = sdk.threads
        thread_id = str(uuid4())
        created = await threads.create(
            thread_id=thread_id, metadata={**marker, "n": 1, "graph_id": "agent"}
        )
        assert set(created) >= THREAD_FIELDS
        assert (created["thread_id"], created["status"]) == (thread_id, "idle")
        assert created["values"] is None
        with pytest.raises(ConflictError):
            await threads.create(thread_id=thread_id, if_exists="raise")
        again = await threads.create(thread_id=thread_id, if_exists="do_nothing")
        assert (again["thread_id"], again["metadata"]) == (thread_id, created["metadata"])

        empty = await threads.get_state(thread_id)
        assert (empty["values"], empty["next"], empty["checkpoint"]) == ({}, [], None)
        assert await threads.get_history(thread_id) == []

        patched = await threads.update(thread_id, metadata={"n": 2, "extra": True})
        assert patched["metadata"] == {**marker, "n": 2, "extra": True, "graph_id": "agent"}
        assert [t["thread_id"] for t in await threads.search(metadata=marker)] == [thread_id]
        assert await threads.search(metadata={**marker, "n": 1}) == []

        written = await threads.update_state(
            thread_id, {"messages": [{"type": "human", "content": "hello"}]}
        )
        assert written["checkpoint"]["thread_id"] == thread_id
        state = await threads.get_state(thread_id)
        assert set(state) == STATE_FIELDS
        assert state["checkpoint"]["checkpoint_id"] == written["checkpoint"]["checkpoint_id"]
        assert {"thread_id", "checkpoint_ns", "checkpoint_id"} <= set(state["checkpoint"])
        (message,) = state["values"]["messages"]
        assert (message["type"], message["content"]) == ("human", "hello")
        assert state["metadata"]["source"] == "update"
        thread = await threads.get(thread_id)
        assert thread["values"]["messages"][0]["content"] == "hello"
        assert thread["interrupts"] == {}

        history = await threads.get_history(thread_id, limit=100)
        assert history[0]["checkpoint"] == state["checkpoint"]
        times = [s["created_at"] for s in history]
        assert times == sorted(times, reverse=True)
        for snapshot in history:
            assert set(snapshot) == STATE_FIELDS
            assert all(set(task) == TASK_FIELDS for task in snapshot["tasks"])

        copied = await threads.update_state(
            thread_id, None, as_node="__copy__", checkpoint_id=state["checkpoint"]["checkpoint_id"]
        )
        latest = await threads.get_state(thread_id)
        assert latest["checkpoint"]["checkpoint_id"] == copied["checkpoint"]["checkpoint_id"]
        assert latest["values"]["messages"][0]["content"] == "hello"
        assert latest["metadata"]["source"] == "fork"

        copy = await threads.copy(thread_id)
        assert copy["thread_id"] != thread_id
        assert copy["metadata"] == patched["metadata"]
        copied_state = await threads.get_state(copy["thread_id"])
        assert copied_state["values"]["messages"][0]["content"] == "hello"
        assert copied_state["checkpoint"]["thread_id"] == copy["thread_id"]

        await threads.delete(thread_id)
        with pytest.raises(NotFoundError):
            await threads.get(thread_id)
        with pytest.raises(NotFoundError):
            await threads.get(str(uuid4()))
        await threads.delete(copy["thread_id"])

        built = await threads.create(
            metadata={"graph_id": "agent"},
            supersteps=[
                {"updates": [{"values": HELLO, "as_node": "__input__"}]},
                {"updates": [{"values": {"messages": [AI]}, "as_node": "respond"}]},
                {"updates": [{"values": {"messages": [AI_TOO]}, "as_node": "respond"}]},
            ],
        )
        built_history = await threads.get_history(built["thread_id"])
        # An input waits for the graph's first step: the node updates that follow replace it.
        assert [m["content"] for m in built["values"]["messages"]] == ["b", "c"]
        assert [(s["metadata"]["source"], s["next"]) for s in built_history] == [
            ("update", []),
            ("update", []),
            ("input", ["__start__"]),
        ]
        await threads.delete(built["thread_id"])

    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        invalid = await http.post("/threads", json={"metadata": 5})
        assert invalid.status_code == 422
        assert "detail" in invalid.json()
