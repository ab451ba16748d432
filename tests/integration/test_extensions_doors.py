"""docs/extending.md's worked extensions through the service's doors: guard node, plugin tool.

`/v1` is driven with the openai SDK, `/agent` with LangServe's RemoteRunnable; the third
door, `langgraph dev`, is in test_langgraph_dev.py. The plugin is the example package
`examples/agent-tool-dice`, installed in the dev environment (a path dependency), found
through its `agent_service.tools` entry point.
"""

from __future__ import annotations

from collections.abc import Callable

import openai
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langserve import RemoteRunnable

from graph.context import Context
from nodes.guard import refusal_text
from server.settings import Settings
from tests.conftest import SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply, ToolCallSpec
from tests.helpers import AgentRunnable, thread_messages

Serve = Callable[[Settings], ServedApp]
DICE = "use roll_dice count=2 sides=6 seed=3"


def openai_client(app: ServedApp) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{app.url}/v1", api_key="unused", max_retries=0)


def test_guard_refuses_an_over_long_message_on_v1_before_the_provider(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(
        make_settings(
            agent_models={"m": ["openai:gpt-x"]},
            openai_base_url=primary.openai_base_url,
            openai_api_key="k",
        )
    )
    too_long = "x" * (Context().max_input_chars + 1)

    completion = openai_client(app).chat.completions.create(
        model="m", messages=[{"role": "user", "content": too_long}]
    )

    assert completion.choices[0].message.content == refusal_text(
        len(too_long), Context().max_input_chars
    )
    assert completion.choices[0].finish_reason == "stop"
    assert primary.requests == []


def test_guard_setting_and_streamed_refusal_on_v1(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(
        make_settings(
            agent_models={"m": ["openai:gpt-x"]},
            openai_base_url=primary.openai_base_url,
            max_input_chars=20,
        )
    )
    stream = openai_client(app).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "z" * 25}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == refusal_text(25, 20)
    assert primary.requests == []


def test_guard_uses_the_max_input_chars_setting_on_agent(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    app = serve(make_settings(max_input_chars=20))
    runnable: AgentRunnable = RemoteRunnable(f"{app.url}/agent/")

    refused = runnable.invoke({"messages": [HumanMessage("echo " + "y" * 20)]})
    accepted = runnable.invoke({"messages": [HumanMessage("echo short")]})

    assert refused["messages"][-1].content == refusal_text(25, 20)
    assert refused["route"] == "respond"
    assert accepted["messages"][-1].content == "short"


async def test_plugin_tool_is_called_through_v1(
    make_settings: SettingsFactory, serve: Serve
) -> None:
    settings = make_settings(load_plugin_tools=True)
    app = serve(settings)

    completion = openai_client(app).chat.completions.create(
        model="offline",
        messages=[{"role": "user", "content": DICE}],
        extra_headers={"X-Thread-Id": "dice"},
    )

    content = completion.choices[0].message.content or ""
    assert content.startswith("Rolled 2d6: ")
    stored = await thread_messages(settings, "dice")
    tool_results = [m for m in stored if isinstance(m, ToolMessage)]
    assert [(m.name, m.status, m.content) for m in tool_results] == [
        ("roll_dice", "success", content)
    ]


def test_plugin_tool_is_called_through_agent(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings(load_plugin_tools=True))
    runnable: AgentRunnable = RemoteRunnable(f"{app.url}/agent/")
    output = runnable.invoke({"messages": [HumanMessage(DICE)]})

    call = output["messages"][1]
    assert isinstance(call, AIMessage)
    assert call.tool_calls[0]["name"] == "roll_dice"
    assert call.tool_calls[0]["args"] == {"count": 2, "sides": 6, "seed": 3}
    assert output["messages"][-1].content.startswith("Rolled 2d6: ")


def test_plugins_stay_off_when_disabled(make_settings: SettingsFactory, serve: Serve) -> None:
    app = serve(make_settings(load_plugin_tools=False))
    runnable: AgentRunnable = RemoteRunnable(f"{app.url}/agent/")
    output = runnable.invoke({"messages": [HumanMessage(DICE)]})
    assert not any(isinstance(m, ToolMessage) for m in output["messages"])


def test_a_real_model_sees_and_calls_the_plugin_tool(
    make_settings: SettingsFactory, serve: Serve, primary: FakeUpstream
) -> None:
    app = serve(
        make_settings(
            agent_models={"m": ["openai:gpt-x"]},
            openai_base_url=primary.openai_base_url,
            openai_api_key="k",
            load_plugin_tools=True,
        )
    )
    primary.script(
        Reply(tool_calls=[ToolCallSpec("roll_dice", {"count": 3, "sides": 6, "seed": 1})]),
        Reply("You rolled well."),
    )

    completion = openai_client(app).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Roll three dice for me."}]
    )

    assert completion.choices[0].message.content == "You rolled well."
    first, second = (request.body for request in primary.requests[:2])
    assert first is not None
    assert second is not None
    offered = [t["function"]["name"] for t in first["tools"]]
    assert "roll_dice" in offered
    sent_back = second["messages"][-1]
    assert sent_back["role"] == "tool"
    assert sent_back["content"].startswith("Rolled 3d6: ")
