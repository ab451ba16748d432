"""The assistants clients save: named, versioned presets of a graph's config and context.

An assistant of the LangGraph API is a graph with a preset `config` and `context` (here: the
model alias, the system prompt, the tools), a name, a description and metadata. Each change
is a new version (`PATCH /assistants/{id}`); one version is the latest, which runs use and
`GET` shows, and any earlier one can be made the latest again. Every assistant belongs to the
API key that created it (`key_id`): another key's assistant is as absent as an unknown one.

The rows live in the checkpointer's database (`server.stores.assistant_sql`), so every
replica sees the same presets and they survive a restart: PostgreSQL on the checkpointer's
pool, or the SQLite checkpoint file on a connection of its own. `MemoryAssistants` keeps
them in the process (tests, and an `AppState` built without a lifespan).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = [
    "AssistantPatch",
    "AssistantStore",
    "MemoryAssistants",
    "StoredAssistant",
    "now_iso",
]


def now_iso() -> str:
    """The time now, as the API writes it (ISO 8601, UTC)."""
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class StoredAssistant:
    """One version of an assistant (or, from `get`, its latest)."""

    assistant_id: str
    graph_id: str
    version: int
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    name: str
    description: str | None
    created_at: str
    """When the assistant was created (every version keeps it); ISO 8601."""
    updated_at: str
    """When this version was made, or made the latest again; ISO 8601."""


@dataclass(frozen=True)
class AssistantPatch:
    """A change of an assistant: the fields given replace the latest's, metadata merges in."""

    graph_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None

    def apply(self, latest: StoredAssistant, version: int, now: str) -> StoredAssistant:
        """The new version `version` made from `latest` at `now`."""
        return replace(
            latest,
            graph_id=latest.graph_id if self.graph_id is None else self.graph_id,
            config=latest.config if self.config is None else self.config,
            context=latest.context if self.context is None else self.context,
            metadata={**latest.metadata, **(self.metadata or {})},
            name=latest.name if self.name is None else self.name,
            description=latest.description if self.description is None else self.description,
            version=version,
            updated_at=now,
        )


class AssistantStore(Protocol):
    """Where a key's assistants and their versions are kept."""

    async def create(self, key_id: str, record: StoredAssistant) -> bool:
        """Store a new assistant as its version 1; False (nothing stored) if the id is taken."""
        ...

    async def get(self, key_id: str, assistant_id: str) -> StoredAssistant | None:
        """The key's assistant of that id, at its latest version; None if there is none."""
        ...

    async def of_key(self, key_id: str) -> list[StoredAssistant]:
        """Every assistant of the key, at its latest version."""
        ...

    async def update(
        self, key_id: str, assistant_id: str, patch: AssistantPatch
    ) -> StoredAssistant | None:
        """Make a new version from the latest, and make it the latest.

        The new version's number is the highest so far plus one. None if the key has no
        such assistant.
        """
        ...

    async def versions(self, key_id: str, assistant_id: str) -> list[StoredAssistant]:
        """Every version of the key's assistant, newest first (empty: no such assistant)."""
        ...

    async def set_latest(
        self, key_id: str, assistant_id: str, version: int
    ) -> StoredAssistant | None:
        """Make `version` the latest again; None if there is no such assistant or version."""
        ...

    async def delete(self, key_id: str, assistant_id: str) -> bool:
        """Remove the assistant and all its versions; False if there was none."""
        ...


class MemoryAssistants:
    """Assistants in the process: lost at exit, seen by this replica only."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], dict[int, StoredAssistant]] = {}
        self._latest: dict[tuple[str, str], int] = {}

    async def create(self, key_id: str, record: StoredAssistant) -> bool:
        """Store version 1, unless the id is taken."""
        ident = (key_id, record.assistant_id)
        if ident in self._versions:
            return False
        self._versions[ident] = {1: replace(record, version=1)}
        self._latest[ident] = 1
        return True

    async def get(self, key_id: str, assistant_id: str) -> StoredAssistant | None:
        """The latest version."""
        ident = (key_id, assistant_id)
        if ident not in self._versions:
            return None
        return self._versions[ident][self._latest[ident]]

    async def of_key(self, key_id: str) -> list[StoredAssistant]:
        """The key's assistants at their latest versions."""
        return [
            self._versions[ident][version]
            for ident, version in self._latest.items()
            if ident[0] == key_id
        ]

    async def update(
        self, key_id: str, assistant_id: str, patch: AssistantPatch
    ) -> StoredAssistant | None:
        """A new version from the latest."""
        latest = await self.get(key_id, assistant_id)
        if latest is None:
            return None
        ident = (key_id, assistant_id)
        record = patch.apply(latest, max(self._versions[ident]) + 1, now_iso())
        self._versions[ident][record.version] = record
        self._latest[ident] = record.version
        return record

    async def versions(self, key_id: str, assistant_id: str) -> list[StoredAssistant]:
        """Newest first."""
        found = self._versions.get((key_id, assistant_id), {})
        return [found[version] for version in sorted(found, reverse=True)]

    async def set_latest(
        self, key_id: str, assistant_id: str, version: int
    ) -> StoredAssistant | None:
        """Point the latest at `version`."""
        ident = (key_id, assistant_id)
        record = self._versions.get(ident, {}).get(version)
        if record is None:
            return None
        record = replace(record, updated_at=now_iso())
        self._versions[ident][version] = record
        self._latest[ident] = version
        return record

    async def delete(self, key_id: str, assistant_id: str) -> bool:
        """Forget every version."""
        ident = (key_id, assistant_id)
        self._latest.pop(ident, None)
        return self._versions.pop(ident, None) is not None
