"""`/agent/inspect`: the caller's threads and one thread's timeline, as server-rendered HTML.

For the developer debugging in the playground: no front-end build, no JavaScript, the same
API keys as `/agent`. A browser sends its key as `Authorization: Bearer ...`, or signs in
once through the form of the 401 page, which keeps the key in an HttpOnly, SameSite=Strict
cookie for `/agent` (the playground then works with it too: `server.wiring.deps.browser_caller_of`).

A caller sees only its own threads (their stored ids start with its namespace, see
`server.turns.threads`); another key's thread is a 404, like one that does not exist. Thread
contents are untrusted: the templates escape everything (jinja2's autoescape) and every
text is cut at `server.inspector.timeline.TEXT_LIMIT` characters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from server.auth import ANONYMOUS, Caller
from server.errors import status_of
from server.inspector.timeline import build_timeline, clip, message_view, updated_text
from server.refusals import Refused
from server.stores.thread_list import list_threads
from server.turns.history import messages_of, read_history
from server.turns.threads import checked_thread_id, scoped_thread_id, unscoped_thread_id
from server.wiring.deps import KEY_COOKIE, app_state_of, browser_caller_of, same_origin
from server.wiring.state import AppState

__all__ = [
    "FORM_PATHS",
    "HISTORY_LIMIT",
    "PAGE_SIZE",
    "PATH",
    "PlaygroundLink",
    "inspector_router",
]

logger = logging.getLogger(__name__)

PATH: Final = "/agent/inspect"
FORM_PATHS: Final = (f"{PATH}/login", f"{PATH}/logout")
"""The routes that take an HTML form, not JSON (`server.edge.sanitize` lets their bodies pass)."""
PAGE_SIZE: Final = 20
"""Threads per page of the list (`?limit=` up to `MAX_PAGE_SIZE`)."""
MAX_PAGE_SIZE: Final = 200
HISTORY_LIMIT: Final = 200
"""Newest checkpoints of a thread shown by default (`?limit=` up to `MAX_HISTORY_LIMIT`);
older ones are left out, and the page says so. Each checkpoint read is the whole state at
that point, so a page costs checkpoints x messages (about 4 s for 150 turns of 4 messages)."""
MAX_HISTORY_LIMIT: Final = 2000
_COOKIE_PATH: Final = "/agent"
_TEMPLATES: Final = Path(__file__).parent / "templates"

PlaygroundLink = Callable[[str, str], str]
"""The playground's URL on `(thread_id, checkpoint_id)`: where "run from here" leads."""


def _environment() -> Environment:
    """The templates, HTML-escaping every value (thread contents are untrusted)."""
    return Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _namespace(caller: Caller) -> str:
    """The stored-id prefix of the caller's threads (empty for the open service's caller)."""
    return "" if caller.key_id == ANONYMOUS else scoped_thread_id(caller.key_id, "")


def inspector_router(playground_link: PlaygroundLink | None = None) -> APIRouter:
    """The inspector's routes.

    Args:
        playground_link: How to open the playground on a checkpoint (the `/agent` door's
            `server.langserve.routes.playground_link`); None: no such links.
    """
    templates = _environment()
    router = APIRouter(prefix=PATH, tags=["agent inspector"], include_in_schema=False)

    def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = templates.get_template(name).render(path=PATH, **values)
        # The pages show a caller's conversations: no shared cache may keep them.
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def caller_or_page(request: Request) -> Caller | HTMLResponse:
        try:
            return browser_caller_of(request)
        except Refused as error:
            if status_of(error) != 401:
                raise
            return page("login.html", 401, message=error.message, target=request.url.path)

    @router.get("", response_class=HTMLResponse)
    @router.get("/", response_class=HTMLResponse)
    async def threads(
        request: Request,
        before: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
    ) -> Response:
        """The caller's threads, most recently updated first, `limit` per page."""
        caller = caller_or_page(request)
        if isinstance(caller, HTMLResponse):
            return caller
        app = app_state_of(request)
        rows = await list_threads(
            app.checkpointer, prefix=_namespace(caller), limit=limit + 1, before=before or None
        )
        listed = [await _thread_row(app, caller, row.stored_id) for row in rows[:limit]]
        for shown, row in zip(listed, rows, strict=False):
            shown["checkpoints"] = row.checkpoints
            shown["updated"] = updated_text(row.last_checkpoint_id)
        more = rows[limit - 1].last_checkpoint_id if len(rows) > limit else None
        return page(
            "threads.html",
            threads=listed,
            next_before=more,
            limit=limit,
            paged=before is not None,
            signed_in=KEY_COOKIE in request.cookies,
        )

    @router.get("/threads/{thread_id:path}", response_class=HTMLResponse)
    async def thread(
        request: Request,
        thread_id: str,
        limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_LIMIT)] = HISTORY_LIMIT,
    ) -> Response:
        """One thread: its newest `limit` checkpoints as a timeline with branches."""
        caller = caller_or_page(request)
        if isinstance(caller, HTMLResponse):
            return caller
        app = app_state_of(request)
        history: list[Any] = []
        if _storable(thread_id):
            stored = scoped_thread_id(caller.key_id, thread_id)
            history = await read_history(app.graph, app.checkpointer, stored, limit=limit + 1)
        if not history:
            return page("not_found.html", 404, thread_id=thread_id)
        timeline = build_timeline(history[:limit], complete=len(history) <= limit)

        def link(checkpoint_id: str) -> str | None:
            return playground_link(thread_id, checkpoint_id) if playground_link else None

        return page(
            "thread.html",
            thread_id=thread_id,
            timeline=timeline,
            branches=sum(1 for b in timeline.branches() if not b.forks),
            playground=link,
            limit=limit,
            more=min(limit * 4, MAX_HISTORY_LIMIT) if limit < MAX_HISTORY_LIMIT else None,
        )

    @router.post("/login")
    async def login(request: Request) -> Response:
        """Check the key of the login form; keep it in a cookie for `/agent`.

        Only from a page of this origin: another page could otherwise sign the browser in
        with its own key, and read what is then typed into the playground.
        """
        form = await request.form()
        key = str(form.get("key") or "").strip()
        target = str(form.get("target") or PATH)
        if not target.startswith(f"{PATH}") or "//" in target:
            target = PATH  # never redirect away from the inspector
        if not same_origin(request):
            message = "Sign in from this service's own page."
            return page("login.html", 403, message=message, target=target)
        keys = app_state_of(request).keys
        try:
            keys.caller(f"Bearer {key}")
        except Refused as error:
            return page("login.html", 401, message=error.message, target=target)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            KEY_COOKIE,
            key,
            path=_COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        """Forget the key's cookie (only from a page of this origin)."""
        if not same_origin(request):
            return page("login.html", 403, message="Sign out from this service's own page.")
        response = RedirectResponse(PATH, status_code=303)
        response.delete_cookie(KEY_COOKIE, path=_COOKIE_PATH, httponly=True, samesite="strict")
        return response

    return router


def _storable(thread_id: str) -> bool:
    """Whether a door could have stored a thread of this id (see `server.turns.threads`)."""
    try:
        return checked_thread_id(thread_id, "thread_id") == thread_id
    except Refused:
        return False


async def _thread_row(app: AppState, caller: Caller, stored_id: str) -> dict[str, Any]:
    """What the list shows of one thread: its id, messages, and last message."""
    snapshot = await app.graph.aget_state({"configurable": {"thread_id": stored_id}})
    messages = messages_of(snapshot)
    last = message_view(messages[-1]) if messages else None
    return {
        "thread_id": unscoped_thread_id(caller.key_id, stored_id),
        "messages": len(messages),
        "last": last,
        "preview": clip(last.text.text, 160) if last else None,
    }
