"""Tool results that belong to the caller, and so must never reach another caller.

A tool whose output can hold the caller's own data (the knowledge base's passages from the
caller's namespace) says so in its result's artifact: it is built with
`response_format="content_and_artifact"` and returns `(text, scoped_artifact(True))`. The
tools node records it in the turn's `caller_scoped`, and the response cache keeps such an
answer under the caller's own key only, even when answers are shared across keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CALLER_SCOPED", "is_caller_scoped", "scoped_artifact"]

CALLER_SCOPED = "caller_scoped"


def scoped_artifact(scoped: bool) -> dict[str, Any]:
    """The artifact of a tool result that does (or does not) carry the caller's own data."""
    return {CALLER_SCOPED: scoped}


def is_caller_scoped(artifact: object) -> bool:
    """Whether a tool result's artifact says it carries the caller's own data."""
    return isinstance(artifact, Mapping) and artifact.get(CALLER_SCOPED) is True
