"""A dice-rolling tool for agent-service, shipped as a separate package (a plugin).

Installed next to the service, it is found through the `agent_service.tools` entry point
declared in this package's `pyproject.toml`; the service needs no change to offer it.
"""

from __future__ import annotations

import random

from langchain_core.tools import ToolException, tool

__all__ = ["MAX_DICE", "MAX_SIDES", "roll_dice"]

MAX_DICE = 100
MAX_SIDES = 1000


@tool
def roll_dice(count: int = 1, sides: int = 6, seed: int | None = None) -> str:
    """Roll `count` dice with `sides` sides each and report every roll and the total.

    Args:
        count: How many dice to roll (1 to 100).
        sides: Sides of each die (2 to 1000).
        seed: Makes the roll reproducible; omit it for a fair random roll.

    Raises:
        ToolException: For a count or a number of sides out of range; the service hands
            the message to the model, which can correct itself.
    """
    if not 1 <= count <= MAX_DICE:
        raise ToolException(f"count must be between 1 and {MAX_DICE}, got {count}")
    if not 2 <= sides <= MAX_SIDES:
        raise ToolException(f"sides must be between 2 and {MAX_SIDES}, got {sides}")
    # Dice, not secrets: a seedable PRNG is what makes a roll reproducible on request.
    rng = random.Random(seed)  # noqa: S311
    rolls = [rng.randint(1, sides) for _ in range(count)]
    return f"Rolled {count}d{sides}: {', '.join(map(str, rolls))} (total {sum(rolls)})"
