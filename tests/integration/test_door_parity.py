"""Door parity: every door that runs the agent applies every guard, proved door x guard.

The doors come from the app itself: every route that takes a POST is either in the door table
(`tests.doors.DOORS`), or in one of the commented lists below of routes that run no turn (or
that are another door's route under a second path). A route in neither fails
`test_every_post_route_is_enrolled`, so a door added later is enrolled by construction.

Each cell of the table is one test, `test_guard[<door>-<guard>]`, run on every form of the
door (each route, JSON and streamed). A guard that does not apply to a door is a cell too: the
door's `not_applicable` gives the reason, and the cell checks that it is given (a form's
own `not_applicable` skips that form only: a LangGraph background run outlives its client).
A guard that a door lacks today on some forms is listed in GAPS: its cell is an xfail while
exactly those forms fail.

Two apps are shared by the cells (module scope), over one fake provider (`_primary`): `main`
on PostgreSQL (checkpoints, stored responses, usage) and Redis (thread locks), with small
limits (MAX_MESSAGES, MAX_REQUEST_BYTES), per-key budgets (KEY_BUDGETS) and an admin key;
`limited`, on SQLite and Redis (the rate windows), with a rate limit of one request a minute.
Each cell has an API key of its own (`key(door, guard)`), so cells never share a budget or a
rate window; every check holds when the cell runs again on the same app (`--count 3`).

The turn counter `agent_turns_total{door, outcome}` is the turn kit's (server/turns/): the
`metrics` cells fail until it is there.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from langserve.lzstring import LZString
from pydantic import SecretStr
from starlette.applications import Starlette

from server.app import create_app
from tests.conftest import (
    fresh_database,
    own_redis_prefix,
    reachable_redis,
    serve_app,
    settings_in,
)
from tests.door_checks import (
    ADMIN,
    CHECKS,
    COST_BUDGET,
    DOLLAR_A_TOKEN,
    GUARDS,
    MAX_BYTES,
    MAX_MESSAGES,
    Cell,
    client,
    id_of,
    key,
)
from tests.doors import DOORS, ENROLLED_PATHS, MODEL, Door, bearer
from tests.fakes.server_thread import ServedApp
from tests.fakes.upstream import FakeUpstream, Reply
from tests.helpers import priced_provider_file

# --- the routes that run no turn ----------------------------------------------------------

NOT_TURNS: dict[str, str] = {
    # Operator routes (admin keys): no conversation, no model call.
    "/admin/cache/clear": "empties the response cache",
    "/admin/knowledge": "knowledge ingest: splits and embeds documents, runs no turn",
    # The inspector's form posts: they set or clear the browser's key cookie.
    "/agent/inspect/login": "sets the key cookie of the inspector and the playground",
    "/agent/inspect/logout": "clears that cookie",
    # The LangGraph API's threads: records and state, no model call.
    "/threads": "creates a thread (its supersteps write state as nodes would, under its lock)",
    "/threads/count": "counts the caller's threads",
    "/threads/search": "lists the caller's threads",
    "/threads/{thread_id}/copy": "copies a thread's checkpoints to a new thread",
    "/threads/{thread_id}/history": "reads a thread's checkpoints",
    "/threads/{thread_id}/state": "writes state as a node would (TurnKit.update_state, its lock)",
    "/threads/{thread_id}/state/checkpoint": "reads a thread's state at a checkpoint",
    # The LangGraph API's assistants and memory store: saved presets and items, no model call.
    "/assistants": "saves an assistant (a config preset of the graph)",
    "/assistants/count": "counts the caller's assistants",
    "/assistants/search": "lists the caller's assistants",
    "/assistants/{assistant_id}/latest": "picks which saved version of a preset is current",
    "/assistants/{assistant_id}/versions": "lists a preset's saved versions",
    "/store/items/search": "searches the caller's memory store items",
    "/store/namespaces": "lists the caller's memory store namespaces",
    "/threads/{thread_id}/runs/{run_id}/cancel": "cancels a LangGraph API run (no model call)",
}
"""POST routes that run no turn, and what they do instead.

Routes that take no POST are not collected at all: the reads (`GET /v1/models`,
`GET /v1/responses/{id}`, its `input_items`, `/agent/threads/...`, the schemas, the
playground), the deletes (`DELETE /v1/responses/{id}`, `DELETE /admin/knowledge/{id}`).
"""

AGENT_ROUTES = ("invoke", "batch", "stream", "stream_events", "stream_log")

ALIASES: dict[str, str] = {
    f"/agent/c/{{config_hash}}/{route}": f"/agent/{route}" for route in AGENT_ROUTES
}
"""LangServe's hidden config routes -> the door route they repeat.

`/agent/c/<config>/<route>` is the same LangServe handler and per-request config modifier as
`/agent/<route>`, with a config packed into the path (the playground's links): it runs the
same turn, so it is driven through its plain route; `test_an_alias_admits_as_its_route`
checks that it goes through the same admission.
"""

# --- the apps -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Apps:
    """The apps the cells share."""

    main: ServedApp
    limited: ServedApp


@pytest.fixture(scope="module")
def apps(_primary: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    """`main` and `limited` (see the module docstring), over the session's fake provider."""
    directory = tmp_path_factory.mktemp("parity")
    prices = priced_provider_file(
        directory / "agent.toml",
        {"openai": (_primary.openai_base_url, DOLLAR_A_TOKEN)},
        {MODEL: ["openai:gpt-parity"]},
    )
    keys = [SecretStr(key(door.name, guard)) for door in DOORS for guard in GUARDS]
    common = {
        "api_keys": keys,
        "admin_api_keys": [SecretStr(ADMIN)],
        "agent_config": prices,
        "provider_max_retries": 0,
        "cache_enabled": False,
        "knowledge_enabled": False,  # no turn here searches it (and PostgreSQL has no pgvector)
    }
    budgets = {
        **{id_of(key(door.name, "token_budget")): {"tokens": 1} for door in DOORS},
        **{id_of(key(door.name, "cost_budget")): {"usd": COST_BUDGET} for door in DOORS},
    }
    with contextlib.ExitStack() as stack:
        shared = {"redis_url": reachable_redis(), "redis_timeout": 5.0}  # a loaded CI machine
        main = serve_app(
            settings_in(
                directory,
                database_url=stack.enter_context(fresh_database()),
                redis_prefix=stack.enter_context(own_redis_prefix()),
                max_messages=MAX_MESSAGES,
                max_request_bytes=MAX_BYTES,
                key_budgets=budgets,
                **shared,
                **common,
            )
        )
        stack.callback(main.stop)
        limited = serve_app(
            settings_in(
                directory.joinpath("limited"),
                redis_prefix=stack.enter_context(own_redis_prefix()),
                rate_limit_rpm=1,
                **shared,
                **common,
            )
        )
        stack.callback(limited.stop)
        yield Apps(main, limited)


@pytest.fixture
def upstream(_primary: FakeUpstream) -> FakeUpstream:
    """The fake provider, reset for this cell; its answers cost 3 + 2 tokens."""
    _primary.reset()
    _primary.default = Reply("ok", usage=(3, 2))
    return _primary


NOT_CANCELLED = (
    "a client that leaves mid-turn does not cancel the run: LangServe's invoke and batch "
    "handlers await it without watching for `http.disconnect` (the /v1 doors' JSON runs go "
    "through `until_disconnect`), so the model call goes on to its end and the thread stays "
    "busy (409 to every door) until then; the streaming routes do cancel"
)

GAPS: dict[tuple[str, str], dict[str, str]] = {}
"""Door x guard -> the forms on which today's door lacks the guard, and what is missing.

Such a cell still runs every form: the others must pass, these must still fail (a gap that
is closed fails the cell until it is taken off this list); then the cell is an xfail.
"""


@pytest.mark.parametrize("guard", GUARDS)
@pytest.mark.parametrize("door", DOORS, ids=[door.name for door in DOORS])
async def test_guard(door: Door, guard: str, apps: Apps, upstream: FakeUpstream) -> None:
    reason = door.not_applicable.get(guard)
    if reason is not None:  # a cell of its own: not applicable, and why
        assert len(reason.split()) >= 5, f"{door.name} x {guard}: say why it does not apply"
        return
    failed: dict[str, str] = {}
    app = apps.limited if guard == "rate_limit" else apps.main
    async with client(app) as http:
        cell = Cell(door, guard, upstream, http)
        for form in door.forms:
            if guard in form.not_applicable:
                continue  # checked by test_every_guard_has_a_check_and_every_reason_a_guard
            try:
                await CHECKS[guard](cell, form)
            except (AssertionError, pytest.fail.Exception) as error:
                failed[form.name] = str(error).strip().splitlines()[0]
    gaps = GAPS.get((door.name, guard), {})
    unexpected = {form: why for form, why in failed.items() if form not in gaps}
    assert not unexpected, f"{door.name} x {guard} fails on: {unexpected}"
    closed = sorted(set(gaps) - set(failed))
    assert not closed, f"{door.name} x {guard}: {closed} pass now: take them off GAPS"
    if gaps:
        pytest.xfail(f"gap on {sorted(gaps)}: {'; '.join(sorted(set(gaps.values())))}")


def test_every_guard_has_a_check_and_every_reason_a_guard() -> None:
    assert set(CHECKS) == set(GUARDS)
    for door in DOORS:
        assert set(door.not_applicable) <= set(GUARDS), door.name
        assert door.holder in door.forms, door.name
        for form in door.forms:
            assert set(form.not_applicable) <= set(GUARDS), form.name
            for guard, reason in form.not_applicable.items():
                assert len(reason.split()) >= 5, f"{form.name} x {guard}: say why"
            assert len(form.not_applicable) < len(GUARDS), f"{form.name}: no guard applies?"
    forms = {(door.name, guard): {f.name for f in door.forms} for door in DOORS for guard in GUARDS}
    for cell, gaps in GAPS.items():
        assert set(gaps) <= forms[cell], cell


# --- enrolment ------------------------------------------------------------------------------


def post_routes(app: FastAPI) -> set[str]:
    """The paths of the app's routes that take a POST (a plain ASGI route takes any method)."""
    return {
        route.path
        for route in iter_route_contexts(app.router.routes)
        if route.path is not None and (route.methods is None or "POST" in route.methods)
    }


def unenrolled(app: FastAPI) -> list[str]:
    """The POST routes neither in the door table nor in the lists of routes without a turn."""
    known = ENROLLED_PATHS | set(NOT_TURNS) | set(ALIASES)
    return sorted(post_routes(app) - known)


def test_every_post_route_is_enrolled(apps: Apps) -> None:
    assert isinstance(apps.main.app, FastAPI)
    missing = unenrolled(apps.main.app)
    assert not missing, (
        f"{missing}: enrol this door in the parity table (and send it through the turn kit); "
        "a route that runs no turn goes in NOT_TURNS, with why"
    )


def test_a_new_post_route_is_not_enrolled(tmp_path: Path) -> None:
    app = create_app(settings_in(tmp_path))

    @app.post("/v1/new_door")
    async def new_door() -> dict[str, str]:
        return {}

    app.mount("/v2", Starlette())  # a mounted app takes any method
    assert unenrolled(app) == ["/v1/new_door", "/v2"]


def test_the_lists_name_routes_that_exist(apps: Apps) -> None:
    assert isinstance(apps.main.app, FastAPI)
    routes = post_routes(apps.main.app)
    for listed in (ENROLLED_PATHS, set(NOT_TURNS), set(ALIASES), set(ALIASES.values())):
        assert listed <= routes, sorted(listed - routes)


@pytest.mark.parametrize("alias", sorted(ALIASES))
async def test_an_alias_admits_as_its_route(alias: str, apps: Apps, upstream: FakeUpstream) -> None:
    packed = LZString.compressToEncodedURIComponent(json.dumps({"configurable": {}}))  # type: ignore[no-untyped-call]
    messages = [{"type": "human", "content": str(n)} for n in range(MAX_MESSAGES + 1)]
    body = (
        {"inputs": [{"messages": messages}]}
        if alias.endswith("/batch")
        else {"input": {"messages": messages}}
    )
    async with client(apps.main) as http:
        response = await http.post(
            alias.replace("{config_hash}", packed),
            json=body,
            headers=bearer(key("agent", "max_messages")),
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "too_many_messages"
    assert upstream.requests == []
