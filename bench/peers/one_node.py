"""The floor: a one-node LangGraph graph behind the least FastAPI door.

The graph is `MessagesState` with one node calling `ChatOpenAI`; the door answers
`/v1/chat/completions` and nothing else.

`python -m bench.peers.one_node` serves it on 127.0.0.1:$PORT, with uvicorn's defaults
(one worker, uvloop, httptools) as `python -m server` runs. Environment:

* `BENCH_UPSTREAM_URL`: the OpenAI-compatible base URL `ChatOpenAI` calls (ends in `/v1`);
* `BENCH_DATABASE_URL`: when set, requests with `X-Thread-Id` run on that thread with
  `AsyncPostgresSaver` (a psycopg pool, the documented setup); without it, or without the
  header, the graph has no memory.

Non-streamed requests are answered from `graph.ainvoke`; streamed ones with the node's tokens
from `graph.astream(..., stream_mode="messages")` as OpenAI chunks, then `[DONE]`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from langchain_core.messages import AIMessageChunk, BaseMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph

__all__ = ["build_graph", "create_app"]


def build_graph(
    model: ChatOpenAI, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[MessagesState, None, MessagesState, MessagesState]:
    """START → model → END, the model answering the whole `messages` channel."""

    async def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile(checkpointer=checkpointer)


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }


def _chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({**base, "choices": [choice]}).encode() + b"\n\n"


def create_app(upstream_url: str, database_url: str | None) -> FastAPI:
    """The floor's app; the pool (when `database_url`) opens in its lifespan."""
    model = ChatOpenAI(base_url=upstream_url, api_key="bench", model="bench", max_retries=0)
    graphs: dict[str, Any] = {"plain": build_graph(model)}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if database_url is None:
            yield
            return
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        async with AsyncConnectionPool(database_url, kwargs=kwargs, open=False) as pool:
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await saver.setup()
            graphs["memory"] = build_graph(model, saver)
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        messages = convert_to_messages(body["messages"])
        name = str(body.get("model") or "bench")
        thread = request.headers.get("x-thread-id")
        graph = graphs["plain"]
        config: RunnableConfig = {}
        if thread and "memory" in graphs:
            graph = graphs["memory"]
            config = {"configurable": {"thread_id": thread}}
        if not body.get("stream"):
            state = await graph.ainvoke({"messages": messages}, config)
            return JSONResponse(_completion(name, str(state["messages"][-1].content)))

        async def events() -> AsyncIterator[bytes]:
            base = {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": name,
            }
            yield _chunk(base, {"role": "assistant", "content": ""})
            async for token, _ in graph.astream(
                {"messages": messages}, config, stream_mode="messages"
            ):
                if isinstance(token, AIMessageChunk) and token.content:
                    yield _chunk(base, {"content": token.content})
            yield _chunk(base, {}, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def main() -> None:
    """Serve on 127.0.0.1:$PORT."""
    app = create_app(os.environ["BENCH_UPSTREAM_URL"], os.environ.get("BENCH_DATABASE_URL"))
    port = int(os.environ["PORT"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
