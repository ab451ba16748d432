"""Circuit breaker per provider target: a target that keeps failing is skipped for a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class CooldownStore(Protocol):
    """Where failure counts and cooldowns live (in-process here; Redis when shared)."""

    async def is_cooling(self, provider: str) -> bool:
        """True while the provider is cooling down and must be skipped."""
        ...

    async def record_failure(self, provider: str) -> bool:
        """Count a failure; True when this failure started a cooldown."""
        ...

    async def record_success(self, provider: str) -> None:
        """Reset the provider's failure count."""
        ...


@dataclass
class InProcessCooldowns:
    """Consecutive failures per provider; `threshold` in a row cool it for `cooldown` seconds."""

    threshold: int = 3
    cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, int] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    async def is_cooling(self, provider: str) -> bool:
        """True until the cooldown ends; afterwards one trial call is let through."""
        until = self._until.get(provider)
        if until is None:
            return False
        if self.clock() >= until:
            del self._until[provider]
            # Half-open: one more failure cools it down again at once.
            self._failures[provider] = self.threshold - 1
            return False
        return True

    async def record_failure(self, provider: str) -> bool:
        """Count a failure and start a cooldown when the threshold is reached."""
        count = self._failures.get(provider, 0) + 1
        self._failures[provider] = count
        if count >= self.threshold:
            self._until[provider] = self.clock() + self.cooldown
            self._failures[provider] = 0
            return True
        return False

    async def record_success(self, provider: str) -> None:
        """A success closes the breaker."""
        self._failures.pop(provider, None)
        self._until.pop(provider, None)

    def cooling(self) -> list[str]:
        """Providers cooling down now (for readiness reports)."""
        now = self.clock()
        return [name for name, until in self._until.items() if until > now]
