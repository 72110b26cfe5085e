"""Turning item answers into 0-100 indices where 100 is always the worst state.

Every instrument Pulse ships is scored the same way (see ``docs/statistics.md``): each answered
item is mapped linearly onto 0-100, reversed when needed so that higher means worse, and a
respondent's index for a dimension is the mean of the items they answered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._data import is_number


@dataclass(frozen=True)
class ItemScale:
    minimum: int
    maximum: int
    # The item is worded against its instrument (e.g. "I felt calm" in a stress scale).
    reverse: bool
    # On the instrument's own (un-reversed) scale, a higher score is the worse state
    # (True for stress and burnout, False for WHO-5 wellbeing and support).
    higher_is_worse: bool

    def __post_init__(self) -> None:
        if not self.maximum > self.minimum:
            raise ValueError("an item scale needs maximum > minimum")


def item_to_index(value: float, scale: ItemScale) -> float:
    """Map one answer onto 0..100 with 100 = worst; answers outside the scale raise ValueError."""
    if not is_number(value):
        raise ValueError("an answer must be a finite number")
    v = float(value)
    if v < scale.minimum or v > scale.maximum:
        raise ValueError(f"answer {v} is outside the scale {scale.minimum}-{scale.maximum}")
    fraction = (v - scale.minimum) / (scale.maximum - scale.minimum)
    if scale.reverse:
        fraction = 1.0 - fraction
    if not scale.higher_is_worse:
        fraction = 1.0 - fraction
    return 100.0 * fraction


def respondent_index(answers: Sequence[tuple[float | None, ItemScale]]) -> float | None:
    """Mean item index over the items this person answered; None when they skipped them all."""
    indices = [item_to_index(v, scale) for v, scale in answers if is_number(v)]
    if not indices:
        return None
    return math.fsum(indices) / len(indices)
