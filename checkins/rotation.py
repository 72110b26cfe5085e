"""Which items one person sees in one cycle (pure; no Django).

A weekly pulse may hold more items than anyone should answer in a week.  Each person gets at
most ``cap`` items, with at least one from every dimension, so every dimension is measured for
every respondent in every cycle.  Within a dimension the items rotate: the slot window moves by
its own width each cycle, so for a fixed offset the consecutive cycles walk through every item of
the dimension before any repeats.  The per-invitation random offset spreads people over the
windows so every item is shown to someone each cycle.

The offset is drawn per invitation, not per person: a persistent per-person offset would give
each person a recognisable pattern of answered keys across cycles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class RotationError(ValueError):
    pass


@dataclass(frozen=True)
class RotationItem:
    question_id: int
    dimension: str


def dimension_slots(counts: dict[str, int], cap: int) -> dict[str, int]:
    """How many items of each dimension one person answers: at least one each, the rest of the
    cap shared out to the dimensions with the most unseen items (largest remainder)."""
    if not counts:
        return {}
    if len(counts) > cap:
        raise RotationError(
            f"{len(counts)} dimensions cannot all be measured with at most {cap} items per person"
        )
    slots = dict.fromkeys(counts, 1)
    spare = cap - len(counts)
    while spare > 0:
        # the dimension whose items would take longest to cycle through gets the next slot
        candidates = [d for d in counts if slots[d] < counts[d]]
        if not candidates:
            break
        best = max(candidates, key=lambda d: (counts[d] / slots[d], -list(counts).index(d)))
        slots[best] += 1
        spare -= 1
    return slots


def rotation_period(items: Sequence[RotationItem], cap: int) -> int:
    """Number of distinct offsets that matter (offsets are taken modulo this)."""
    from math import gcd, lcm

    counts = _counts(items)
    if sum(counts.values()) <= cap:
        return 1
    slots = dimension_slots(counts, cap)
    period = 1
    for d, n in counts.items():
        period = lcm(period, n // gcd(n, slots[d]))
    return period


def rotation_select(
    items: Sequence[RotationItem], *, cap: int, cycle_index: int, offset: int
) -> list[int]:
    """Question ids to show, in the survey's order."""
    counts = _counts(items)
    if sum(counts.values()) <= cap:
        return [item.question_id for item in items]
    slots = dimension_slots(counts, cap)
    by_dimension: dict[str, list[int]] = {}
    for item in items:
        by_dimension.setdefault(item.dimension, []).append(item.question_id)
    chosen: set[int] = set()
    for dimension, ids in by_dimension.items():
        width = slots[dimension]
        start = ((cycle_index + offset) * width) % len(ids)
        chosen.update(ids[(start + j) % len(ids)] for j in range(width))
    return [item.question_id for item in items if item.question_id in chosen]


def _counts(items: Sequence[RotationItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.dimension] = counts.get(item.dimension, 0) + 1
    return counts
