"""Security headers: `nosniff` on every response, a Content-Security-Policy on the HTML pages.

Every response says `X-Content-Type-Options: nosniff` (a browser never runs a JSON answer or
a tool's text as a script or a page). Every HTML response says `X-Frame-Options: DENY` (no
other site may frame a page that acts with the caller's key cookie). The two families of
pages get a policy each, which allows exactly the inline `<script>` and `<style>` elements
the page holds, by their SHA-256 (computed from the response itself, so the policy follows
the templates without anyone keeping a list of hashes):

- the thread inspector (`/agent/inspect…`), which has no script at all:
  `default-src 'none'`, its one style element by hash, forms to this origin only;
- LangServe's playground (`/agent/playground/…`, `/agent/c/<config>/playground/…`), a bundled
  React app: its scripts and styles from this origin, its inline configuration script by
  hash, and what the bundle cannot do without: `'unsafe-eval'` (ajv compiles the input
  schema's validators with `new Function`) and inline styles (emotion and MUI insert
  `<style>` elements at run time), images from `data:` URLs (its icons).

A pure ASGI middleware: an HTML page of those paths is held until it is complete (pages are
small, and rendered whole anyway); everything else streams through untouched.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PageHeadersMiddleware", "inline_hashes", "policy_for"]

INSPECTOR_POLICY: Final = (
    "default-src 'none'; style-src {styles}; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PLAYGROUND_POLICY: Final = (
    "default-src 'self'; script-src 'self' {scripts} 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_PLAYGROUND_PATH = re.compile(r"^/agent(?:/c/[^/]+)?/playground(?:/|$)")
_INSPECTOR_PREFIX: Final = "/agent/inspect"
_SRC = re.compile(r"\ssrc\s*=")


def policy_for(path: str) -> str | None:
    """The policy template of the page family `path` belongs to; None for other pages."""
    if path == _INSPECTOR_PREFIX or path.startswith(f"{_INSPECTOR_PREFIX}/"):
        return INSPECTOR_POLICY
    if _PLAYGROUND_PATH.match(path):
        return PLAYGROUND_POLICY
    return None


def _inline(html: str, tag: str) -> Iterator[str]:
    """The text of each inline `<tag>` element (one without `src`), in one pass."""
    opening, closing, start = f"<{tag}", f"</{tag}>", 0
    lowered = html.lower()
    while (begin := lowered.find(opening, start)) != -1:
        head_end = lowered.find(">", begin)
        end = lowered.find(closing, head_end + 1) if head_end != -1 else -1
        if end == -1:
            return
        head = lowered[begin + len(opening) : head_end]
        if (not head or head[0] in " \t\n\r/") and not _SRC.search(head):
            yield html[head_end + 1 : end]
        start = end + len(closing)


def inline_hashes(html: str, tag: str) -> list[str]:
    """CSP sources (`'sha256-…'`) of the page's inline `<script>` or `<style>` elements."""
    hashes = []
    for text in _inline(html, tag):
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        source = f"'sha256-{base64.b64encode(digest).decode()}'"
        if source not in hashes:
            hashes.append(source)
    return hashes


def _policy(template: str, html: str) -> str:
    return template.format(
        scripts=" ".join(inline_hashes(html, "script")),
        styles=" ".join(inline_hashes(html, "style")) or "'none'",
    )


class PageHeadersMiddleware:
    """Adds `nosniff` to every response, and frame and content policies to HTML pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers on the way back."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        template = policy_for(scope["path"])
        held: list[Message] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                html = headers.get("content-type", "").startswith("text/html")
                if html:
                    headers.setdefault("x-frame-options", "DENY")
                if html and template is not None:
                    held.append(message)  # sent once the page is complete, with its policy
                    return
            elif held:
                held.append(message)
                if message.get("more_body", False):
                    return
                await _send_page(held, template or "", send)
                return
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _send_page(messages: list[Message], template: str, send: Send) -> None:
    """The held page's start (with its policy), then its body in one piece."""
    start, parts = messages[0], messages[1:]
    body = b"".join(part.get("body", b"") for part in parts)
    page = body.decode("utf-8", errors="replace")
    MutableHeaders(scope=start)["content-security-policy"] = _policy(template, page)
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
