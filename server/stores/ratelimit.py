"""Requests per minute per API key: a sliding-window counter, in Redis when configured.

The window is the usual two-bucket approximation: the count of the current minute plus the
previous minute's count weighted by how much of it still overlaps the last 60 seconds.
It needs two integers per key and minute, and it never lets a burst of twice the limit
through at a minute boundary the way a fixed window does.

With Redis the counters are shared by every replica (one atomic Lua script per request).
Without Redis, or while it is unreachable, each replica counts on its own: requests keep
being served, and the errors are counted. The subject is the caller's key id; when the
service is open (no API keys) it is the client's address.

A refused request gets a 429 in OpenAI's shape with `Retry-After` and OpenAI's
`x-ratelimit-*-requests` headers, so SDKs back off by themselves.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import ANONYMOUS
from server.settings import Settings
from server.stores.redis import RedisLink

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0

# KEYS: current bucket, previous bucket. ARGV: limit, weight of the previous bucket, expiry ms.
# Returns {allowed (0/1), current count after the call, previous count}.
_SLIDING_WINDOW = """
local curr = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if math.floor(prev * tonumber(ARGV[2])) + curr >= tonumber(ARGV[1]) then
  return {0, curr, prev}
end
curr = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, curr, prev}
"""


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `6m0s`, `1s`, `0.5s`."""
    if seconds >= 60:
        minutes, rest = divmod(math.ceil(seconds), 60)
        return f"{minutes}m{rest}s"
    return f"{round(seconds, 3):g}s"


@dataclass(frozen=True)
class RateDecision:
    """The verdict on one request and what to tell the client about its budget."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    """Allowed: until the current window ends. Refused: until a request would be let in."""

    def headers(self) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*-requests` headers, plus `Retry-After` on a refusal."""
        headers = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": _duration(self.reset_seconds),
        }
        if not self.allowed:
            headers["retry-after"] = str(max(1, math.ceil(self.reset_seconds)))
        return headers


def decide(limit: int, now: float, current: int, previous: int, allowed: bool) -> RateDecision:
    """The decision for counts already updated (`current` includes this request if allowed)."""
    start = math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS
    elapsed = now - start
    weight = (WINDOW_SECONDS - elapsed) / WINDOW_SECONDS
    used = math.floor(previous * weight) + current
    if allowed:
        return RateDecision(True, limit, max(0, limit - used), WINDOW_SECONDS - elapsed)
    if current >= limit:
        # Only the next window can make room; there `current` becomes the weighted bucket.
        wait = WINDOW_SECONDS - elapsed + WINDOW_SECONDS * max(0.0, 1 - limit / current)
    else:
        # Room appears as the previous bucket's weight decays below what is left.
        wait = WINDOW_SECONDS - elapsed - WINDOW_SECONDS * (limit - current) / previous
    return RateDecision(False, limit, 0, max(wait, 0.001))


class InProcessWindow:
    """The same sliding window in this process's memory."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, int], int] = {}

    def hit(self, subject: str, limit: int, now: float) -> RateDecision:
        """Count the request if the window has room."""
        index = math.floor(now / WINDOW_SECONDS)
        if len(self._buckets) > 10_000:  # keep only the two live windows
            self._buckets = {k: v for k, v in self._buckets.items() if k[1] >= index - 1}
        current = self._buckets.get((subject, index), 0)
        previous = self._buckets.get((subject, index - 1), 0)
        weight = 1 - (now - index * WINDOW_SECONDS) / WINDOW_SECONDS
        if math.floor(previous * weight) + current >= limit:
            return decide(limit, now, current, previous, allowed=False)
        self._buckets[subject, index] = current + 1
        return decide(limit, now, current + 1, previous, allowed=True)


class RateLimiter:
    """Counts requests per subject in Redis (shared) or in-process (fallback)."""

    def __init__(
        self,
        settings: Settings,
        redis: RedisLink | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = settings.rate_limit_rpm
        self._redis = redis
        self._clock = clock
        self._local = InProcessWindow()
        self._script = redis.client.register_script(_SLIDING_WINDOW) if redis else None
        self.redis_errors = 0
        """Checks that fell back to in-process counting because Redis failed."""
        self.refused = 0

    @property
    def enabled(self) -> bool:
        """False when RATE_LIMIT_RPM is 0."""
        return self.limit > 0

    async def hit(self, subject: str) -> RateDecision:
        """Count one request of `subject`, unless it is over the limit."""
        now = self._clock()
        decision = await self._redis_hit(subject, now)
        if decision is None:
            decision = self._local.hit(subject, self.limit, now)
        if not decision.allowed:
            self.refused += 1
        return decision

    async def _redis_hit(self, subject: str, now: float) -> RateDecision | None:
        redis, script = self._redis, self._script
        if redis is None or script is None or not redis.usable:
            return None
        index = math.floor(now / WINDOW_SECONDS)
        weight = 1 - (now - index * WINDOW_SECONDS) / WINDOW_SECONDS
        keys = [
            redis.key("ratelimit", subject, str(index)),
            redis.key("ratelimit", subject, str(index - 1)),
        ]
        expiry_ms = int(WINDOW_SECONDS * 2 * 1000) + 1000
        try:
            args: list[str | int] = [self.limit, repr(weight), expiry_ms]
            allowed, current, previous = await script(keys=keys, args=args)
        except redis.error_types as error:
            redis.failed(error)
            self.redis_errors += 1
            return None
        redis.succeeded()
        return decide(self.limit, now, int(current), int(previous), allowed=bool(allowed))


def subject_of(request: Request, key_id: str) -> str:
    """Who the limit counts: the API key, or the client's address on an open service."""
    if key_id != ANONYMOUS:
        return f"key:{key_id}"
    host = request.client.host if request.client else "unknown"
    return f"addr:{host}"


def over_limit_message(decision: RateDecision) -> str:
    """What a 429 says: the limit, and when to try again (as OpenAI words it)."""
    return (
        f"Rate limit reached for requests: limit {decision.limit} per minute. "
        f"Please try again in {_duration(decision.reset_seconds)}."
    )


class RateLimitHeaders:
    """Pure ASGI middleware: puts the `x-ratelimit-*` headers on allowed responses too.

    The dependency can't: the routes return their own Response objects (JSON or SSE),
    which ignore headers set on FastAPI's injected response. It leaves its decision in the
    request state, and this adds it when the response starts.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap `send` for HTTP requests."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = scope.get("state", {}).get("rate_limit")
                if isinstance(decision, RateDecision) and decision.allowed:
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
