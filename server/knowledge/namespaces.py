"""Which namespaces the knowledge base's operators may name (`make ingest`, `/admin/knowledge`).

A namespace is what a search covers besides `shared`: an API key id (16 hex characters, the
id `/admin/usage` shows and threads are keyed by), `anonymous` (the callers of an open
service), or `shared` itself (every caller). Anything else would hold documents no caller
ever searches, so it is refused rather than stored.
"""

from __future__ import annotations

from nodes.tools.knowledge import SHARED_NAMESPACE
from server.auth import ANONYMOUS, KEY_ID_LENGTH

__all__ = ["NAMESPACE_HELP", "parse_namespace"]

NAMESPACE_HELP = (
    f"'{SHARED_NAMESPACE}' (every caller), an API key id ({KEY_ID_LENGTH} hex characters), "
    f"or '{ANONYMOUS}' (the callers of a service without keys)"
)


def parse_namespace(value: str) -> str:
    """The namespace `value` names, in its stored form (lower case).

    Raises:
        ValueError: It is none of `shared`, `anonymous` or a key id.
    """
    text = value.strip().lower()
    if text in (SHARED_NAMESPACE, ANONYMOUS):
        return text
    if len(text) == KEY_ID_LENGTH and all(c in "0123456789abcdef" for c in text):
        return text
    raise ValueError(f"{value!r} is not a namespace: give {NAMESPACE_HELP}")
