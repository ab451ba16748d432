"""LangGraph's `Thread` and `ThreadState` from a thread's record and checkpoints."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

from langchain_core.messages import HumanMessage
from langgraph.types import Interrupt, PregelTask, StateSnapshot

from server.graph_api.thread_shapes import ThreadFacts, iso, thread_object, thread_state
from server.stores.graph_threads import ThreadRecord
from server.turns.threads import ThreadRef

THREAD = ThreadRef("conv", "key1:conv", delta=True)
CREATED = 1_800_000_000.0


def snapshot(
    *, interrupts: tuple[Interrupt, ...] = (), at: str = "2027-01-15T08:00:00+00:00"
) -> StateSnapshot:
    config = {
        "configurable": {"thread_id": "key1:conv", "checkpoint_ns": "", "checkpoint_id": "c2"}
    }
    parent = {
        "configurable": {"thread_id": "key1:conv", "checkpoint_ns": "", "checkpoint_id": "c1"}
    }
    task = PregelTask(
        "task-1", "call_tools", ("__pregel_pull", "call_tools"), interrupts=interrupts
    )
    return StateSnapshot(
        values={"messages": [HumanMessage("hi", id="m1")], "owner": "key1:conv"},
        next=("call_tools",),
        config=config,  # type: ignore[arg-type]
        metadata=cast(Any, {"source": "loop", "step": 1, "parents": {}, "thread_id": "key1:conv"}),
        created_at=at,
        parent_config=parent,  # type: ignore[arg-type]
        tasks=(task,),
        interrupts=interrupts,
    )


def record(**fields: object) -> ThreadRecord:
    values: dict[str, object] = {
        "metadata": {"graph_id": "agent"},
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    values.update(fields)
    return ThreadRecord("key1:conv", "key1", **values)  # type: ignore[arg-type]


def test_a_thread_state_names_the_thread_as_its_client_does() -> None:
    state = thread_state(snapshot(), THREAD)

    assert state["checkpoint"] == {"thread_id": "conv", "checkpoint_ns": "", "checkpoint_id": "c2"}
    assert state["parent_checkpoint"]["checkpoint_id"] == "c1"
    assert (state["checkpoint_id"], state["parent_checkpoint_id"]) == ("c2", "c1")
    assert state["next"] == ["call_tools"]
    assert state["values"]["messages"][0]["type"] == "human"
    assert state["values"]["owner"] == "conv"
    assert state["metadata"]["thread_id"] == "conv"
    (task,) = state["tasks"]
    assert set(task) == {
        "id",
        "name",
        "path",
        "error",
        "interrupts",
        "checkpoint",
        "state",
        "result",
    }
    assert "key1:conv" not in repr(state)


def test_status_busy_then_interrupted_then_the_records() -> None:
    waiting = snapshot(interrupts=(Interrupt(value={"ask": "ok?"}, id="i-1"),))
    assert ThreadFacts(THREAD, record(), snapshot()).status == "idle"
    assert ThreadFacts(THREAD, record(status="error", error="boom"), snapshot()).status == "error"
    assert ThreadFacts(THREAD, record(status="error"), waiting).status == "interrupted"
    assert ThreadFacts(THREAD, record(), waiting, busy=True).status == "busy"
    assert ThreadFacts(THREAD, record(status="busy"), snapshot()).status == "busy"
    # A stopped run's thread is interrupted with nothing pending, until another door's turn
    # (which writes no record) leaves a newer checkpoint: then the record is stale.
    stopped = record(status="interrupted")
    latest = datetime.fromisoformat(str(snapshot().created_at)).timestamp()
    assert ThreadFacts(THREAD, replace(stopped, updated_at=latest + 1), snapshot()).status == (
        "interrupted"
    )
    assert ThreadFacts(THREAD, replace(stopped, updated_at=latest - 1), snapshot()).status == "idle"

    shown = thread_object(ThreadFacts(THREAD, record(), waiting))
    assert shown["interrupts"] == {"task-1": [{"id": "i-1", "value": {"ask": "ok?"}}]}
    failed = thread_object(ThreadFacts(THREAD, record(status="error", error="boom"), snapshot()))
    assert failed["error"] == "boom"


def test_a_thread_without_a_record_started_with_its_first_checkpoint() -> None:
    started = datetime(2027, 1, 15, 7, 0, tzinfo=UTC)
    shown = thread_object(ThreadFacts(THREAD, None, snapshot(), started=started))

    assert shown["thread_id"] == "conv"
    assert (shown["metadata"], shown["status"], shown["error"]) == ({}, "idle", None)
    assert shown["created_at"] == "2027-01-15T07:00:00+00:00"
    assert shown["updated_at"] == shown["state_updated_at"] == "2027-01-15T08:00:00+00:00"
    assert shown["values"]["owner"] == "conv"


def test_a_new_thread_has_no_values_and_its_record_times() -> None:
    shown = thread_object(ThreadFacts(THREAD, record(updated_at=CREATED + 5), None))

    assert shown["values"] is None
    assert shown["created_at"] == shown["state_updated_at"] == iso(CREATED)
    assert shown["updated_at"] == iso(CREATED + 5)
