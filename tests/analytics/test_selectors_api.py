"""Dashboard reads and the API: stored figures only, scoped by the policy, no N+1, and never a
number from fewer than k people in any response."""

from __future__ import annotations

import json
import random
from dataclasses import astuple

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tests.analytics.helpers import fixed_input, period, record, team_input
from tests.factories import (
    OrganisationFactory,
    TeamFactory,
    TeamLeadFactory,
    UserFactory,
    team_with_members,
)
from wellbeing import policy
from wellbeing.analytics import DIMENSIONS
from wellbeing.analytics_selectors import (
    HEATMAP_RESULTS,
    flags_for,
    organisation_heatmap,
    team_latest_distribution,
    team_trend,
)
from wellbeing.models import AuditEntry, CycleResult, Flag, Team, TeamAggregate

pytestmark = pytest.mark.django_db

SMALL = [91.3, 92.7, 96.1]  # three people: below k = 5, mean 93.37


def _org_with_history(*, teams: int, cycles: int, seed: int = 3, members_each: int = 0):
    organisation = OrganisationFactory(anonymity_threshold=5)
    department = TeamFactory(organisation=organisation, name="Department")
    members = [
        team_with_members(
            organisation=organisation, parent=department, name=f"Team {i}", size=members_each
        )
        for i in range(teams)
    ]
    rng = random.Random(seed)
    for i in range(cycles):
        record(organisation, i, [team_input(t, rng=rng) for t in members])
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    return organisation, department, members, admin


def _queries(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_team_trend_shows_suppressed_cycles_as_gaps_without_numbers():
    # given a team that was below k in its second cycle
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation)
    record(organisation, 0, [fixed_input(team, stress=[40.0] * 6, invited=8)])
    record(organisation, 1, [fixed_input(team, stress=SMALL, invited=8)])
    record(organisation, 2, [fixed_input(team, stress=[50.0] * 6, invited=8)])
    # when its trend is read
    points = team_trend(team=team, dimension="stress")
    # then three points, oldest first, the middle one a gap
    assert [p.period_start for p in points] == [period(0), period(1), period(2)]
    assert [p.index for p in points] == [40.0, None, 50.0]
    gap = points[1]
    assert not gap.published and gap.n is None and gap.ci_low is None
    assert gap.participation_rate is None
    assert points[0].participation_rate == pytest.approx(0.75)


def test_latest_distribution_is_none_when_the_latest_cycle_is_suppressed():
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation)
    record(organisation, 0, [fixed_input(team, stress=[10, 30, 50, 70, 90])])
    shown = team_latest_distribution(team=team, dimension="stress")
    assert shown is not None and shown.counts == (1, 1, 1, 1, 1) and shown.n == 5
    record(organisation, 1, [fixed_input(team, stress=SMALL)])
    assert team_latest_distribution(team=team, dimension="stress") is None


def test_heatmap_shows_latest_cycle_and_change_for_visible_teams_only():
    organisation, department, members, admin = _org_with_history(teams=3, cycles=2, members_each=12)
    lead = TeamLeadFactory(team=members[0]).user
    # when the admin reads the heatmap
    heatmap = organisation_heatmap(organisation=organisation, user=admin)
    names = [row.name for row in heatmap.rows]
    # then the organisation row comes first, then the department and its teams
    assert names[0] == organisation.name
    assert set(names[1:]) == {"Department", "Team 0", "Team 1", "Team 2"}
    stress = {row.name: row.cells[0] for row in heatmap.rows}
    assert heatmap.dimensions[0] == "stress"
    assert stress["Team 0"].published and stress["Team 0"].index is not None
    # the rosters did not change between the cycles: the change may be shown
    assert stress["Team 0"].change is not None
    # when a lead of one team reads it, they see only that team
    lead_view = organisation_heatmap(organisation=organisation, user=lead)
    assert [row.name for row in lead_view.rows] == ["Team 0"]


def test_heatmap_shows_no_change_between_a_team_with_and_without_its_sub_team():
    # given a team of 12 whose sub-team of 6 is moved out between two cycles: its headline
    # figure covered all 18, then its own 12
    organisation = OrganisationFactory(anonymity_threshold=5)
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    team = team_with_members(organisation=organisation, name="Team", size=12)
    sub = team_with_members(organisation=organisation, name="Sub", parent=team, size=6)
    record(organisation, 0, [fixed_input(team, stress=[40] * 12)])
    record(
        organisation, 1,
        [fixed_input(team, stress=[40] * 12), fixed_input(sub, stress=[90] * 6)],
    )  # fmt: skip
    sub.parent = None
    sub.save(update_fields=["parent"])
    record(organisation, 2, [fixed_input(team, stress=[40] * 12)])
    # then the heatmap shows the team's level but no change from a figure of other people
    heatmap = organisation_heatmap(organisation=organisation, user=admin)
    cell = next(row for row in heatmap.rows if row.name == "Team").cells[0]
    assert cell.published and cell.index == 40.0
    assert cell.change is None


def test_heatmap_shows_a_team_missing_from_the_latest_cycles_at_its_own_latest_two():
    # given a team that had answers in cycles 0 and 1 but none in the two latest cycles
    organisation, department, members, admin = _org_with_history(teams=2, cycles=0, members_each=12)
    active, paused = members
    rng = random.Random(5)
    for i in range(4):
        record(
            organisation,
            i,
            [team_input(active, rng=rng)] + ([team_input(paused, rng=rng)] if i < 2 else []),
        )
    # when the admin reads the heatmap
    with CaptureQueriesContext(connection) as ctx:
        heatmap = organisation_heatmap(organisation=organisation, user=admin)
    rows = {row.name: row for row in heatmap.rows}
    # then the paused team shows cycle 1 with the change since cycle 0, the active one cycle 3
    assert rows["Team 1"].period_start == period(1)
    assert rows["Team 0"].period_start == period(3)
    paused_stress, active_stress = rows["Team 1"].cells[0], rows["Team 0"].cells[0]
    assert paused_stress.published and paused_stress.change is not None
    assert active_stress.published and active_stress.change is not None
    # and the older cycles were read in at most one more query
    assert len(ctx.captured_queries) <= 6


@pytest.mark.parametrize("reader", ["heatmap", "trend", "flags"])
def test_selector_query_counts_do_not_grow_with_teams_and_cycles(reader):
    def count(teams: int, cycles: int) -> int:
        organisation, department, members, admin = _org_with_history(
            teams=teams, cycles=cycles, seed=teams
        )
        admin = type(admin).objects.get(pk=admin.pk)  # a fresh user, as a request would load
        if reader == "heatmap":
            return _queries(lambda: organisation_heatmap(organisation=organisation, user=admin))
        if reader == "trend":
            return _queries(lambda: team_trend(team=department, dimension="stress", cycles=26))
        return _queries(lambda: [f.team.name for f in flags_for(user=admin, states=["open"])])

    small, large = count(2, 2), count(6, 8)
    assert small == large
    assert large <= 6


def test_api_never_returns_a_number_from_fewer_than_k(django_assert_max_num_queries):
    # given a department where one team had only three respondents
    organisation = OrganisationFactory(anonymity_threshold=5)
    department = TeamFactory(organisation=organisation, name="Department")
    small = TeamFactory(organisation=organisation, parent=department, name="Small")
    big = TeamFactory(organisation=organisation, parent=department, name="Big")
    other = TeamFactory(organisation=organisation, name="Other")
    for i in range(3):
        record(
            organisation,
            i,
            [
                fixed_input(small, stress=SMALL, invited=4),
                fixed_input(big, stress=[30.0, 35.0, 40.0, 45.0, 50.0, 55.0], invited=7),
                fixed_input(other, stress=[20.0] * 7, invited=7),
            ],
        )
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    client = APIClient()
    client.force_login(admin)
    # when every analytics endpoint is read
    bodies = []
    with django_assert_max_num_queries(12):
        response = client.get("/api/heatmap/")
    assert response.status_code == 200
    bodies.append(response.json())
    for team in (department, small, big, other):
        response = client.get(f"/api/teams/{team.public_id}/trend/?dimension=stress")
        assert response.status_code == 200
        bodies.append(response.json())
    bodies.append(client.get("/api/flags/?state=all").json())
    text = json.dumps(bodies)
    # then the small team's figures appear nowhere (mean 93.4, its scores, its count)
    for secret in ("93.3", "93.4", "91.3", "92.7", "96.1"):
        assert secret not in text
    small_trend = bodies[2]
    assert all(p["index"] is None and p["n"] is None for p in small_trend["points"])
    # and the department (big + small) cannot be shown next to "big" alone
    department_points = bodies[1]["points"]
    big_points = bodies[3]["points"]
    for dep, b in zip(department_points, big_points, strict=True):
        assert not (dep["published"] and b["published"])


def test_api_hides_teams_and_flags_the_caller_may_not_see():
    organisation = OrganisationFactory(anonymity_threshold=5)
    mine = TeamFactory(organisation=organisation, name="Mine")
    theirs = TeamFactory(organisation=organisation, name="Theirs")
    for i in range(2):
        record(
            organisation,
            i,
            [fixed_input(mine, stress=[70.0] * 6), fixed_input(theirs, stress=[70.0] * 6)],
        )
    lead = TeamLeadFactory(team=mine).user
    client = APIClient()
    client.force_login(lead)
    # then another team's trend is a 404, not a 403
    assert client.get(f"/api/teams/{theirs.public_id}/trend/").status_code == 404
    assert client.get(f"/api/teams/{mine.public_id}/trend/").status_code == 200
    # and the flag list holds only the lead's team
    listed = client.get("/api/flags/").json()["results"]
    assert {f["team_name"] for f in listed} == {"Mine"}
    their_flag = Flag.objects.get(team=theirs, kind="high_stress")
    response = client.post(
        f"/api/flags/{their_flag.public_id}/acknowledge/", {"action_taken": "x"}, format="json"
    )
    assert response.status_code == 404
    # and a bad dimension is a clear 400
    response = client.get(f"/api/teams/{mine.public_id}/trend/?dimension=happiness")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["dimension"]


def test_api_acknowledge_and_dismiss_flags():
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation, name="Desk")
    for i in range(2):
        record(organisation, i, [fixed_input(team, stress=[70.0] * 6)])
    lead = TeamLeadFactory(team=team).user
    client = APIClient()
    client.force_login(lead)
    flag = Flag.objects.get(team=team, kind="high_stress")
    # an empty action is a 400 with the field named
    response = client.post(f"/api/flags/{flag.public_id}/acknowledge/", {}, format="json")
    assert response.status_code == 400
    assert "action_taken" in response.json()["error"]["fields"]
    # acknowledging records the action
    response = client.post(
        f"/api/flags/{flag.public_id}/acknowledge/",
        {"action_taken": "Wellness check-in held", "follow_up_on": "2099-01-01"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "acknowledged"
    # dismissing needs a reason and then closes it
    response = client.post(f"/api/flags/{flag.public_id}/dismiss/", {"reason": ""}, format="json")
    assert response.status_code == 400
    response = client.post(
        f"/api/flags/{flag.public_id}/dismiss/", {"reason": "Planned launch week"}, format="json"
    )
    assert response.status_code == 200 and response.json()["state"] == "dismissed"
    assert client.get("/api/flags/").json()["results"] == []
    assert client.get("/api/flags/?state=dismissed").json()["results"][0]["id"] == str(
        flag.public_id
    )
    # and both actions are in the organisation's audit log, as from the dashboard
    entries = AuditEntry.objects.filter(organisation=organisation).order_by("pk")
    assert [(e.action, e.actor, e.before, e.after) for e in entries] == [
        (
            "flag.acknowledge",
            lead,
            {"state": "open"},
            {
                "state": "acknowledged",
                "action_taken": "Wellness check-in held",
                "follow_up_on": "2099-01-01",
            },
        ),
        (
            "flag.dismiss",
            lead,
            {"state": "acknowledged"},
            {"state": "dismissed", "reason": "Planned launch week"},
        ),
    ]


def _heatmap_by_hand(organisation, team_ids, *, with_organisation):
    """The heatmap's cells the plain way, from every stored row of the last results: per team
    and dimension the primary cell (the subtree's, else the team's) of each result, the latest
    shown with its change since the one before when both sides may be shown (and are of one
    scope)."""
    results = list(
        CycleResult.objects.filter(organisation=organisation).order_by(
            "-period_start", "-closed_at"
        )[:HEATMAP_RESULTS]
    )
    rank = {r.pk: i for i, r in enumerate(results)}
    primary = {}
    for row in TeamAggregate.objects.filter(result__in=results).order_by("scope"):
        key = (row.team_id, row.dimension, rank[row.result_id])
        if key not in primary or row.scope == "subtree":
            primary[key] = row
    rows = {}
    for team_id in [*([None] if with_organisation else []), *team_ids]:
        cells, starts = [], []
        for dimension in DIMENSIONS:
            ranks = sorted(r for (t, d, r) in primary if t == team_id and d == dimension)
            if not ranks:
                cells.append((dimension, False, None, None, None))
                continue
            latest = primary[(team_id, dimension, ranks[0])]
            starts.append(results[ranks[0]].period_start)
            if not latest.published:
                cells.append((dimension, False, None, None, None))
                continue
            previous = primary[(team_id, dimension, ranks[1])] if len(ranks) > 1 else None
            change = None
            if (
                latest.delta_published
                and previous is not None
                and previous.published
                and previous.scope == latest.scope
            ):
                change = round(latest.index - previous.index, 1)
            cells.append((dimension, True, round(latest.index, 1), latest.n, change))
        if starts:
            rows[team_id] = (max(starts), cells)
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_heatmap_equals_the_cells_taken_by_hand_from_every_stored_row(seed):
    # given an organisation whose teams answer some cycles and not others, some of them below
    # k (hidden), with parent teams whose headline is their subtree
    rng = random.Random(seed)
    organisation = OrganisationFactory(anonymity_threshold=5)
    parents = [team_with_members(organisation=organisation, name=f"P{i}", size=6) for i in range(3)]
    teams = parents + [
        team_with_members(
            organisation=organisation, parent=rng.choice(parents), name=f"T{i}", size=10
        )
        for i in range(12)
    ]
    for i in range(16):
        inputs = []
        for team in teams:
            if rng.random() < 0.3 or (team == teams[-1] and i >= 13):
                continue  # no answers this cycle (the last team none in the last three)
            size = rng.choice([3, 6, 9])
            inputs.append(
                team_input(
                    team, rng=rng, invited=size + 2, responded=size,
                    means={"stress": rng.uniform(20, 80), "workload": rng.uniform(20, 80)},
                )
            )  # fmt: skip
        record(organisation, i, inputs)
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    lead = TeamLeadFactory(team=parents[0]).user
    for user, team_ids, with_organisation in (
        (admin, [t.pk for t in sorted(teams, key=lambda t: t.name)], True),
        (lead, sorted(policy.visible_team_ids(lead), key=lambda pk: Team.objects.get(pk=pk).name),
         False),
    ):  # fmt: skip
        # when the heatmap is read
        heatmap = organisation_heatmap(organisation=organisation, user=user)
        # then it shows exactly the cells taken by hand, in the same order
        expected = _heatmap_by_hand(organisation, team_ids, with_organisation=with_organisation)
        assert [row.team_id for row in heatmap.rows] == list(expected)
        for row in heatmap.rows:
            period_start, cells = expected[row.team_id]
            assert row.period_start == period_start
            assert [astuple(cell) for cell in row.cells] == cells
    # and the data had what makes it hard: hidden cells, shown changes, teams whose latest
    # cycle is an older one
    cells = [cell for _, cells in expected.values() for cell in cells]
    assert any(not shown for _, shown, *_ in cells)
    assert any(change is not None for *_, change in cells)
    latest = max(start for start, _ in expected.values())
    assert any(start < latest for start, _ in expected.values())
