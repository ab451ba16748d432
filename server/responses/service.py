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

from dataclasses import dataclass, field
from typing import Any

from graph.errors import ErrorCode
from nodes.providers.catalogue import ProviderCatalogue
from server.auth import Caller
from server.errors import OpenAIHTTPError
from server.refusals import Refused
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
from server.stores.response_store import ResponseStore, StoredResponse
from server.turns.kit import TurnKit
from server.turns.request import ClientOptions, TurnRequest
from server.turns.result import TurnResult
from server.turns.threads import ThreadRef, scoped_thread_id, unscoped_thread_id

DOOR = "responses"
"""The door's name in the turn metrics."""


@dataclass(frozen=True)
class PlannedResponse:
    """One request, planned: its response id, the turn to run, and what the response echoes."""

    id: str
    request: CreateResponseRequest
    turn: TurnRequest
    input_items: list[dict[str, Any]]
    created_at: int = field(default_factory=now)

    @property
    def thread(self) -> ThreadRef | None:
        """The thread the response is stored on; None: `store: false`."""
        return self.turn.thread


class ResponsesService:
    """Turns one Responses request into one graph run, and a run's end into a response."""

    def __init__(
        self,
        *,
        kit: TurnKit,
        providers: ProviderCatalogue,
        store: ResponseStore,
        caller: Caller,
    ) -> None:
        self._kit = kit
        self._providers = providers
        self._settings = kit.settings
        self._store = store
        self._caller = caller
        self._key = caller.key_id
        """The API key id: responses are stored under it, and only it reads them."""

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
        function_tools(request)
        chat_tool_choice(request)
        response_format(request)
        self._providers.resolve(request.model)

    def options_for(self, request: CreateResponseRequest) -> ClientOptions:
        """The request's per-run options (the kit bounds them by the server's limits)."""
        tools = [
            {"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)}
            for tool in function_tools(request)
        ]
        return ClientOptions(
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
        return await resolve_references(request, self._store, self._key)

    async def previous(self, request: CreateResponseRequest) -> StoredResponse | None:
        """The stored response `previous_response_id` names, or None when it names none.

        Raises:
            OpenAIHTTPError: 404 when no response of the caller's key has that id.
        """
        if request.previous_response_id is None:
            return None
        record = await self._store.get(request.previous_response_id, self._key)
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
            client_id = unscoped_thread_id(self._key, previous.thread_id)
            return ThreadRef(client_id, previous.thread_id, delta=True)
        return ThreadRef(response_id, scoped_thread_id(self._key, response_id), delta=True)

    async def plan(
        self,
        request: CreateResponseRequest,
        response_id: str,
        previous: StoredResponse | None,
        thread: ThreadRef | None,
    ) -> PlannedResponse:
        """The turn of a validated request (`validate`, `previous`, `thread_for`).

        A stored response continues from its previous one's checkpoint (the kit appends when
        that is still the thread's latest, and forks from it otherwise); `store: false` runs
        statelessly on the previous response's messages.

        Raises:
            Refused: `thread_not_found` when the previous response's conversation is
                no longer stored.
        """
        history = [] if thread is not None else await self._history(previous)
        turn = TurnRequest(
            door=DOOR,
            caller=self._caller,
            messages=to_messages(request.items),
            thread=thread,
            options=self.options_for(request),
            checkpoint_id=previous.checkpoint_id if previous and thread else None,
            exact=True,
            history=history,
            wants_checkpoint=thread is not None,
        )
        return PlannedResponse(response_id, request, turn, input_records(request.items))

    async def _history(self, previous: StoredResponse | None) -> list[Any]:
        """The messages a `store: false` request continues (its previous response's)."""
        if previous is None:
            return []
        stored = ThreadRef(unscoped_thread_id(self._key, previous.thread_id), previous.thread_id)
        try:
            view = await self._kit.read_stored(stored, previous.checkpoint_id)
        except Refused as refused:
            if refused.code not in (ErrorCode.THREAD_NOT_FOUND, ErrorCode.CHECKPOINT_NOT_FOUND):
                raise
            raise Refused(
                ErrorCode.THREAD_NOT_FOUND,
                f"The conversation of response '{previous.id}' is no longer stored.",
                param="previous_response_id",
            ) from None
        return view.messages

    def response(
        self,
        planned: PlannedResponse,
        *,
        status: str,
        result: TurnResult | None = None,
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
        request = planned.request
        ids = ids or {}
        if reasoning is None and result is not None:
            reasoning = result.reasoning
        cut = result is not None and result.finish_reason == "length"
        if cut and status == "completed":
            status = "incomplete"
        items = (
            output_items(
                result.text if text is None else text,
                result.tool_calls,
                reasoning=reasoning,
                message_id=ids.get("message"),
                reasoning_id=ids.get("reasoning"),
                cut=cut,
            )
            if result is not None
            else []
        )
        return ResponseObject(
            id=planned.id,
            created_at=planned.created_at,
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
            usage=response_usage(result.usage) if result is not None else None,
            user=request.user,
            metadata=request.metadata or {},
        )

    async def record(
        self, planned: PlannedResponse, response: ResponseObject, result: TurnResult
    ) -> None:
        """Store a finished response under the checkpoint its turn ended on (stored turns only).

        Called before the response's last byte: a client may continue from it at once.
        """
        thread = planned.thread
        if thread is None:
            return
        if result.checkpoint_id is None:
            raise RuntimeError("a stored run ended without a checkpoint")
        await self._store.save(
            StoredResponse(
                id=planned.id,
                key_id=self._key,
                thread_id=thread.stored_id,
                checkpoint_id=result.checkpoint_id,
                model=planned.request.model,
                created_at=float(planned.created_at),
                response=response.model_dump(mode="json"),
                input_items=planned.input_items,
                metadata=planned.request.metadata or {},
            )
        )


def response_id() -> str:
    """A fresh `resp_…` id."""
    return new_id("resp")
