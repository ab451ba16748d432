"""The turn kit itself: admission's order, a thread's lock released however a turn ends, the
turns counted by outcome, and reading a thread by the id a path names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg_pool
import pytest

from graph.errors import ErrorCode
from server.auth import Caller
from server.errors import status_of
from server.refusals import Refused, thread_busy
from server.stores.budgets import BudgetPolicy
from server.stores.usage_ledger import ModelCall, UsageLedger
from server.stores.usage_table import open_sqlite_usage_store
from server.turns import run as running
from server.turns.events import TextDelta, TurnDone
from server.turns.lease import ThreadLease
from server.turns.threads import ThreadRef
from tests.helpers import WEATHER_TOOL
from tests.unit.server.kit import CALLER, Chat, MakeChat, http_request, turn_kit

THREAD = ThreadRef("t-1", "t-1")
ASK = ("user", "What is 6*7?")
DOOR = "chat"


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[UsageLedger]:
    """A usage ledger on a SQLite file, where key `spent` has used 100 tokens this month."""
    async with open_sqlite_usage_store(tmp_path / "usage.sqlite") as store:
        ledger = UsageLedger(store)
        ledger.record(ModelCall("spent", "offline", "offline:offline", 60, 40, 0.0))
        yield ledger


def budgeted(chat: Chat, ledger: UsageLedger) -> Chat:
    """`chat` with its kit counting the settings' budgets against `ledger`."""
    chat.kit = turn_kit(
        chat.settings,
        chat.deps,
        chat.graph,
        chat.stateless,
        checkpointer=chat.kit.checkpointer,
        metrics=chat.metrics,
        budgets=BudgetPolicy.from_settings(chat.settings),
        usage=ledger,
    )
    return chat


async def refusal(chat: Chat, caller: Caller, messages: int) -> ErrorCode | None:
    """The code the kit refuses one request with, or None when it admits it."""
    try:
        await chat.kit.admit(http_request(), caller, door=DOOR, messages=messages)
    except Refused as refused:
        return refused.code
    return None


# --- admit -------------------------------------------------------------------------------


async def test_admit_checks_the_rate_limit_then_the_budget_then_max_messages(
    make_chat: MakeChat, ledger: UsageLedger
) -> None:
    chat = budgeted(make_chat(rate_limit_rpm=1, monthly_token_budget=50, max_messages=2), ledger)
    spent, fresh = Caller("spent"), Caller("fresh")

    # Over its budget and sending too many messages: the budget is checked first ...
    assert await refusal(chat, spent, messages=3) == ErrorCode.INSUFFICIENT_QUOTA
    # ... after the rate limit, which counted that request: the next one is over it.
    assert await refusal(chat, spent, messages=3) == ErrorCode.RATE_LIMIT_EXCEEDED
    # Within its budget, a request with too many messages is refused for them ...
    assert await refusal(chat, fresh, messages=3) == ErrorCode.TOO_MANY_MESSAGES
    # ... after the rate limit had counted it too.
    assert await refusal(chat, fresh, messages=1) == ErrorCode.RATE_LIMIT_EXCEEDED

    assert chat.turns("refused") == 4
    assert chat.turns("refused", door="responses") == 0


async def test_each_refusal_of_admit_has_its_status_and_headers(
    make_chat: MakeChat, ledger: UsageLedger
) -> None:
    chat = budgeted(make_chat(rate_limit_rpm=1, monthly_token_budget=50, max_messages=2), ledger)
    request = http_request()

    with pytest.raises(Refused) as quota:
        await chat.kit.admit(request, Caller("spent"), door=DOOR, messages=1)
    with pytest.raises(Refused) as rate:
        await chat.kit.admit(request, Caller("spent"), door=DOOR, messages=1)
    with pytest.raises(Refused) as count:
        await chat.kit.admit(http_request(), Caller("fresh"), door=DOOR, messages=3, param="input")

    assert (status_of(quota.value), quota.value.headers) == (429, {"x-should-retry": "false"})
    assert status_of(rate.value) == 429
    assert "retry-after" in {name.lower() for name in rate.value.headers}
    assert not request.state.rate_limit.allowed  # left for the x-ratelimit-* headers
    assert (status_of(count.value), count.value.param) == (400, "input")
    assert chat.turns("refused") == 3


async def test_a_batch_counts_each_input_against_the_rate_limit(make_chat: MakeChat) -> None:
    chat = make_chat(rate_limit_rpm=2)
    await chat.kit.admit(http_request(), CALLER, door=DOOR, messages=2, inputs=2)
    with pytest.raises(Refused) as caught:
        await chat.kit.admit(http_request(), CALLER, door=DOOR, messages=1)
    assert caught.value.code == ErrorCode.RATE_LIMIT_EXCEEDED


async def test_admitting_within_every_limit_counts_no_turn(make_chat: MakeChat) -> None:
    chat = make_chat(rate_limit_rpm=5, max_messages=2)
    await chat.kit.admit(http_request(), CALLER, door=DOOR, messages=2)
    assert chat.turns("refused") == 0


# --- open: the thread's lock ---------------------------------------------------------------


async def test_open_releases_the_thread_when_preparing_fails(chat: Chat) -> None:
    with pytest.raises(Refused) as caught:
        async with chat.open(THREAD, ASK, ("assistant", "nothing to answer")):
            pytest.fail("opened")
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    assert not chat.kit.locks.busy(THREAD.stored_id)
    assert chat.turns("refused") == 1
    await chat.turn(THREAD, ASK)  # the thread takes its next turn


async def test_open_holds_the_thread_in_the_block_and_releases_it_when_the_block_raises(
    chat: Chat,
) -> None:
    refused: list[Refused] = []

    async def door() -> None:
        async with chat.open(THREAD, ASK):
            assert chat.kit.locks.busy(THREAD.stored_id)
            try:
                async with chat.open(THREAD, ASK):
                    pytest.fail("two turns on one thread")
            except Refused as error:
                refused.append(error)
            raise RuntimeError("the door failed")

    with pytest.raises(RuntimeError, match="the door failed"):
        await door()
    (busy,) = refused
    assert (busy.code, status_of(busy)) == (ErrorCode.THREAD_BUSY, 409)
    assert not chat.kit.locks.busy(THREAD.stored_id)
    assert chat.turns("refused") == 1  # the busy one; a door's own failure is not a refusal


async def test_a_detached_turn_keeps_the_thread_until_its_holder_releases_it(chat: Chat) -> None:
    async with chat.open(THREAD, ASK) as turn:
        held = turn.detach()
    assert chat.kit.locks.busy(THREAD.stored_id)
    await held.aclose()
    assert not chat.kit.locks.busy(THREAD.stored_id)


async def test_a_lease_taken_before_the_turn_is_the_turn_s_and_released_with_it(
    chat: Chat,
) -> None:
    lease = ThreadLease()
    await chat.kit.lease(THREAD, lease)
    assert chat.kit.locks.busy(THREAD.stored_id)
    with pytest.raises(Refused) as busy:
        await chat.kit.lease(THREAD, ThreadLease())
    assert busy.value.code == ErrorCode.THREAD_BUSY

    async with chat.kit.open(chat.request_for(THREAD, ASK), lease=lease) as turn:
        assert chat.kit.locks.busy(THREAD.stored_id)
        await turn.complete()
    assert not chat.kit.locks.busy(THREAD.stored_id)
    await lease.release()  # the request's own release, after the run's: nothing left to do
    assert chat.turns("ok") == 1


# --- outcomes ---------------------------------------------------------------------------------


async def test_a_completed_turn_counts_ok_and_one_paused_for_client_tools_counts_paused(
    chat: Chat,
) -> None:
    await chat.turn(THREAD, ASK)
    assert (chat.turns("ok"), chat.turns("paused")) == (1, 0)

    other = ThreadRef("t-2", "t-2")
    output = await chat.turn(other, ("user", "use get_weather city=Oslo"), tools=[WEATHER_TOOL])
    assert output["finish_reason"] == "tool_calls"
    assert (chat.turns("ok"), chat.turns("paused")) == (1, 1)


async def test_a_streamed_turn_counts_once_when_it_ends(chat: Chat) -> None:
    events = await chat.stream(THREAD, ASK)
    assert isinstance(events[-1], TurnDone)
    paused = await chat.stream(
        ThreadRef("t-2", "t-2"), ("user", "use get_weather city=Oslo"), tools=[WEATHER_TOOL]
    )
    assert isinstance(paused[-1], TurnDone)
    assert paused[-1].result.tool_calls
    assert (chat.turns("ok"), chat.turns("paused"), chat.turns("cancelled")) == (1, 1, 0)


async def test_a_stream_left_before_its_end_counts_cancelled(chat: Chat) -> None:
    async with chat.open(THREAD, ASK) as turn:
        stream = turn.stream()
        first = await anext(stream)
        assert isinstance(first, TextDelta)
        await stream.aclose()
    assert not chat.kit.locks.busy(THREAD.stored_id)
    assert (chat.turns("cancelled"), chat.turns("ok")) == (1, 0)


async def test_a_store_lost_mid_turn_counts_the_turn_once_as_an_error(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def store_gone(*_: object, **__: object) -> None:
        raise psycopg_pool.PoolTimeout("no connection")

    monkeypatch.setattr(running, "complete", store_gone)
    with pytest.raises(Refused) as caught:
        async with chat.open(THREAD, ASK) as turn:
            await turn.complete()
    assert caught.value.code == ErrorCode.CHECKPOINTER_UNAVAILABLE
    # Opened, then failed: an error of the turn, not also a refusal of the kit.
    assert (chat.turns("error"), chat.turns("refused")) == (1, 0)
    assert not chat.kit.locks.busy(THREAD.stored_id)


async def test_a_refusal_the_door_raises_in_the_block_is_not_counted_by_the_kit(
    chat: Chat,
) -> None:
    async def door() -> None:
        async with chat.open(THREAD, ASK) as turn:
            await turn.complete()
            raise thread_busy()  # the door's own, after the turn was counted

    with pytest.raises(Refused):
        await door()
    assert (chat.turns("ok"), chat.turns("refused")) == (1, 0)


# --- read ----------------------------------------------------------------------------------


@pytest.mark.parametrize("thread_id", ["never-stored", "", "   "])
async def test_reading_an_unknown_or_blank_thread_is_thread_not_found(
    chat: Chat, thread_id: str
) -> None:
    with pytest.raises(Refused) as caught:
        await chat.kit.read(CALLER, thread_id)
    assert (caught.value.code, caught.value.param) == (ErrorCode.THREAD_NOT_FOUND, "thread_id")
    assert status_of(caught.value) == 404


async def test_reading_a_stored_thread_gives_its_messages(chat: Chat) -> None:
    thread = chat.kit.thread(CALLER, "t-1")
    await chat.turn(thread, ASK)
    view = await chat.kit.read(CALLER, "t-1")
    assert [m.type for m in view.messages] == ["human", "ai", "tool", "ai"]
    history = await chat.kit.history(CALLER, "t-1")
    assert history


def test_an_invalid_thread_id_in_a_path_names_its_param(chat: Chat) -> None:
    with pytest.raises(Refused) as caught:
        chat.kit.thread(CALLER, "a\nb", param="conversation_id")
    assert (caught.value.code, caught.value.param) == (
        ErrorCode.INVALID_THREAD_ID,
        "conversation_id",
    )
