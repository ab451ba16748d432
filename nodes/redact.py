"""URLs as logs and status pages may show them: no credentials, no query string.

A URL in a setting can carry a secret in its userinfo (`postgresql://user:password@db/x`,
`redis://:password@cache`) or its query (`https://mcp.example/mcp?token=…`), and a
search URL carries what a user asked. Every URL the service logs or shows (in `/admin/ready`,
in a tool's error, in a provider attempt's detail) goes through `redact_url`, and every
message through `redact_urls`, which also finds the URLs that libraries put in their
exceptions' text (httpx's "… for url '…'"). The log handler applies it to every record
(`server.telemetry.logging`), third parties' included.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_url", "redact_urls"]

# A scheme of at most 32 characters keeps the scan linear in the text's length.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s'\"<>`]+")


def redact_url(url: str) -> str:
    """`url` without its userinfo, query string and fragment (`scheme://host:port/path`).

    Something that does not parse as a URL is replaced by its scheme alone.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme = url.partition("://")[0]
        return f"{scheme}://…" if scheme != url else "…"
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else host + parts.path


def redact_urls(text: str) -> str:
    """`text` with every URL in it redacted (see `redact_url`)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda match: redact_url(match.group(0)), text)
