"""Aggregates stored at cycle close: hand-computed values, rollups, the guard at store time,
idempotent recompute, and bad input that must not stop the other teams."""

from __future__ import annotations

import math
import random
import statistics
import uuid
from datetime import timedelta

import pytest
from django.db import connection

from tests.analytics.helpers import fixed_input, period, record, team_input
from tests.factories import MembershipFactory, OrganisationFactory, TeamFactory
from wellbeing import flags as flags_module
from wellbeing import services
from wellbeing.analytics import TeamCycleInput
from wellbeing.models import (
    CycleResult,
    DetectionColumns,
    Team,
    TeamAggregate,
    TeamParticipation,
)

pytestmark = pytest.mark.django_db


def _cell(team, dimension="stress", scope=None):
    rows = TeamAggregate.objects.filter(team=team, dimension=dimension)
    if scope:
        rows = rows.filter(scope=scope)
    return rows.get()


def _org_cell(organisation, dimension="stress"):
    return TeamAggregate.objects.get(
        result__organisation=organisation, team__isnull=True, dimension=dimension
    )


def test_team_aggregate_matches_hand_computed_values():
    # given a team of six answering 10, 20, ..., 60 on stress (k = 5)
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation)
    # when the cycle is stored
    record(organisation, 0, [fixed_input(team, stress=[10, 20, 30, 40, 50, 60], invited=8)])
    # then mean 35, sd = sqrt(1750 / 5) = 18.708, t(0.975, 5) = 2.5706 -> half-width 19.633
    cell = _cell(team)
    assert cell.published and cell.scope == "team"
    assert cell.n == 6
    assert cell.index == pytest.approx(35.0)
    assert cell.sd == pytest.approx(math.sqrt(1750 / 5), abs=0.01)
    assert cell.ci_low == pytest.approx(35.0 - 19.633, abs=0.01)
    assert cell.ci_high == pytest.approx(35.0 + 19.633, abs=0.01)
    # buckets of 20 points: [0,20) [20,40) [40,60) [60,80) [80,100]
    assert cell.distribution == [1, 2, 2, 1, 0]
    participation = TeamParticipation.objects.get(team=team)
    assert (participation.invited, participation.responded) == (8, 6)
    assert participation.rate == pytest.approx(0.75)


def test_parent_and_organisation_rows_cover_the_whole_subtree():
    # given a department with direct members and two sub-teams
    organisation = OrganisationFactory(anonymity_threshold=5)
    department = TeamFactory(organisation=organisation, name="Department")
    alpha = TeamFactory(organisation=organisation, parent=department, name="Alpha")
    beta = TeamFactory(organisation=organisation, parent=department, name="Beta")
    other = TeamFactory(organisation=organisation, name="Other")
    direct = [50, 50, 50, 50, 50, 50]
    a_scores = [10, 20, 30, 40, 50]
    b_scores = [60, 70, 80, 90, 100]
    o_scores = [0, 0, 0, 0, 0]
    # when the cycle is stored
    record(
        organisation,
        0,
        [
            fixed_input(department, stress=direct, invited=6),
            fixed_input(alpha, stress=a_scores, invited=10),
            fixed_input(beta, stress=b_scores, invited=5),
            fixed_input(other, stress=o_scores, invited=5),
        ],
    )
    # then the department's subtree row is the mean over all 16 respondents below it
    subtree = _cell(department, scope="subtree")
    assert subtree.n == 16
    assert subtree.index == pytest.approx(statistics.fmean(direct + a_scores + b_scores))
    # and its direct members are their own cell
    own = _cell(department, scope="team")
    assert own.n == 6 and own.index == pytest.approx(50)
    # and the organisation row covers everyone
    org = _org_cell(organisation)
    assert org.scope == "organisation" and org.n == 21
    assert org.index == pytest.approx(statistics.fmean(direct + a_scores + b_scores + o_scores))
    # and participation rolls up the same way
    rolled = TeamParticipation.objects.get(team=department, scope="subtree")
    assert (rolled.invited, rolled.responded) == (21, 16)
    org_part = TeamParticipation.objects.get(result__organisation=organisation, team__isnull=True)
    assert (org_part.invited, org_part.responded) == (26, 21)


def test_team_below_k_is_stored_without_any_number():
    # given k = 5 and a team where only four answered
    organisation = OrganisationFactory(anonymity_threshold=5)
    small = TeamFactory(organisation=organisation)
    big = TeamFactory(organisation=organisation)
    # when stored
    record(
        organisation,
        0,
        [fixed_input(small, stress=[90, 95, 99, 100]), fixed_input(big, stress=[10] * 8)],
    )
    # then the small team's cell is suppressed and carries nothing, not even n
    cell = _cell(small)
    assert cell.suppressed
    assert (cell.n, cell.index, cell.sd, cell.ci_low, cell.ci_high, cell.distribution) == (
        None,
        None,
        None,
        None,
        None,
        None,
    )
    part = TeamParticipation.objects.get(team=small)
    assert not part.published and part.responded is None and part.rate is None
    # and the organisation figure (12 people) would reveal it as org - big, so the guard hides
    # a complementary cell: never both the organisation and the big team
    assert not (_org_cell(organisation).published and _cell(big).published)


def test_parent_whose_only_hidden_child_is_recoverable_is_suppressed():
    # given a parent with no direct members, one child of 6 and one of 2 (k = 5)
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="Parent")
    visible = TeamFactory(organisation=organisation, parent=parent, name="Visible")
    hidden = TeamFactory(organisation=organisation, parent=parent, name="Hidden")
    sibling = TeamFactory(organisation=organisation, name="Sibling")
    # when stored
    record(
        organisation,
        0,
        [
            fixed_input(visible, stress=[20] * 6),
            fixed_input(hidden, stress=[90, 90]),
            fixed_input(sibling, stress=[30] * 10),
        ],
    )
    # then "parent minus visible child" must not isolate the two: one of them is suppressed
    parent_cell = _cell(parent, scope="subtree")
    visible_cell = _cell(visible)
    assert not _cell(hidden).published
    assert not (parent_cell.published and visible_cell.published)
    # and whatever is suppressed has no numbers stored
    for cell in TeamAggregate.objects.filter(published=False):
        assert cell.index is None and cell.n is None and cell.distribution is None
    # and every published subtraction leaves 0 or >= k people
    published = {c.team_id: c.n for c in TeamAggregate.objects.filter(published=True)}
    if parent.pk in published:
        rest = published[parent.pk] - published.get(visible.pk, 0) - published.get(hidden.pk, 0)
        assert rest == 0 or rest >= 5


def test_storing_the_same_cycle_again_replaces_its_rows():
    # given a stored cycle
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation)
    key = uuid.uuid4()
    record(organisation, 0, [fixed_input(team, stress=[10] * 6)], cycle_key=key)
    # when it is recomputed with corrected data, twice
    record(organisation, 0, [fixed_input(team, stress=[30] * 6)], cycle_key=key)
    changes = record(organisation, 0, [fixed_input(team, stress=[30] * 6)], cycle_key=key)
    # then one result with the new figures, no duplicates, and no second round of alerts
    assert CycleResult.objects.filter(cycle_key=key).count() == 1
    assert TeamAggregate.objects.filter(team=team).count() == 1
    assert _cell(team).index == pytest.approx(30)
    assert TeamParticipation.objects.filter(team=team).count() == 1
    assert changes == []
    if connection.vendor == "postgresql":  # the packed copy the close reads follows the rows
        result = CycleResult.objects.get(cycle_key=key)
        history = flags_module._History.load([result], flags_module.DETECTION_DIMENSIONS)
        assert DetectionColumns.objects.filter(result=result).exists()
        assert history.dims["stress"]["index"].tolist() == [[pytest.approx(30)]]


def test_a_results_rows_go_with_it_or_their_team_and_nowhere_else():
    # given two stored cycles of two teams (rows refer to both without database constraints)
    organisation = OrganisationFactory(anonymity_threshold=5)
    team, other = TeamFactory(organisation=organisation), TeamFactory(organisation=organisation)
    first, second = uuid.uuid4(), uuid.uuid4()
    for index, key in enumerate((first, second)):
        inputs = [fixed_input(team, stress=[10] * 6), fixed_input(other, stress=[20] * 6)]
        record(organisation, index, inputs, cycle_key=key)
    # when the first result is deleted, and then a team
    CycleResult.objects.get(cycle_key=first).delete()
    other.delete()
    # then their rows are gone with them, the rest stay, and no row is left without either
    for model in (TeamAggregate, TeamParticipation):
        assert set(model.objects.values_list("result__cycle_key", flat=True)) == {second}
        assert model.objects.filter(team=team).exists()
        assert not model.objects.exclude(result_id__in=CycleResult.objects.values("pk")).exists()
        assert (
            not model.objects.filter(team__isnull=False)
            .exclude(team_id__in=Team.objects.values("pk"))
            .exists()
        )


def test_corrupted_team_input_does_not_stop_the_other_teams(caplog):
    # given one team whose hand-over is corrupt and one that is fine
    organisation = OrganisationFactory(anonymity_threshold=5)
    broken = TeamFactory(organisation=organisation)
    fine = TeamFactory(organisation=organisation)
    foreign = TeamFactory()  # another organisation's team
    bad = TeamCycleInput(
        team_id=broken.pk, invited=10, responded=6, scores={"stress": [10, 20, 150.5, 40, 50, 60]}
    )
    worse = TeamCycleInput(team_id=fine.pk + 10_000, invited=1, responded=1, scores={})
    # when stored
    record(
        organisation,
        0,
        [
            bad,
            worse,
            fixed_input(foreign, stress=[1] * 6),
            fixed_input(fine, stress=[40] * 6),
        ],
    )
    # then the fine team is stored, the broken and foreign ones left out, and the log names the
    # rule broken but never a score
    assert _cell(fine).published and _cell(fine).index == pytest.approx(40)
    assert not TeamAggregate.objects.filter(team__in=[broken, foreign]).exists()
    assert "rejected" in caplog.text and "150.5" not in caplog.text


def test_missing_and_nan_scores_are_dropped_not_fatal():
    # given NaN and None among the scores, a skipped dimension and an empty team
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation)
    empty = TeamFactory(organisation=organisation)
    messy = TeamCycleInput(
        team_id=team.pk,
        invited=10,
        responded=7,
        scores={"stress": [10, float("nan"), None, 20, 30, 40, 50], "workload": []},  # type: ignore[list-item]
    )
    # when stored
    record(organisation, 0, [messy, TeamCycleInput(team_id=empty.pk, invited=6, responded=0)])
    # then the five finite scores are summarised
    cell = _cell(team)
    assert cell.n == 5 and cell.index == pytest.approx(30)
    assert not TeamAggregate.objects.filter(dimension="workload", published=True).exists()
    # and the empty team has a suppressed participation row and no figures
    assert not TeamParticipation.objects.get(team=empty).published


def test_cycle_with_no_responses_stores_only_suppressed_rows():
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation)
    changes = record(organisation, 0, [TeamCycleInput(team_id=team.pk, invited=9, responded=0)])
    assert changes == []
    assert not TeamAggregate.objects.filter(result__organisation=organisation).exists()
    assert TeamParticipation.objects.get(team=team).invited == 9


def test_change_since_last_cycle_is_hidden_when_fewer_than_k_people_joined():
    # given a team of 8 members with figures in two cycles
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation)
    for _ in range(8):
        MembershipFactory(team=team, started_on=period(0))
    rng = random.Random(1)
    record(organisation, 0, [team_input(team, rng=rng, invited=8, responded=6)])
    record(organisation, 1, [team_input(team, rng=rng, invited=8, responded=6)])
    # then with an unchanged roster the change may be shown
    latest = TeamAggregate.objects.get(
        team=team, dimension="stress", result__period_start=period(1)
    )
    assert latest.delta_published
    # when one person joins before the third cycle
    MembershipFactory(team=team, started_on=period(2))
    record(organisation, 2, [team_input(team, rng=rng, invited=9, responded=6)])
    # then the change would be about one person: hidden
    third = TeamAggregate.objects.get(team=team, dimension="stress", result__period_start=period(2))
    assert third.published and not third.delta_published


def test_change_is_hidden_when_one_person_left_and_was_deactivated():
    # given a team of six with figures in one cycle
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation)
    members = [MembershipFactory(team=team, started_on=period(0)) for _ in range(6)]
    record(organisation, 0, [fixed_input(team, stress=[40, 40, 40, 40, 40, 90], invited=6)])
    # when one of them leaves the company the usual way (their account deactivated)
    services.person_deactivate(
        person=members[-1].user, actor=None, ended_on=period(1) - timedelta(days=1)
    )
    record(organisation, 1, [fixed_input(team, stress=[40, 40, 40, 40, 40], invited=5)])
    # then the change is about one person: hidden, as for a membership that just ended
    latest = TeamAggregate.objects.get(
        team=team, dimension="stress", result__period_start=period(1)
    )
    assert latest.published and not latest.delta_published


def test_the_flag_step_is_given_the_cycles_figures_as_stored(monkeypatch):
    # given a parent with a hidden child, a customer-facing team and a team below k
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="Parent")
    children = [
        TeamFactory(organisation=organisation, parent=parent, name="Big"),
        TeamFactory(organisation=organisation, parent=parent, name="Small"),
        TeamFactory(organisation=organisation, name="Desk", customer_facing=True),
        TeamFactory(organisation=organisation, name="Tiny"),
    ]
    given = []
    compute = flags_module.FlagStep.compute

    def keep(step):
        given.append(step.current)
        return compute(step)

    monkeypatch.setattr(flags_module.FlagStep, "compute", keep)
    # when a cycle with figures of every kind is stored
    record(
        organisation,
        0,
        [
            TeamCycleInput(children[0].pk, 12, 6, {"stress": [20, 30, 40, 50, 60, 70]}),
            TeamCycleInput(children[1].pk, 4, 2, {"stress": [90, 80]}),
            TeamCycleInput(
                children[2].pk, 9, 6,
                {"stress": [10, 15, 20, 25, 30], "client_burnout": [50, 60, 70, 80, 90, 55]},
            ),
            TeamCycleInput(children[3].pk, 0, 0, {}),
        ],
    )  # fmt: skip
    # then the columns the flag step computed from are those read back from the stored rows
    result = CycleResult.objects.get()
    (agg, part), read = (
        given[0],
        flags_module._history_columns_orm([result.pk], flags_module.DETECTION_DIMENSIONS),
    )

    def rows(columns, keys):
        return sorted(
            tuple(
                None if isinstance(v, float) and math.isnan(v) else v
                for v in (columns[k][i].item() for k in keys)
            )
            for i in range(len(columns["team"]))
        )

    agg_keys = ("result", "team", "subtree", "dim", "published", "n", "index", "sd")
    part_keys = ("result", "team", "subtree", "published", "rate")
    assert rows(agg, agg_keys) == rows(read[0], agg_keys)
    assert rows(part, part_keys) == rows(read[1], part_keys)
    assert any(agg["published"]) and not all(agg["published"])
    for name, column in read[0].items():
        assert agg[name].dtype == column.dtype, name


@pytest.mark.skipif(connection.vendor != "postgresql", reason="packed columns: PostgreSQL")
def test_the_closes_packed_columns_are_those_packed_from_the_stored_rows():
    import numpy as np

    # given a cycle with published, hidden, subtree and customer-facing figures, stored by a
    # close, which packs the flag window's columns from the figures it has in hand
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="Parent")
    big = TeamFactory(organisation=organisation, parent=parent, name="Big")
    small = TeamFactory(organisation=organisation, parent=parent, name="Small")
    desk = TeamFactory(organisation=organisation, name="Desk", customer_facing=True)
    record(
        organisation,
        0,
        [
            TeamCycleInput(big.pk, 12, 6, {"stress": [20, 30, 40, 50, 60, 71.5]}),
            TeamCycleInput(small.pk, 4, 2, {"stress": [90, 80]}),
            TeamCycleInput(
                desk.pk, 9, 6,
                {"stress": [10, 15, 20, 25, 30, 35], "client_burnout": [50, 60, 70, 80, 90, 5]},
            ),
        ],
    )  # fmt: skip
    result = CycleResult.objects.get()

    def packed():
        stored = DetectionColumns.objects.get(result=result)
        return [
            sorted(np.frombuffer(bytes(value), dtype=dtype).tolist(), key=repr)
            for value, dtype in (
                (stored.aggregates, flags_module._AGGREGATE_RECORD),
                (stored.participation, flags_module._PARTICIPATION_RECORD),
            )
        ]

    from_figures = packed()
    # when the same result is packed again from its stored rows, by PostgreSQL
    flags_module.detection_columns_store([result.pk])
    # then both hold the same records, NaN for every figure not published
    from_rows = packed()
    assert repr(from_figures) == repr(from_rows)
    # a row per team (the parent's is its subtree) and dimension, and per team for participation
    assert len(from_figures[0]) == 2 * 4 and len(from_figures[1]) == 4
