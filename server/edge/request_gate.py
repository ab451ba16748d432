"""What a write's headers alone decide: its media type, and whether a browser sent it cross-site.

Read before any byte of the body (`server.edge.sanitize.SanitizeMiddleware` applies them):

* **JSON only.** Every door that takes a body parses it as JSON (LangServe's too, whatever
  the `Content-Type`), so a body must say it is JSON: `application/json` or a
  `application/*+json` type, parameters (`; charset=utf-8`) allowed. Anything else, a missing
  `Content-Type` included, is refused with 415 before the body is read. The clients of every
  door send `application/json` (the openai SDKs, LangServe's `RemoteRunnable` and playground,
  the `mcp` SDK; `curl` needs `-H 'Content-Type: application/json'`, as every example in the
  README has). It also closes the door to a web page's form or `fetch` without a CORS
  preflight: a browser sends those cross-site only as `text/plain`, a form type or no type.
* **No cross-site writes on an open door.** A browser says where a request comes from in
  `Sec-Fetch-Site`; a POST, PUT, PATCH or DELETE marked `cross-site` is refused (403) where
  the door is open (no key configured for it), unless its `Origin` is one `CORS_ORIGINS`
  allows: that is the operator saying that site may call the service. `same-origin`,
  `same-site` and `none` (typed by the user) pass, as do requests without the header (not a
  browser, or one too old to send it: the JSON-only rule still stops its simple requests).
  Where keys are configured they are the guard: a page cannot send an `Authorization`
  header cross-site without a CORS preflight that only `CORS_ORIGINS` pass, and the
  playground's key cookie is `SameSite=Strict` and ignored on a cross-origin write.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from starlette.datastructures import Headers
from starlette.types import Scope

__all__ = ["WRITE_METHODS", "cross_site_refused", "has_body", "is_json", "route_path"]

WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def route_path(scope: Scope) -> str:
    """The path the app's routes match (`/mcp`), without the `root_path` a proxy mounts it at."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "") or ""
    if root and path.startswith(f"{root}/"):
        return path[len(root) :]
    return path


def has_body(headers: Headers) -> bool:
    """Whether the request carries a body: a non-zero `Content-Length`, or a chunked one."""
    length = headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in headers


def is_json(content_type: str | None) -> bool:
    """Whether a `Content-Type` value names JSON (`application/json`, `application/*+json`)."""
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def cross_site_refused(headers: Headers, allowed_origins: Collection[str]) -> bool:
    """Whether a browser sent this write from another site that CORS does not allow.

    Args:
        headers: The request's headers.
        allowed_origins: `CORS_ORIGINS` (`*` allows every origin).
    """
    if headers.get("sec-fetch-site", "").strip().lower() != "cross-site":
        return False
    origin = headers.get("origin")
    return not ("*" in allowed_origins or (origin is not None and origin in allowed_origins))
