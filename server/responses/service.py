"""Runs Responses API requests through the graph: the work behind the `/v1/responses` routes.

A response id names a checkpoint. A response that is stored (`store` true, the default)
records the thread its run was on and the checkpoint it ended on (`server.stores.response_store`);
`previous_response_id` continues from that checkpoint: the turn appends when it is still the
thread's latest, and forks the thread from it when the thread has moved on since (an older
response continued). Without `previous_response_id` a stored response starts a new thread,
named after its own id. `store: false` runs statelessly: nothing is written, and the
response cannot be retrieved or continued; it may itself continue a stored response (from
that response's checkpoint, without writing to its thread).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig

from graph.builder import AgentGraph
from graph.context import Context
from graph.errors import ErrorCode
from graph.state import InputState
from nodes.images import ImageStore
from nodes.providers.catalogue import ProviderCatalogue
from server.errors import OpenAIHTTPError
from server.responses.adapter import input_records, new_id, now, output_items, to_messages
from server.responses.adapter import usage_object as response_usage
from server.responses.options import (
    REFUSED,
    asked_reasoning,
    asked_text,
    chat_tool_choice,
    function_tools,
    not_found,
    response_format,
    unset,
    unsupported,
)
from server.responses.protocol import CreateResponseRequest
from server.responses.references import resolve_references
from server.responses.wire import (
    FunctionToolOut,
    IncompleteDetails,
    ResponseError,
    ResponseObject,
)
from server.settings import Settings
from server.stores.response_store import ResponseStore, StoredResponse
from server.turns import run as turn
from server.turns.events import StreamEvent, final_reasoning, final_text, pending_tool_calls
from server.turns.prepare import (
    PreparedRun,
    prepare_run,
    refuse_image_references,
    require_answerable,
    run_context,
)
from server.turns.threads import ThreadRef, scoped_thread_id, unscoped_thread_id


@dataclass(frozen=True)
class Turn:
    """One request, prepared: its response id, thread, the run, and what the response echoes."""

    id: str
    request: CreateResponseRequest
    run: PreparedRun
    thread: ThreadRef | None
    """The thread the response is stored on; None: `store: false`."""
    input_items: list[dict[str, Any]]
    created_at: int = field(default_factory=now)


class ResponsesService:
    """Turns one Responses request into one graph run, and a run's end into a response."""

    def __init__(
        self,
        *,
        graph: AgentGraph,
        stateless_graph: AgentGraph,
        providers: ProviderCatalogue,
        settings: Settings,
        store: ResponseStore,
        caller: str,
        images: ImageStore | None = None,
    ) -> None:
        self._graph = graph
        self._stateless = stateless_graph
        self._providers = providers
        self._settings = settings
        self._store = store
        self._caller = caller
        """The API key id: responses are stored under it, and only it reads them."""
        self._images = images

    def validate(self, request: CreateResponseRequest) -> None:
        """Refuse what the service cannot honour, before any work (400/404).

        Raises:
            OpenAIHTTPError: 400 `unknown_parameter` for a field that is no parameter of
                the endpoint, `unsupported_parameter`/`unsupported_value` for what the
                service cannot honour; 404 for an unknown model.
        """
        unknown = next(iter(request.model_extra or {}), None)
        if unknown is not None:
            raise OpenAIHTTPError(
                400,
                f"Unknown parameter: '{unknown}'.",
                code=ErrorCode.UNKNOWN_PARAMETER,
                param=unknown,
            )
        for name in REFUSED:
            if not unset(getattr(request, name)):
                raise unsupported(
                    f"The parameter '{name}' is not supported by this service.",
                    name,
                    value=False,
                )
        if len(request.items) > self._settings.max_messages:
            raise OpenAIHTTPError(
                400,
                f"Too many input items: at most {self._settings.max_messages} are accepted.",
                code=ErrorCode.TOO_MANY_MESSAGES,
                param="input",
            )
        function_tools(request)
        chat_tool_choice(request)
        response_format(request)
        self._providers.resolve(request.model)

    def context_for(self, request: CreateResponseRequest) -> Context:
        """Per-run options from the request, with the server's limits."""
        tools = [
            {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
            for tool in function_tools(request)
        ]
        return run_context(
            self._settings,
            caller=self._caller,
            model=request.model,
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_output_tokens,
            client_tools=tools,
            tool_choice=chat_tool_choice(request),
            parallel_tool_calls=request.parallel_tool_calls,
            response_format=response_format(request),
            instructions=request.instructions,
            openai_params=request.openai_params,
        )

    async def resolve(self, request: CreateResponseRequest) -> CreateResponseRequest:
        """The request with each `item_reference` replaced by the caller's item it names.

        Raises:
            OpenAIHTTPError: 400 `item_not_found` for a reference to no item of the caller.
        """
        return await resolve_references(request, self._store, self._caller)

    async def previous(self, request: CreateResponseRequest) -> StoredResponse | None:
        """The stored response `previous_response_id` names, or None when it names none.

        Raises:
            OpenAIHTTPError: 404 when no response of the caller's key has that id.
        """
        if request.previous_response_id is None:
            return None
        record = await self._store.get(request.previous_response_id, self._caller)
        if record is None:
            raise not_found(request.previous_response_id)
        return record

    def thread_for(
        self, request: CreateResponseRequest, previous: StoredResponse | None, response_id: str
    ) -> ThreadRef | None:
        """The thread a stored response is on: its previous one's, or a new one named after it."""
        if not request.stored:
            return None
        if previous is not None:
            client_id = unscoped_thread_id(self._caller, previous.thread_id)
            return ThreadRef(client_id, previous.thread_id, delta=True)
        return ThreadRef(response_id, scoped_thread_id(self._caller, response_id), delta=True)

    async def prepare(
        self,
        request: CreateResponseRequest,
        response_id: str,
        previous: StoredResponse | None,
        thread: ThreadRef | None,
    ) -> Turn:
        """Prepare the run of a validated request (`validate`, `previous`, `thread_for`).

        The route holds the thread's lock from before this until the response is recorded.

        Raises:
            OpenAIHTTPError: 400 for input that cannot be run (or answers the wrong calls),
                404 when the previous response's checkpoint is gone.
        """
        context = self.context_for(request)
        messages = to_messages(request.items)
        records = input_records(request.items)
        if thread is None:
            run = await self._stateless_run(messages, context, previous)
        else:
            run = await prepare_run(
                self._graph,
                messages,
                thread,
                context,
                checkpoint_id=await self._fork_point(previous),
                durability=self._settings.checkpoint_durability,
                images=self._images,
                exact=True,
            )
        return Turn(response_id, request, run, thread, records)

    async def _fork_point(self, previous: StoredResponse | None) -> str | None:
        """The checkpoint to fork from: the previous response's, unless it is the latest.

        On the thread's latest checkpoint the turn simply appends (LangGraph then reads the
        thread once; naming a checkpoint also reads the latest, to compare). The check is
        one indexed query (`ResponseStore.latest_checkpoint`), run under the thread's lock.
        """
        if previous is None:
            return None
        if await self._store.latest_checkpoint(previous.thread_id) == previous.checkpoint_id:
            return None
        return previous.checkpoint_id

    async def _stateless_run(
        self, messages: list[AnyMessage], context: Context, previous: StoredResponse | None
    ) -> PreparedRun:
        """`store: false`: the graph without a checkpointer, on the previous response's thread.

        The stored messages come from the service's own thread (their images by reference,
        resolved by the graph), so only the client's new messages are checked.
        """
        refuse_image_references(messages)
        require_answerable(messages)
        history: list[AnyMessage] = []
        if previous is not None:
            snapshot = await self._graph.aget_state(_at(previous))
            if snapshot.created_at is None:
                raise OpenAIHTTPError(
                    404,
                    f"The conversation of response '{previous.id}' is no longer stored.",
                    code=ErrorCode.THREAD_NOT_FOUND,
                    param="previous_response_id",
                )
            history = list(snapshot.values.get("messages", []))
        state = InputState(messages=[*history, *messages])
        return PreparedRun(self._stateless, state, {}, context)

    async def complete(self, turn_: Turn) -> dict[str, Any]:
        """Run to the end (or to a pause for client tools) and return the graph's output."""
        return await turn.complete(turn_.run)

    def stream(self, turn_: Turn) -> AsyncGenerator[StreamEvent, None]:
        """Run, yielding reasoning and text as the provider produces them, then the output.

        Reasoning only with SHOW_REASONING; progress lines (PROGRESS_EVENTS) are the chat
        door's, shown as reasoning there, and not sent here.
        """
        return turn.stream(turn_.run, show_reasoning=self._settings.show_reasoning, progress=False)

    def response(
        self,
        turn_: Turn,
        *,
        status: str,
        output: dict[str, Any] | None = None,
        error: ResponseError | None = None,
        text: str | None = None,
        reasoning: str | None = None,
        ids: dict[str, str] | None = None,
    ) -> ResponseObject:
        """The response object of a turn: in progress, completed with the run's output, or failed.

        `text`, `reasoning` and `ids` (`message`, `reasoning`): the answer's text and
        reasoning, and their items' ids, as they were streamed (by default the output's,
        and fresh ids). Reasoning is shown only with SHOW_REASONING.
        """
        request = turn_.request
        ids = ids or {}
        if reasoning is None and output is not None and self._settings.show_reasoning:
            reasoning = final_reasoning(output)
        cut = output is not None and output.get("finish_reason") == "length"
        if cut and status == "completed":
            status = "incomplete"
        items = (
            output_items(
                final_text(output) if text is None else text,
                pending_tool_calls(output),
                reasoning=reasoning,
                message_id=ids.get("message"),
                reasoning_id=ids.get("reasoning"),
                cut=cut,
            )
            if output is not None
            else []
        )
        return ResponseObject(
            id=turn_.id,
            created_at=turn_.created_at,
            status=status,
            completed_at=now() if status == "completed" else None,
            error=error,
            incomplete_details=IncompleteDetails() if status == "incomplete" else None,
            instructions=request.instructions,
            max_output_tokens=request.max_output_tokens,
            model=request.model,
            output=items,
            parallel_tool_calls=request.parallel_tool_calls is not False,
            previous_response_id=request.previous_response_id,
            store=request.stored,
            temperature=request.temperature,
            reasoning=asked_reasoning(request),
            text=asked_text(request),
            tool_choice=request.tool_choice or "auto",
            tools=[
                FunctionToolOut.model_validate(tool.model_dump())
                for tool in function_tools(request)
            ],
            top_p=request.top_p,
            truncation=request.truncation or "disabled",
            usage=response_usage(output.get("usage")) if output is not None else None,
            user=request.user,
            metadata=request.metadata or {},
        )

    async def record(self, turn_: Turn, response: ResponseObject) -> None:
        """Store a finished response under the checkpoint its run ended on (stored turns only).

        Called while the route still holds the thread: the thread's latest checkpoint is
        the one this run wrote.
        """
        if turn_.thread is None:
            return
        latest = await self._store.latest_checkpoint(turn_.thread.stored_id)
        if latest is None:
            raise RuntimeError("a stored run ended without a checkpoint")
        await self._store.save(
            StoredResponse(
                id=turn_.id,
                key_id=self._caller,
                thread_id=turn_.thread.stored_id,
                checkpoint_id=latest,
                model=turn_.request.model,
                created_at=float(turn_.created_at),
                response=response.model_dump(mode="json"),
                input_items=turn_.input_items,
                metadata=turn_.request.metadata or {},
            )
        )


def _at(previous: StoredResponse) -> RunnableConfig:
    """The config of a stored response's checkpoint."""
    return {
        "configurable": {
            "thread_id": previous.thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": previous.checkpoint_id,
        }
    }


def response_id() -> str:
    """A fresh `resp_…` id."""
    return new_id("resp")
