"""API keys: bearer tokens checked against SHA-256 digests; who is calling, for namespacing.

Keys come from settings (`API_KEYS` in clear, or `API_KEY_HASHES` as digests); only the
digests are kept. With neither set the service is open, and every caller is anonymous.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from graph.errors import ErrorCode
from server.errors import OpenAIHTTPError
from server.settings import Settings

ANONYMOUS = "anonymous"


def digest(key: str) -> str:
    """The SHA-256 hex digest of a key: what is stored and compared."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Caller:
    """The authenticated caller.

    Attributes:
        key_id: A short, stable, non-secret id of the key (a digest prefix), or
            `ANONYMOUS` when the service is open. Use it to namespace threads and limits.
    """

    key_id: str


@dataclass(frozen=True)
class KeyRing:
    """The accepted key digests; empty means the service is open."""

    digests: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Digest the clear keys, merge the configured digests."""
        clear = {digest(key.get_secret_value()) for key in settings.api_keys}
        return cls(frozenset(clear | set(settings.api_key_hashes)))

    @property
    def open(self) -> bool:
        """True when no key is configured: every request is let in."""
        return not self.digests

    def caller(self, authorization: str | None) -> Caller:
        """Check an `Authorization` header value.

        Raises:
            OpenAIHTTPError: 401 in OpenAI's shape for a missing or wrong key.
        """
        if self.open:
            return Caller(ANONYMOUS)
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise OpenAIHTTPError(
                401,
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
                code=ErrorCode.MISSING_API_KEY,
            )
        candidate = digest(token)
        match = next((d for d in self.digests if hmac.compare_digest(d, candidate)), None)
        if match is None:
            raise OpenAIHTTPError(
                401, "Incorrect API key provided.", code=ErrorCode.INVALID_API_KEY
            )
        return Caller(match[:16])
