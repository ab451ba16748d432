"""Fixtures of the server's unit tests: the `/v1` core on the offline model, in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.unit.server.kit import Chat, MakeChat, build_chat


@pytest.fixture
async def make_chat(make_settings: SettingsFactory) -> AsyncIterator[MakeChat]:
    """Build a `Chat` with these settings overrides (the offline model, no network)."""
    made: list[Chat] = []

    def factory(**overrides: Any) -> Chat:
        made.append(build_chat(make_settings(**overrides)))
        return made[-1]

    yield factory
    for chat in made:
        await chat.deps.providers.aclose()


@pytest.fixture
def chat(make_chat: MakeChat) -> Chat:
    """A `Chat` with the default settings: the `offline` alias only."""
    return make_chat()
