"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langserve import RemoteRunnable
from openai.types.chat import ChatCompletionFunctionToolParam

from graph.builder import build_graph
from nodes.deps import AgentDeps
from nodes.providers.registry import Price
from server.settings import Settings
from server.stores.checkpointer import open_checkpointer

#: The Chat Completions parameters OpenAI's API reference marks nullable: `null` means unset.
NULLABLE = [
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "n",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "metadata",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
]


#: A client tool in OpenAI's shape, as chat clients declare one (typed for the openai SDK).
SDK_WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

#: The same tool as a plain dict, as the service keeps one (`Context.client_tools`).
WEATHER_TOOL: dict[str, Any] = {**SDK_WEATHER_TOOL}


AgentRunnable = RemoteRunnable[dict[str, Any], dict[str, Any]]
"""LangServe's client of the /agent door: a turn's input in, the final state out."""


def no_deps() -> AgentDeps:
    """The dependencies of a graph built only to read threads: it runs no node."""
    raise AssertionError("reading a thread runs no node")


async def thread_values(settings: Settings, thread_id: str) -> dict[str, Any]:
    """The latest state stored for a thread, read straight from the checkpointer."""
    async with open_checkpointer(settings) as saver:
        graph = build_graph(no_deps, checkpointer=saver)
        snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    return dict(snapshot.values)


async def thread_messages(settings: Settings, thread_id: str) -> list[BaseMessage]:
    """The messages stored for a thread, read straight from the checkpointer."""
    messages: list[BaseMessage] = (await thread_values(settings, thread_id)).get("messages", [])
    return messages


async def settled_messages(
    settings: Settings, thread_id: str, *, timeout: float = 10.0
) -> list[BaseMessage]:
    """A thread's messages once there are any: a cancelled run settles its checkpoint after the
    client has gone, so a test that read it at once could find nothing yet."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (messages := await thread_messages(settings, thread_id)):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    return messages


def chat_body(*messages: tuple[str, str], model: str = "offline", **extra: Any) -> dict[str, Any]:
    """A chat completion request body from (role, content) pairs."""
    return {
        "model": model,
        "messages": [{"role": role, "content": content} for role, content in messages],
        **extra,
    }


def priced_provider_file(
    path: Path, endpoints: Mapping[str, tuple[str, Price]], models: Mapping[str, list[str]]
) -> Path:
    """Write a provider file (AGENT_CONFIG) that prices its endpoints, and return its path.

    Args:
        path: Where to write it.
        endpoints: Endpoint name -> (base URL, price per million tokens). Each endpoint takes
            the name of its kind (`openai`, `openai-compatible`), so AGENT_MODELS' and
            `models`' `kind:model` ids name it.
        models: Its `[models]`: alias -> chain of `kind:model` ids.
    """
    lines: list[str] = []
    for name, (url, price) in endpoints.items():
        lines += [
            f"[endpoints.{name}]",
            f'kind = "{name}"',
            f'base_url = "{url}"',
            "retries = 0",
            f"price = {{ input = {price.input_per_million}, output = {price.output_per_million} }}",
            "",
        ]
    lines.append("[models]")
    lines += [f"{alias} = {json.dumps(chain)}" for alias, chain in models.items()]  # TOML too
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
