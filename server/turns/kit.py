"""The turn kit: the one object every door that runs (or reads) the agent goes through.

A door translates its wire into a `TurnRequest` and its answer out of a `TurnResult` or
the stream's events; everything between is here, the same for every door:

1. `admit`: every limit before any work: the rate limit, the monthly budget, the number of
   messages (MAX_MESSAGES), the model alias.
2. `open`: the thread's lock (one run per thread, on every replica), the client's messages
   reconciled with the stored thread, the run prepared; released when the block ends, or,
   for a stream, when the run has finished (`server.turns.http.stream_turn`).
3. `Turn.complete()` or `Turn.stream()`: the graph runs; the result is computed once;
   the turn is counted in `agent_turns_total{door, outcome}`.

`read` gives a door a caller's thread by the id a path names (validated as every door
validates it, a 404 for a thread that is not stored), with its state and history;
`update_state`, `copy_thread` and `delete_thread` write a thread without a run (under its
lock where a run could race them).

The kit refuses with `server.refusals.Refused` (a code, never a status); a store
that cannot be reached is a refusal too (`checkpointer_unavailable`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot, StateUpdate
from starlette.requests import Request

from graph.builder import AgentGraph
from graph.errors import ErrorCode
from nodes.images import ImageStore
from nodes.providers.catalogue import ProviderCatalogue
from server.auth import Caller
from server.refusals import Refused, store_call, thread_not_found
from server.settings import Settings
from server.stores.budgets import BudgetPolicy
from server.stores.locks import ThreadLocks
from server.stores.ratelimit import RateLimiter, over_limit_message, subject_of
from server.stores.usage_ledger import UsageLedger
from server.stores.usage_table import month_start, next_month
from server.turns.direct import prepare_direct
from server.turns.history import HistoryCheckpoint, read_history
from server.turns.lease import ThreadLease
from server.turns.prepare import PreparedRun, prepare_run, stateless_run
from server.turns.reading import ThreadView, read_thread
from server.turns.request import TurnRequest, run_context
from server.turns.state_edits import (
    copy_checkpoints,
    delete_checkpoints,
    list_states,
    write_state,
)
from server.turns.threads import ThreadRef, path_thread
from server.turns.turn import LatestCheckpoint, Turn

__all__ = ["Turn", "TurnCounter", "TurnKit"]

TurnCounter = Callable[[str, str], None]
"""Counts one turn of a door by how it ended (`Metrics.count_turn`: `agent_turns_total`)."""


class TurnKit:
    """Admits, opens, runs and reads turns for every door (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        graph: AgentGraph,
        stateless_graph: AgentGraph,
        checkpointer: BaseCheckpointSaver[Any],
        locks: ThreadLocks,
        limiter: RateLimiter,
        providers: ProviderCatalogue,
        count: TurnCounter,
        budgets: BudgetPolicy | None = None,
        usage: UsageLedger | None = None,
        images: ImageStore | None = None,
        latest_checkpoint: LatestCheckpoint | None = None,
    ) -> None:
        self.settings = settings
        self.graph = graph
        self.stateless_graph = stateless_graph
        self.checkpointer = checkpointer
        self.locks = locks
        self._limiter = limiter
        self.providers = providers
        self._count_turn = count
        self._budgets = budgets or BudgetPolicy()
        self._usage = usage
        self._images = images
        self._latest_checkpoint = latest_checkpoint

    # 1. Admission ---------------------------------------------------------------------

    async def admit(
        self,
        request: Request,
        caller: Caller,
        *,
        door: str,
        messages: int,
        param: str = "messages",
        inputs: int = 1,
        model: str | None = None,
    ) -> None:
        """Every limit, before any work: rate, budget, MAX_MESSAGES, the model alias.

        Args:
            request: The HTTP request (on an open service the rate limit counts its client's
                address; the decision is left in its state for the `x-ratelimit-*` headers).
            caller: The authenticated caller.
            door: The door's name, for the metrics of a refusal.
            messages: How many messages the request sends (a batch's inputs together).
            param: How the door's wire names its messages, for a refusal.
            inputs: How many turns the request asks for (a batch's inputs): each is one
                request against the rate limit.
            model: The model alias asked for (None: the default); an unknown one is a 404.

        Raises:
            Refused: `rate_limit_exceeded` (with `Retry-After`), `insufficient_quota`,
                `too_many_messages`.
            ModelNotFoundError: No model alias of that name.
        """
        try:
            for _ in range(max(inputs, 1)):
                await self.rate_limit(request, caller)
            await self._check_budget(caller)
            if messages > self.settings.max_messages:
                raise Refused(
                    ErrorCode.TOO_MANY_MESSAGES,
                    f"Too many messages: at most {self.settings.max_messages} are accepted.",
                    param=param,
                )
        except Refused:
            self._count_turn(door, "refused")
            raise
        if model is not None:
            self.providers.resolve(model)

    async def rate_limit(self, request: Request, caller: Caller) -> None:
        """Count one request of the caller against the rate limit (`admit` does it too).

        For a door's call that spends no model call (an MCP catalogue tool): the rate
        limit only.

        Raises:
            Refused: `rate_limit_exceeded`, with `Retry-After` and `x-ratelimit-*`.
        """
        limiter = self._limiter
        if not limiter.enabled:
            return
        decision = await limiter.hit(subject_of(request, caller.key_id))
        request.state.rate_limit = decision
        if not decision.allowed:
            raise Refused(
                ErrorCode.RATE_LIMIT_EXCEEDED,
                over_limit_message(decision),
                headers=decision.headers(),
            )

    async def _check_budget(self, caller: Caller) -> None:
        """A refusal once the caller has spent its monthly budget (OpenAI's 429, not retried)."""
        budget = self._budgets.for_caller(caller)
        if budget is None or self._usage is None:
            return
        spent = budget.exceeded(await self._usage.month_spent(caller.key_id))
        if spent is None:
            return
        resets = next_month(month_start(self._usage.clock()))
        raise Refused(
            ErrorCode.INSUFFICIENT_QUOTA,
            f"You exceeded your current quota: this API key has used {spent} for this month. "
            f"It resets at {resets.isoformat().replace('+00:00', 'Z')}.",
            headers={"x-should-retry": "false"},
        )

    # 2. Opening -----------------------------------------------------------------------

    async def lease(self, thread: ThreadRef | None, lease: ThreadLease) -> None:
        """Take `thread`'s lock into `lease` now, for a run that starts later (LangServe).

        Raises:
            Refused: `thread_busy`.
        """
        if thread is not None:
            await lease.take(self.locks, thread.stored_id)

    @asynccontextmanager
    async def open(
        self, request: TurnRequest, *, lease: ThreadLease | None = None
    ) -> AsyncIterator[Turn]:
        """The turn, prepared under its thread's lock; the lock is released when the block ends.

        Args:
            request: The turn as the door asks for it.
            lease: The thread's lock, taken already (`lease`) by a door whose response starts
                before its run does.

        Raises:
            Refused: `thread_busy`; `invalid_request` for input that cannot be run;
                `thread_not_found` for a continued checkpoint that is gone;
                `checkpointer_unavailable`.
        """
        held = AsyncExitStack()
        try:
            try:
                thread = request.thread
                if thread is not None:
                    if lease is not None and lease.claim():
                        held.push_async_callback(lease.release)
                    else:
                        await held.enter_async_context(self.locks.hold(thread.stored_id))
                run = await store_call(self._prepare(request))
            except Refused:
                # Only a refusal to open; once opened, the turn counts its own outcome.
                self._count_turn(request.door, "refused")
                raise
            yield Turn(
                request,
                run,
                held,
                settings=self.settings,
                count=self._count_turn,
                latest_checkpoint=self._latest_checkpoint,
            )
        finally:
            with anyio.CancelScope(shield=True):  # half a release would leave the thread busy
                await held.aclose()

    async def _prepare(self, request: TurnRequest) -> PreparedRun:
        context = run_context(self.settings, caller=request.caller.key_id, **request.options)
        if request.direct:  # LangGraph's own input (`server.turns.direct`)
            return await prepare_direct(
                (self.graph, self.stateless_graph),
                request,
                context,
                durability=self.settings.checkpoint_durability,
                images=self._images,
            )
        if request.thread is None:
            return stateless_run(
                self.stateless_graph,
                [*request.history, *request.messages],
                context,
                config=request.config,
                answerable=request.answerable,
                checked=request.messages,
            )
        checkpoint_id = request.checkpoint_id
        latest = self._latest_checkpoint
        # On the thread's latest checkpoint the turn simply appends (LangGraph then reads the
        # thread once; naming a checkpoint also reads the latest, to compare). One indexed
        # query, under the thread's lock.
        if (
            request.exact
            and checkpoint_id is not None
            and latest is not None
            and await latest(request.thread.stored_id) == checkpoint_id
        ):
            checkpoint_id = None
        return await prepare_run(
            self.graph,
            request.messages,
            request.thread,
            context,
            config=request.config,
            checkpoint_id=checkpoint_id,
            retry=request.retry,
            idempotency_key=request.idempotency_key,
            assistant_text=request.assistant_text,
            answerable=request.answerable,
            durability=self.settings.checkpoint_durability,
            images=self._images,
            exact=request.exact,
        )

    # 3. Reading -----------------------------------------------------------------------

    def thread(self, caller: Caller, thread_id: str, *, param: str = "thread_id") -> ThreadRef:
        """The caller's thread a path names, validated as every door validates a thread id.

        Raises:
            Refused: `invalid_thread_id`; `thread_not_found` for a blank id.
        """
        return path_thread(caller.key_id, thread_id, param=param)

    async def read(
        self,
        caller: Caller,
        thread_id: str,
        *,
        checkpoint_id: str | None = None,
        param: str = "thread_id",
    ) -> ThreadView:
        """The caller's stored thread (at `checkpoint_id`, else its latest checkpoint).

        Raises:
            Refused: `invalid_thread_id`; `thread_not_found` (every door's 404);
                `checkpoint_not_found`; `checkpointer_unavailable`.
        """
        return await self.read_stored(self.thread(caller, thread_id, param=param), checkpoint_id)

    async def read_stored(
        self, thread: ThreadRef, checkpoint_id: str | None = None, *, param: str = "checkpoint_id"
    ) -> ThreadView:
        """A thread the door named itself (a stored response's, a config's), at `checkpoint_id`.

        Raises:
            Refused: `thread_not_found`; `checkpoint_not_found` (naming `param`);
                `checkpointer_unavailable`.
        """
        return await store_call(
            read_thread(
                self.graph, self.checkpointer, thread, checkpoint_id=checkpoint_id, param=param
            )
        )

    async def history(
        self, caller: Caller, thread_id: str, *, limit: int = 100
    ) -> list[HistoryCheckpoint]:
        """The caller's thread's newest `limit` checkpoints (every branch), newest first.

        Raises:
            Refused: `invalid_thread_id`; `thread_not_found`; `checkpointer_unavailable`.
        """
        thread = self.thread(caller, thread_id)
        history = await store_call(
            read_history(self.graph, self.checkpointer, thread.stored_id, limit=limit)
        )
        if not history:
            raise thread_not_found(thread.client_id)
        return history

    async def state_history(
        self,
        thread: ThreadRef,
        *,
        limit: int,
        before: str | None = None,
        metadata: dict[str, Any] | None = None,
        checkpoint: dict[str, Any] | None = None,
    ) -> list[StateSnapshot]:
        """The thread's states, newest first, every branch (`list_states`); [] when not stored."""
        states = list_states(self.graph, thread.stored_id, limit, before, metadata, checkpoint)
        return await store_call(states)  # Refused: `checkpointer_unavailable`

    # 4. Writing without a run ------------------------------------------------------------

    async def update_state(
        self,
        thread: ThreadRef,
        values: Any,
        *,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
        supersteps: list[list[StateUpdate]] | None = None,
    ) -> RunnableConfig:
        """Write `values` as `as_node` would (at `checkpoint_id`: a fork), under the lock.

        `as_node="__copy__"` with `values` None copies the checkpoint as a new one (Studio's
        "re-run from here"); `supersteps`, when given, are written instead, in turn. The new
        checkpoint's config (the stored thread id) is returned.

        Raises:
            Refused: `thread_busy`; `checkpoint_not_found`; `invalid_request` (an unknown
                node, values the state cannot take); `checkpointer_unavailable`.
        """
        async with self.locks.hold(thread.stored_id):
            return await store_call(
                write_state(
                    self.graph,
                    self.checkpointer,
                    thread,
                    supersteps or [[StateUpdate(values, as_node)]],
                    checkpoint_id=checkpoint_id,
                )
            )

    async def copy_thread(self, source: ThreadRef, target: ThreadRef) -> int:
        """Copy every checkpoint of `source` onto `target` (a new thread); how many."""
        return await store_call(
            copy_checkpoints(self.checkpointer, source.stored_id, target.stored_id)
        )

    async def delete_thread(self, thread: ThreadRef) -> bool:
        """Delete the thread's checkpoints under its lock (else `thread_busy`); had it any?"""
        async with self.locks.hold(thread.stored_id):
            return await store_call(delete_checkpoints(self.checkpointer, thread.stored_id))
