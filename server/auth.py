"""API keys: bearer tokens checked against SHA-256 digests; who is calling, for namespacing.

Two kinds of key come from settings, each in clear (`API_KEYS`, `ADMIN_API_KEYS`) or as
digests (`API_KEY_HASHES`, `ADMIN_API_KEY_HASHES`); only the digests are kept.

* Client keys open `/v1` and `/agent`; with no client key configured those doors are open,
  and every caller there is anonymous (one who sends an admin key too).
* Admin keys open the operator routes (`/admin`, and `/metrics`) and, so that an operator
  can try the service with the key they hold, the client doors too (their usage is counted
  under the admin key's id). With no admin key configured, `/admin` takes the client keys
  (open when there are none) and `/metrics` is open: the service behaves as it did before
  admin keys existed, and says so at start.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr

from graph.errors import ErrorCode
from server.refusals import Refused

ANONYMOUS = "anonymous"

KEY_ID_LENGTH = 16
"""Hex characters of a key's digest that name it (in thread ids, metrics, usage, budgets)."""


def digest(key: str) -> str:
    """The SHA-256 hex digest of a key: what is stored and compared."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key_digest: str) -> str:
    """The short, non-secret id of a key: the first `KEY_ID_LENGTH` hex digits of its digest."""
    return key_digest[:KEY_ID_LENGTH]


@dataclass(frozen=True)
class Caller:
    """The authenticated caller.

    Attributes:
        key_id: A short, stable, non-secret id of the key (a digest prefix), or
            `ANONYMOUS` when the service is open. Use it to namespace threads and limits.
        admin: The key is an admin key (`ADMIN_API_KEYS`).
    """

    key_id: str
    admin: bool = False


def _digests(clear: list[str], hashed: list[str]) -> frozenset[str]:
    return frozenset({digest(key) for key in clear} | set(hashed))


class KeySettings(Protocol):
    """The settings a key ring is made from (`server.settings.Settings` has them)."""

    @property
    def api_keys(self) -> list[SecretStr]: ...  # noqa: D102 - as in Settings
    @property
    def api_key_hashes(self) -> list[str]: ...  # noqa: D102
    @property
    def admin_api_keys(self) -> list[SecretStr]: ...  # noqa: D102
    @property
    def admin_api_key_hashes(self) -> list[str]: ...  # noqa: D102


@dataclass(frozen=True)
class KeyRing:
    """The accepted key digests: client keys (empty: open doors) and admin keys."""

    digests: frozenset[str]
    admin_digests: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: KeySettings) -> KeyRing:
        """Digest the clear keys, merge the configured digests."""
        clients = _digests(
            [k.get_secret_value() for k in settings.api_keys], settings.api_key_hashes
        )
        admins = _digests(
            [k.get_secret_value() for k in settings.admin_api_keys],
            settings.admin_api_key_hashes,
        )
        return cls(clients, admins)

    @property
    def open(self) -> bool:
        """True when no client key is configured: every request to `/v1` is let in."""
        return not self.digests

    @property
    def has_admin_keys(self) -> bool:
        """True when admin keys are configured: they alone open `/admin` and `/metrics`."""
        return bool(self.admin_digests)

    def key_ids(self) -> frozenset[str]:
        """The ids of every configured key (`anonymous` too while `/v1` is open)."""
        ids = {key_id(d) for d in self.digests | self.admin_digests}
        return frozenset(ids | {ANONYMOUS}) if self.open else frozenset(ids)

    def caller(self, authorization: str | None) -> Caller:
        """Check an `Authorization` header value for a client door (`/v1`, `/agent`).

        A client key or an admin key; anyone while no client key is configured.

        Raises:
            Refused: `missing_api_key` or `invalid_api_key` (401) for a missing or wrong key.
        """
        if self.open:
            return Caller(ANONYMOUS)
        return self._check(authorization)

    def operator(self, authorization: str | None) -> Caller:
        """Check an `Authorization` header value for an operator route (`/admin`).

        With admin keys configured only they pass; without, the client doors' rule applies.

        Raises:
            Refused: 401 for a missing or wrong key, 403 `permission_denied` for a
                client key where admin keys are required.
        """
        if not self.has_admin_keys:
            return self.caller(authorization)
        caller = self._check(authorization)
        if not caller.admin:
            raise Refused(
                ErrorCode.PERMISSION_DENIED,
                "This route needs an admin key (ADMIN_API_KEYS); the key you sent is a client key.",
            )
        return caller

    def _check(self, authorization: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
                ErrorCode.MISSING_API_KEY,
            )
        candidate = digest(token)
        admin = _find(self.admin_digests, candidate)
        if admin is not None:
            return Caller(key_id(admin), admin=True)
        client = _find(self.digests, candidate)
        if client is None:
            raise _unauthorized("Incorrect API key provided.", ErrorCode.INVALID_API_KEY)
        return Caller(key_id(client))


REALM = "agent-service"
"""The realm of the 401s' `WWW-Authenticate` challenge."""


def _unauthorized(message: str, code: ErrorCode) -> Refused:
    """A 401 in OpenAI's shape, with RFC 6750's challenge.

    `WWW-Authenticate: Bearer realm="agent-service", error="invalid_token",
    error_description="..."`: a bare `Bearer` (no error) tells an MCP client such as the
    MCP Inspector that an OAuth flow could get a token, and it starts one; the error says
    the key itself is what is wrong (a static API key, never an OAuth token).
    """
    challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{message}"'
    return Refused(code, message, headers={"www-authenticate": challenge})


def _find(digests: frozenset[str], candidate: str) -> str | None:
    """The configured digest equal to `candidate`, compared in constant time."""
    return next((d for d in digests if hmac.compare_digest(d, candidate)), None)
