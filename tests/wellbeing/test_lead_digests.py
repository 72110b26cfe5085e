"""``lead_digests`` over a team tree: a lead's sub-teams at every depth, in tree order, each once;
deactivated teams left out; a constant number of queries however many leads and teams."""

from __future__ import annotations

import pytest

from tests.dashboards.conftest import record_history
from tests.factories import TeamFactory, TeamLeadFactory, team_with_members
from wellbeing.digests import lead_digests
from wellbeing.models import CycleResult, Team

pytestmark = pytest.mark.django_db


def tree(organisation, *, roots: int, children: int, grandchildren: int) -> list[Team]:
    """``roots`` top teams ("R0", ...), each over ``children`` ("C0", ...), each over
    ``grandchildren`` ("G0", ...) of five people; the teams that have people."""
    staffed = []
    for r in range(roots):
        root = TeamFactory(organisation=organisation, name=f"R{r}")
        for c in range(children):
            child = team_with_members(organisation=organisation, size=5, name=f"C{c}", parent=root)
            staffed.append(child)
            for g in range(grandchildren):
                staffed.append(
                    team_with_members(organisation=organisation, size=5, name=f"G{g}", parent=child)
                )
    return staffed


def digests(organisation):
    result = CycleResult.objects.get(organisation=organisation)
    return lead_digests(organisation=organisation, cycle_key=result.cycle_key)


def paths(digest) -> list[str]:
    return [team["path"] for team in digest["teams"]]


def test_a_lead_of_a_top_team_reads_every_team_below_it_in_tree_order(organisation):
    staffed = tree(organisation, roots=2, children=2, grandchildren=2)
    lead = TeamLeadFactory(team=Team.objects.get(name="R1"), user__organisation=organisation).user
    record_history(organisation=organisation, teams=staffed, cycles=1)
    assert paths(digests(organisation)[lead.pk]) == [
        "R1",
        "R1 / C0",
        "R1 / C0 / G0",
        "R1 / C0 / G1",
        "R1 / C1",
        "R1 / C1 / G0",
        "R1 / C1 / G1",
    ]


def test_a_lead_of_a_team_and_of_its_sub_team_reads_the_sub_team_once(organisation):
    staffed = tree(organisation, roots=1, children=1, grandchildren=1)
    child, grandchild = staffed
    lead = TeamLeadFactory(team=grandchild, user__organisation=organisation).user
    TeamLeadFactory(team=child, user=lead)
    record_history(organisation=organisation, teams=staffed, cycles=1)
    assert paths(digests(organisation)[lead.pk]) == ["R0 / C0", "R0 / C0 / G0"]


def test_a_deactivated_sub_team_is_left_out_and_its_sub_teams_kept(organisation):
    staffed = tree(organisation, roots=1, children=2, grandchildren=1)
    lead = TeamLeadFactory(team=Team.objects.get(name="R0"), user__organisation=organisation).user
    record_history(organisation=organisation, teams=staffed, cycles=1)
    Team.objects.filter(name="C0").update(is_active=False)
    assert paths(digests(organisation)[lead.pk]) == [
        "R0",
        "R0 / C0 / G0",
        "R0 / C1",
        "R0 / C1 / G0",
    ]


@pytest.mark.parametrize("size", [1, 3])
def test_the_digests_take_six_queries_however_many_leads_and_teams(
    organisation, size, django_assert_num_queries
):
    # given a tree of 3 to 39 teams with a lead on each team
    staffed = tree(organisation, roots=size, children=size, grandchildren=size)
    for team in Team.objects.filter(organisation=organisation):
        TeamLeadFactory(team=team, user__organisation=organisation)
    record_history(organisation=organisation, teams=staffed, cycles=1)
    result = CycleResult.objects.get(organisation=organisation)
    # when the digests are built, then in six queries
    with django_assert_num_queries(6):
        built = lead_digests(organisation=organisation, cycle_key=result.cycle_key)
    assert len(built) == Team.objects.filter(organisation=organisation).count()
