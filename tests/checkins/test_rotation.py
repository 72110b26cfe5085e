"""Rotation: at most the cap per person, every dimension every cycle, no repeats before every
item of a dimension has been seen, deterministic, and every item covered within a cycle."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkins.rotation import (
    RotationError,
    RotationItem,
    dimension_slots,
    rotation_period,
    rotation_select,
)


def weekly_pulse_items() -> list[RotationItem]:
    layout = [
        ("stress", 1),
        ("wellbeing", 5),
        ("client_burnout", 6),
        ("burnout", 1),
        ("workload", 2),
        ("recovery", 2),
        ("support", 2),
    ]
    items, qid = [], 100
    for dimension, n in layout:
        for _ in range(n):
            items.append(RotationItem(question_id=qid, dimension=dimension))
            qid += 1
    return items


surveys = st.lists(
    st.tuples(
        st.sampled_from(["stress", "wellbeing", "burnout", "workload", "support"]),
        st.integers(min_value=1, max_value=7),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda t: t[0],
).map(
    lambda dims: [
        RotationItem(question_id=1000 * i + j, dimension=d)
        for i, (d, n) in enumerate(dims)
        for j in range(n)
    ]
)


@given(
    items=surveys,
    cap=st.integers(min_value=5, max_value=12),
    cycle_index=st.integers(min_value=0, max_value=500),
    offset=st.integers(0, 10_000),
)
def test_each_person_gets_at_most_the_cap_and_every_dimension(items, cap, cycle_index, offset):
    chosen = rotation_select(items, cap=cap, cycle_index=cycle_index, offset=offset)
    assert len(chosen) <= cap
    assert len(set(chosen)) == len(chosen)
    dims_of = {i.question_id: i.dimension for i in items}
    assert {dims_of[q] for q in chosen} == {i.dimension for i in items}


@given(
    items=surveys,
    cap=st.integers(min_value=5, max_value=12),
    offset=st.integers(0, 10_000),
    start=st.integers(0, 300),
)
def test_consecutive_cycles_show_every_item_of_a_dimension_before_any_repeats(
    items, cap, offset, start
):
    by_dimension: dict[str, list[int]] = {}
    for item in items:
        by_dimension.setdefault(item.dimension, []).append(item.question_id)
    slots = dimension_slots({d: len(ids) for d, ids in by_dimension.items()}, cap)
    shown = [
        set(rotation_select(items, cap=cap, cycle_index=c, offset=offset))
        for c in range(start, start + 40)
    ]
    for d, ids in by_dimension.items():
        if sum(len(v) for v in by_dimension.values()) <= cap:
            continue  # short surveys are shown whole every time
        width = slots[d]
        full_windows = len(ids) // width
        per_cycle = [s & set(ids) for s in shown]
        # no item repeats while fewer than all items have been shown ...
        first = [q for s in per_cycle[:full_windows] for q in s]
        assert len(first) == len(set(first))
        # ... and the next (partial) window completes the set
        rounds = -(-len(ids) // width)
        assert set().union(*per_cycle[:rounds]) == set(ids)


def test_the_selection_is_deterministic_and_keeps_survey_order():
    items = weekly_pulse_items()
    a = rotation_select(items, cap=8, cycle_index=7, offset=3)
    b = rotation_select(items, cap=8, cycle_index=7, offset=3)
    assert a == b
    assert a == sorted(a)  # ids ascend in survey order here
    assert len(a) == 8


def test_offsets_spread_over_the_period_cover_every_item_in_one_cycle():
    # Given the weekly pulse and one person per distinct offset
    items = weekly_pulse_items()
    period = rotation_period(items, 8)
    # When everyone answers cycle 11
    shown = Counter(
        q
        for offset in range(period)
        for q in rotation_select(items, cap=8, cycle_index=11, offset=offset)
    )
    # Then every item is shown to someone, and items of one dimension equally often
    assert set(shown) == {i.question_id for i in items}
    wellbeing = [shown[i.question_id] for i in items if i.dimension == "wellbeing"]
    assert max(wellbeing) == min(wellbeing)


def test_short_surveys_are_shown_whole():
    items = [RotationItem(question_id=i, dimension="wellbeing") for i in range(5)]
    assert rotation_select(items, cap=5, cycle_index=3, offset=2) == [0, 1, 2, 3, 4]
    assert rotation_period(items, 5) == 1


def test_more_dimensions_than_the_cap_is_refused():
    with pytest.raises(RotationError):
        dimension_slots({"a": 1, "b": 1, "c": 1}, 2)


def test_spare_slots_go_to_the_dimensions_with_most_items():
    slots = dimension_slots(
        {
            "stress": 1,
            "wellbeing": 5,
            "client_burnout": 6,
            "burnout": 1,
            "workload": 2,
            "recovery": 2,
            "support": 2,
        },
        8,
    )
    assert sum(slots.values()) == 8
    assert slots["client_burnout"] == 2
    assert all(v >= 1 for v in slots.values())
