"""The over-time rule ("no differencing over time") when the people behind a figure change
without a membership saying so at the earlier cycle: a team moved, created or deleted between
two cycles, a membership entered later with a start in the past, a person asked for another of
their teams.  Each is a change of fewer than k people behind a parent's or a team's figure, and
its change must not be published; with nothing changed it still is."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest

from tests.analytics.helpers import fixed_input, period, record
from tests.factories import MembershipFactory, OrganisationFactory, TeamFactory, UserFactory
from wellbeing import services
from wellbeing.analytics import cycle_results_record
from wellbeing.analytics_selectors import organisation_heatmap
from wellbeing.models import Membership, ResultLayout, TeamAggregate

pytestmark = pytest.mark.django_db

LONG_AGO = period(0) - timedelta(days=30)


def _team_of(organisation, size, **kw):
    team = TeamFactory(organisation=organisation, **kw)
    for _ in range(size):
        MembershipFactory(team=team, started_on=LONG_AGO)
    return team


def _stress(team, i):
    return TeamAggregate.objects.get(
        team=team, dimension="stress", result__period_start=period(i), scope__in=["team", "subtree"]
    )


def _heat_change(organisation, team):
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    heat = organisation_heatmap(organisation=organisation, user=admin)
    return next(r for r in heat.rows if r.team_id == team.pk).cells[0].change


def _two_cycles(organisation, teams_before, teams_after, between):
    """Record cycle 0 for ``teams_before`` (team, stress list), run ``between``, then cycle 1."""
    record(organisation, 0, [fixed_input(t, stress=s, invited=len(s)) for t, s in teams_before])
    between()
    record(organisation, 1, [fixed_input(t, stress=s, invited=len(s)) for t, s in teams_after])


def test_a_team_moved_out_of_a_parent_hides_the_parents_change():
    # given P = A (six people) + T (two people), both with figures in cycle 0
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="P")
    elsewhere = _team_of(organisation, 6, name="Elsewhere")
    a = _team_of(organisation, 6, parent=parent, name="A")
    t = _team_of(organisation, 2, parent=parent, name="T")
    both = [(a, [40.0] * 6), (t, [90.0, 90.0]), (elsewhere, [50.0] * 6)]
    # when T is moved under another team before cycle 1
    _two_cycles(
        organisation,
        both,
        both,
        lambda: services.team_move(team=t, new_parent=elsewhere, actor=None),
    )
    # then P's figure covers 8 people, then 6: its change would give T's two people away
    p0, p1 = _stress(parent, 0), _stress(parent, 1)
    assert p0.published and p0.n == 8 and p1.published and p1.n == 6
    assert not p1.delta_published
    assert _heat_change(organisation, parent) is None


def test_a_team_moved_into_a_parent_hides_the_parents_change():
    # given P = A (six people) and T (two people) under another team
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="P")
    elsewhere = _team_of(organisation, 6, name="Elsewhere")
    a = _team_of(organisation, 6, parent=parent, name="A")
    t = _team_of(organisation, 2, parent=elsewhere, name="T")
    both = [(a, [40.0] * 6), (t, [90.0, 90.0]), (elsewhere, [50.0] * 6)]
    # when T is moved under P before cycle 1
    _two_cycles(
        organisation, both, both, lambda: services.team_move(team=t, new_parent=parent, actor=None)
    )
    # then P's figure covers 6 people, then 8: hidden
    p0, p1 = _stress(parent, 0), _stress(parent, 1)
    assert p0.n == 6 and p1.published and p1.n == 8
    assert not p1.delta_published
    assert _heat_change(organisation, parent) is None


def test_a_team_created_with_people_who_started_earlier_hides_the_parents_change():
    # given P = A (six people) in cycle 0
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="P")
    a = _team_of(organisation, 6, parent=parent, name="A")
    created = {}

    def create_team():
        # a new team under P whose two people are entered with a start in the past
        created["n"] = _team_of(organisation, 2, parent=parent, name="New")

    record(organisation, 0, [fixed_input(a, stress=[40.0] * 6, invited=6)])
    create_team()
    record(
        organisation,
        1,
        [
            fixed_input(a, stress=[40.0] * 6, invited=6),
            fixed_input(created["n"], stress=[90.0, 90.0], invited=2),
        ],
    )
    # then P's figure covers 6 people, then 8: hidden
    p1 = _stress(parent, 1)
    assert _stress(parent, 0).n == 6 and p1.published and p1.n == 8
    assert not p1.delta_published


def test_a_team_first_asked_in_the_later_cycle_hides_the_parents_change():
    # given P = A (six people) + N (two people, long there), only A asked in cycle 0
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="P")
    a = _team_of(organisation, 6, parent=parent, name="A")
    n = _team_of(organisation, 2, parent=parent, name="N")
    _two_cycles(
        organisation,
        [(a, [40.0] * 6)],
        [(a, [40.0] * 6), (n, [90.0, 90.0])],
        lambda: None,
    )
    # then P's figure covers 6, then 8 people: hidden
    p1 = _stress(parent, 1)
    assert _stress(parent, 0).n == 6 and p1.published and p1.n == 8
    assert not p1.delta_published


def test_a_team_deleted_between_cycles_hides_the_parents_change():
    # given P = A (six people) + D (two people)
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="P")
    a = _team_of(organisation, 6, parent=parent, name="A")
    d = _team_of(organisation, 2, parent=parent, name="D")
    # when D is deleted (the Django admin; its memberships go with it) before cycle 1
    _two_cycles(
        organisation,
        [(a, [40.0] * 6), (d, [90.0, 90.0])],
        [(a, [40.0] * 6)],
        d.delete,
    )
    # then P's figure covers 8 people, then 6: hidden
    p1 = _stress(parent, 1)
    assert _stress(parent, 0).n == 8 and p1.published and p1.n == 6
    assert not p1.delta_published


def test_a_backdated_joiner_hides_the_teams_change():
    # given a team of six with figures in cycle 0
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = _team_of(organisation, 6)
    record(organisation, 0, [fixed_input(team, stress=[40.0] * 6, invited=6)])
    # when a seventh person is entered after that cycle with a start months before it
    MembershipFactory(team=team, started_on=LONG_AGO)
    record(organisation, 1, [fixed_input(team, stress=[40.0] * 6 + [90.0], invited=7)])
    # then the change is about one person: hidden
    latest = _stress(team, 1)
    assert latest.published and latest.n == 7
    assert not latest.delta_published
    assert _heat_change(organisation, team) is None


def test_with_the_tree_and_the_people_unchanged_the_change_is_published():
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="P")
    a = _team_of(organisation, 6, parent=parent, name="A")
    t = _team_of(organisation, 6, parent=parent, name="T")
    both = [(a, [40.0] * 6), (t, [60.0] * 6)]
    _two_cycles(organisation, both, [(a, [45.0] * 6), (t, [60.0] * 6)], lambda: None)
    for team in (parent, a, t):
        assert _stress(team, 1).delta_published
    assert TeamAggregate.objects.get(
        team__isnull=True, dimension="stress", result__period_start=period(1)
    ).delta_published
    assert _heat_change(organisation, parent) == pytest.approx(2.5)
    # and the two results keep their layouts
    assert ResultLayout.objects.filter(result__organisation=organisation).count() == 2


def test_a_team_moved_with_at_least_k_people_still_publishes_the_parents_change():
    # given P = A (six people) + T (five people, k = 5)
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="P")
    elsewhere = _team_of(organisation, 6, name="Elsewhere")
    a = _team_of(organisation, 6, parent=parent, name="A")
    t = _team_of(organisation, 5, parent=parent, name="T")
    both = [(a, [40.0] * 6), (t, [90.0] * 5), (elsewhere, [50.0] * 6)]
    # when T moves: five people leave P's figure, five join the other's
    _two_cycles(
        organisation,
        both,
        both,
        lambda: services.team_move(team=t, new_parent=elsewhere, actor=None),
    )
    # then P's change is about k people or more: published
    assert _stress(parent, 1).delta_published
    # and the other team's own group (now beside T under it) kept its six people
    assert TeamAggregate.objects.get(
        team=elsewhere, scope="team", dimension="stress", result__period_start=period(1)
    ).delta_published


def test_the_heatmap_shows_no_change_between_a_teams_figure_and_its_earlier_subtree():
    # given a team E of six with figures in cycle 0; T (two people) is moved under it and asked
    # in cycle 1 only, where E's own group is hidden (it would give T away) and its subtree shown
    organisation = OrganisationFactory(anonymity_threshold=5)
    e = _team_of(organisation, 6, name="E")
    t = _team_of(organisation, 2, name="T")
    record(organisation, 0, [fixed_input(e, stress=[40.0] * 6)])
    services.team_move(team=t, new_parent=e, actor=None)
    record(organisation, 1, [fixed_input(e, stress=[40.0] * 6), fixed_input(t, stress=[90.0] * 2)])
    subtree = TeamAggregate.objects.get(
        team=e, scope="subtree", dimension="stress", result__period_start=period(1)
    )
    assert subtree.published and subtree.n == 8
    services.team_move(team=t, new_parent=None, actor=None)
    record(organisation, 2, [fixed_input(e, stress=[40.0] * 6)])
    # then E's own group in cycle 2 has the same people as in cycle 0, but E had a figure in
    # cycle 1 between them (its subtree, eight people): no change is judged across it ...
    assert _stress(e, 2).published and not _stress(e, 2).delta_published
    # ... and the heatmap, whose previous figure of E is that subtree, shows none
    assert _heat_change(organisation, e) is None
    # and the organisation's figure went from eight people to six: hidden
    assert not TeamAggregate.objects.get(
        team__isnull=True, dimension="stress", result__period_start=period(2)
    ).delta_published


def test_recomputing_an_earlier_cycle_after_a_move_hides_the_later_change_judged_against_it():
    # given P = A (six people) + T (two people) in cycles 0 and 1: P's change is published
    organisation = OrganisationFactory(anonymity_threshold=5)
    parent = TeamFactory(organisation=organisation, name="P")
    elsewhere = _team_of(organisation, 6, name="Elsewhere")
    a = _team_of(organisation, 6, parent=parent, name="A")
    t = _team_of(organisation, 2, parent=parent, name="T")
    inputs = [
        fixed_input(a, stress=[40.0] * 6),
        fixed_input(t, stress=[90.0] * 2),
        fixed_input(elsewhere, stress=[50.0] * 6),
    ]
    record(organisation, 0, inputs)
    record(organisation, 1, inputs)
    assert _stress(parent, 1).delta_published and _stress(parent, 1).n == 8

    def organisation_cell():
        return TeamAggregate.objects.get(
            team__isnull=True, dimension="stress", result__period_start=period(1)
        )

    assert organisation_cell().delta_published
    # when T is moved away and cycle 0 recomputed (it takes today's tree: P is six people)
    services.team_move(team=t, new_parent=elsewhere, actor=None)
    record(organisation, 0, inputs)
    assert _stress(parent, 0).n == 6
    # then cycle 1's change of P, judged against the figure of eight, is hidden
    assert not _stress(parent, 1).delta_published
    assert _heat_change(organisation, parent) is None
    # and the organisation's, with the same teams behind it, still shows
    assert organisation_cell().delta_published


def test_a_result_stored_before_layouts_were_kept_publishes_no_change_since():
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = _team_of(organisation, 6)
    record(organisation, 0, [fixed_input(team, stress=[40.0] * 6, invited=6)])
    ResultLayout.objects.filter(result__organisation=organisation).delete()
    record(organisation, 1, [fixed_input(team, stress=[40.0] * 6, invited=6)])
    assert _stress(team, 1).published and not _stress(team, 1).delta_published


class _Asked:
    """The people asked per cycle, as the check-in close hands them over (its invitations)."""

    def __init__(self):
        self.by_cycle: dict[uuid.UUID, list[tuple[int, int]]] = {}

    def __call__(self, cycle_keys):
        out = {}
        for key in cycle_keys:
            pairs = self.by_cycle.get(key, [])
            out[key] = (
                np.array([team for team, _ in pairs], dtype=np.int64),
                np.array([user for _, user in pairs], dtype=np.int64),
            )
        return out


def _record_asked(organisation, i, asked, pairs, inputs):
    key = uuid.uuid5(uuid.NAMESPACE_URL, f"{organisation.pk}:{i}")
    asked.by_cycle[key] = pairs
    cycle_results_record(
        organisation=organisation,
        cycle_key=key,
        period_start=period(i),
        closed_at=period(i) + timedelta(days=4),  # type: ignore[arg-type]
        teams=inputs,
        rosters=asked,
    )


def test_with_the_people_asked_given_a_person_asked_for_another_team_hides_the_change():
    # given a team A of six and a team B of six; one person of A is also a member of B
    organisation = OrganisationFactory(anonymity_threshold=5)
    a = _team_of(organisation, 6, name="A")
    b = _team_of(organisation, 6, name="B")
    x = Membership.objects.filter(team=a).order_by("pk").first().user
    MembershipFactory(team=b, user=x, started_on=period(1))
    members = {
        team: list(Membership.objects.filter(team=team).values_list("user_id", flat=True))
        for team in (a, b)
    }
    asked = _Asked()
    # cycle 0 asked x for A; cycle 1 for B, their latest team (both memberships still open)
    _record_asked(
        organisation,
        0,
        asked,
        [(a.pk, u) for u in members[a]] + [(b.pk, u) for u in members[b] if u != x.pk],
        [fixed_input(a, stress=[40.0] * 6, invited=6), fixed_input(b, stress=[50.0] * 6)],
    )
    _record_asked(
        organisation,
        1,
        asked,
        [(a.pk, u) for u in members[a] if u != x.pk] + [(b.pk, u) for u in members[b]],
        [fixed_input(a, stress=[40.0] * 5, invited=5), fixed_input(b, stress=[50.0] * 7)],
    )
    # then A lost one person and B gained one: neither change is published, although the
    # memberships say nobody left A
    assert _stress(a, 1).published and not _stress(a, 1).delta_published
    assert _stress(b, 1).published and not _stress(b, 1).delta_published


def test_with_the_people_asked_given_an_erased_person_counts_as_a_leaver():
    # given a team of six asked in cycle 0
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = _team_of(organisation, 6)
    people = list(Membership.objects.filter(team=team).values_list("user_id", flat=True))
    asked = _Asked()
    _record_asked(
        organisation,
        0,
        asked,
        [(team.pk, u) for u in people],
        [fixed_input(team, stress=[40.0] * 6, invited=6)],
    )
    # when one of them is erased: their invitations go with them, in every cycle
    key0 = uuid.uuid5(uuid.NAMESPACE_URL, f"{organisation.pk}:0")
    asked.by_cycle[key0] = [(team.pk, u) for u in people[:5]]
    _record_asked(
        organisation,
        1,
        asked,
        [(team.pk, u) for u in people[:5]],
        [fixed_input(team, stress=[40.0] * 5, invited=5)],
    )
    # then the figure of six against the one of five is still a change of one person: hidden
    assert _stress(team, 1).published and not _stress(team, 1).delta_published


def test_with_the_people_asked_given_and_unchanged_the_change_is_published():
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = _team_of(organisation, 6)
    people = list(Membership.objects.filter(team=team).values_list("user_id", flat=True))
    asked = _Asked()
    for i in range(2):
        _record_asked(
            organisation,
            i,
            asked,
            [(team.pk, u) for u in people],
            [fixed_input(team, stress=[40.0 + i] * 6, invited=6)],
        )
    assert _stress(team, 1).delta_published
