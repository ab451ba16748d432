"""A `RunCreate` for the kit: the run's options, its `Command`, where it starts."""

from __future__ import annotations

from langgraph.types import Send

from server.graph_api.assistants import Assistant
from server.graph_api.run_plan import run_options, to_command
from server.graph_api.run_schemas import CommandBody, RunCreate


def test_options_layer_the_preset_then_the_config_then_the_context_and_keep_client_options() -> (
    None
):
    preset = Assistant(
        "a-1",
        "agent",
        config={"configurable": {"model": "preset", "temperature": 0.1}},
        context={"instructions": "Be brief."},
    )
    body = RunCreate(
        assistant_id="a-1",
        config={"configurable": {"temperature": 0.5, "thread_id": "elsewhere", "x": 1}},
        context={"model": "chosen", "max_input_chars": 5, "client_tools": []},
    )
    assert run_options(preset, body) == {
        "model": "chosen",
        "temperature": 0.5,
        "instructions": "Be brief.",
        "client_tools": [],
        "max_input_chars": 5,  # a limit the client lowers (`run_context` keeps the lower)
    }


def test_a_command_is_langgraphs_with_sends_for_node_targets() -> None:
    command = to_command(
        CommandBody(resume={"i-1": "yes"}, update=[["k", 1]], goto={"node": "n", "input": 2})
    )
    assert command.resume == {"i-1": "yes"}
    assert command.update == [("k", 1)]
    assert command.goto == Send("n", 2)
    assert to_command(CommandBody(goto=["a", {"node": "b"}])).goto == ["a", Send("b", None)]
    assert to_command(CommandBody(resume=1)).goto == ()


def test_the_start_checkpoint_and_the_modes_as_the_clients_send_them() -> None:
    assert (
        RunCreate(assistant_id="a", checkpoint={"checkpoint_id": "c-1"}).start_checkpoint() == "c-1"
    )
    assert RunCreate(assistant_id="a", checkpoint_id="c-2").start_checkpoint() == "c-2"
    in_config = RunCreate(assistant_id="a", config={"configurable": {"checkpoint_id": "c-3"}})
    assert in_config.start_checkpoint() == "c-3"
    assert RunCreate(assistant_id="a").start_checkpoint() is None
    assert RunCreate(assistant_id="a").modes() == ["values"]
    both = RunCreate(assistant_id="a", stream_mode=["updates", "values", "updates"])
    assert both.modes() == ["updates", "values"]
    assert RunCreate(assistant_id="a", input=None, webhook="http://x", extra=1).input is None
