"""The generated history keeps each result's layout as a real close would, so the benchmark's
close compares with it (the over-time rule) as production's weekly close does.

A result without a layout publishes no change since it: a generator that wrote none would let
the benchmark measure a close cheaper than production's.  Needs PostgreSQL (the generator COPYs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import numpy as np
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]

PEOPLE = 120


@pytest.fixture
def generated(postgres):
    """A small organisation generated as the benchmark generates one: raw history, 3 weeks."""
    from bench.generate import generate_org

    return generate_org(
        slug="bench-layout",
        people=PEOPLE,
        teams=10,
        weeks=3,
        participation=0.65,
        raw_history=True,
        seed=7,
        now=datetime.now(UTC),
        progress=False,
    )


def _latest_history_result(organisation_id: int):
    from wellbeing.models import CycleResult

    return (
        CycleResult.objects.filter(organisation_id=organisation_id)
        .order_by("-period_start")
        .select_related("layout")
        .first()
    )


def test_history_layout_equals_what_the_real_close_stores_for_the_same_cycle(generated):
    from checkins.models import Cycle
    from checkins.services import cycle_results_hand_over, invited_rosters
    from wellbeing.aggregation import cycle_results_store
    from wellbeing.models import CycleResult, Organisation, ResultLayout, TeamAggregate

    def cells(result_id: int) -> set[tuple]:
        return set(
            TeamAggregate.objects.filter(result_id=result_id).values_list(
                "team_id", "scope", "dimension", "published", "n"
            )
        )

    organisation = Organisation.objects.get(pk=generated["organisation_id"])
    results = CycleResult.objects.filter(organisation=organisation)
    # given the generated history: every result kept a layout, counting the people invited
    assert results.count() == 3
    assert ResultLayout.objects.filter(result__in=results, asked=True).count() == 3
    latest = _latest_history_result(organisation.pk)
    generated_nodes = bytes(latest.layout.nodes)
    assert generated_nodes
    generated_cells = cells(latest.pk)
    # when the product stores that cycle again from its own hand-over and invitations
    cycle = Cycle.objects.get(public_id=latest.cycle_key)
    teams, scores = cycle_results_hand_over(cycle=cycle)
    cycle_results_store(
        organisation=organisation,
        cycle_key=cycle.public_id,
        period_start=cycle.period_start,
        closed_at=cycle.closed_at,
        teams=teams,
        scores=scores,
        rosters=invited_rosters,
    )
    # then its layout is the generated one byte for byte (nodes, cells, parents, direct teams,
    # people), counted from the invitations as well
    stored = ResultLayout.objects.get(result__cycle_key=cycle.public_id)
    assert stored.result_id != latest.pk
    assert stored.asked is True
    assert bytes(stored.nodes) == generated_nodes
    # and its rows are the generated ones (the same teams handed over, the same guard)
    assert cells(stored.result_id) == generated_cells


def test_benchmark_close_compares_with_the_generated_history_and_publishes_changes(generated):
    from checkins.models import Cycle
    from checkins.services import cycle_close
    from wellbeing.aggregation import _LAYOUT_RECORD, _Rosters
    from wellbeing.models import CycleResult, TeamAggregate

    latest = _latest_history_result(generated["organisation_id"])
    earlier_nodes = np.frombuffer(bytes(latest.layout.nodes), dtype=_LAYOUT_RECORD)
    compared = []
    original = _Rosters.delta_publishable

    def spy(self, earlier, people, *, k):
        compared.append((earlier, people))
        return original(self, earlier, people, k=k)

    # when the benchmark's close cycle closes, as bench/run.py closes it
    cycle = Cycle.objects.get(pk=generated["close_cycle"])
    with mock.patch.object(_Rosters, "delta_publishable", spy):
        assert cycle_close(cycle=cycle)
    # then the over-time rule compared with the latest history result: its stored layout, and
    # the people its cycle invited, listed from the invitations (everyone, in their team)
    assert compared
    earlier, (teams, users) = compared[0]
    assert np.array_equal(earlier, earlier_nodes)
    assert users.size == PEOPLE
    assert earlier["people"][earlier["parent"] == -1].tolist() == [PEOPLE]
    # and changes since it are published, as a production close publishes them
    result = CycleResult.objects.get(cycle_key=cycle.public_id)
    rows = TeamAggregate.objects.filter(result=result, published=True)
    assert rows.filter(delta_published=True).exists()
