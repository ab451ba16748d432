"""The tools node: runs the server-side tool calls of the last AI message, concurrently.

The tool-error policy lives here: only the named error types below become an error
`ToolMessage` the model can react to; anything else is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool, ToolException
from langgraph.runtime import Runtime
from pydantic import ValidationError

from graph.context import Context
from graph.errors import ToolInputError, ToolUnavailableError
from graph.state import State
from nodes.deps import DepsSource, Node
from nodes.observe import ToolOutcome, TurnObserver
from nodes.tools.scope import is_caller_scoped

logger = logging.getLogger(__name__)

#: Tool failures reported to the model instead of failing the run.
TOOL_ERRORS: tuple[type[Exception], ...] = (
    ToolInputError,
    ToolUnavailableError,
    ToolException,
    ValidationError,
    TimeoutError,
)


def cap_output(text: str, limit: int) -> str:
    """Cut an over-long tool output, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[output truncated: {len(text) - limit} more characters]"


def _describe(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"the tool did not finish within {timeout:g} seconds"
    if isinstance(exc, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return f"invalid arguments: {problems}"
    return str(exc)


async def run_tool_call(
    tool: BaseTool | None,
    call: ToolCall,
    *,
    time_limit: float,
    max_chars: int,
    observer: TurnObserver | None = None,
    caller: str | None = None,
) -> ToolMessage:
    """Run one tool call with a timeout and an output cap; named failures become errors.

    `caller` (the API key id the run is for) reaches the tool as `configurable.caller` of its
    config, never through the model's arguments: a tool that keeps data per caller (the
    knowledge base) reads it there. A tool that returns an artifact (`content_and_artifact`:
    the knowledge base says whether its passages are the caller's, `nodes.tools.scope`) is
    given the whole call, so the artifact reaches the message.
    """
    name, call_id = call["name"], call["id"] or ""
    if tool is None:
        return ToolMessage(
            content=f"Error: there is no tool named {name!r} available here.",
            tool_call_id=call_id,
            name=name,
            status="error",
        )
    started = time.perf_counter()
    outcome: ToolOutcome = "error"  # unless it returns, or times out
    with_artifact = tool.response_format == "content_and_artifact"
    artifact: Any = None
    try:
        async with asyncio.timeout(time_limit):
            output = await tool.ainvoke(
                {**call, "type": "tool_call"} if with_artifact else call["args"],
                {"configurable": {"caller": caller}},
            )
        if isinstance(output, ToolMessage):
            artifact = output.artifact
            output = output.content
        outcome = "ok"
    except TOOL_ERRORS as exc:
        if isinstance(exc, TimeoutError):
            outcome = "timeout"
        logger.info("tool %s failed: %s", name, type(exc).__name__)
        return ToolMessage(
            content=f"Error: {_describe(exc, time_limit)}",
            tool_call_id=call_id,
            name=name,
            status="error",
        )
    finally:
        if observer is not None:
            observer.tool_finished(name, outcome, time.perf_counter() - started)
    text = output if isinstance(output, str) else str(output)
    return ToolMessage(
        content=cap_output(text, max_chars),
        tool_call_id=call_id,
        name=name,
        status="success",
        artifact=artifact,
    )


def make_tool_node(deps: DepsSource) -> Node:
    """Build the tools node over the given dependencies."""

    async def tools(state: State, *, runtime: Runtime[Context]) -> dict[str, Any]:
        """Answer every tool call of the last AI message with a ToolMessage."""
        context = runtime.context or Context()
        services = deps()
        registry = services.tools
        last = state["messages"][-1]
        if not isinstance(last, AIMessage):
            raise ValueError("the tools node runs only after an AI message with tool calls")
        offered = set(state.get("tools_offered", []))
        client = set(state.get("client_tools_offered", []))
        calls = [call for call in last.tool_calls if call["name"] not in client]
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    run_tool_call(
                        registry.get(call["name"]) if call["name"] in offered else None,
                        call,
                        time_limit=context.tool_timeout,
                        max_chars=context.tool_output_max_chars,
                        observer=services.observer,
                        caller=context.caller,
                    )
                )
                for call in calls
            ]
        results = [task.result() for task in tasks]
        results += [
            ToolMessage(
                content=f"Error: the arguments were not valid JSON: {bad.get('error') or ''}",
                tool_call_id=bad.get("id") or "",
                name=bad.get("name") or "unknown",
                status="error",
            )
            for bad in last.invalid_tool_calls
        ]
        scoped = state.get("caller_scoped", False) or any(
            is_caller_scoped(message.artifact) for message in results
        )
        return {
            "messages": results,
            "tool_rounds": state.get("tool_rounds", 0) + 1,
            "caller_scoped": scoped,
        }

    return tools
