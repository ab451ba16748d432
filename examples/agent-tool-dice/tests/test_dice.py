"""The plugin on its own: the tool's contract, and the entry point the service loads."""

from __future__ import annotations

import re
from importlib.metadata import entry_points

import pytest
from agent_tool_dice import roll_dice
from langchain_core.tools import BaseTool, ToolException


def test_a_seeded_roll_is_reproducible_and_in_range() -> None:
    first = roll_dice.invoke({"count": 3, "sides": 6, "seed": 7})
    assert first == roll_dice.invoke({"count": 3, "sides": 6, "seed": 7})
    match = re.fullmatch(r"Rolled 3d6: (\d+), (\d+), (\d+) \(total (\d+)\)", first)
    assert match is not None
    rolls = [int(match.group(i)) for i in (1, 2, 3)]
    assert all(1 <= roll <= 6 for roll in rolls)
    assert sum(rolls) == int(match.group(4))


def test_out_of_range_arguments_are_tool_errors() -> None:
    with pytest.raises(ToolException, match="sides must be between 2 and 1000"):
        roll_dice.invoke({"sides": 1})


def test_the_entry_point_names_the_tool() -> None:
    (entry_point,) = [ep for ep in entry_points(group="agent_service.tools") if ep.name == "dice"]
    loaded = entry_point.load()
    assert isinstance(loaded, BaseTool)
    assert loaded.name == "roll_dice"
