"""Each dashboard runs the same number of queries however many teams, cycles and flags exist."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.dashboards.conftest import FlagFactory, record_history
from tests.factories import OrganisationFactory, TeamLeadFactory, UserFactory, team_with_members
from wellbeing.models import Flag

pytestmark = pytest.mark.django_db

KINDS = list(Flag.Kind)


def build(*, teams: int, cycles: int, flags: int):
    """An organisation with ``teams`` teams under one parent, ``cycles`` closed cycles, and
    ``flags`` acknowledged flags (with events) on the first team."""
    org = OrganisationFactory(anonymity_threshold=5)
    parent = team_with_members(organisation=org, size=0, name="Customer Care")
    children = [
        team_with_members(organisation=org, size=6, name=f"Tier {i}", parent=parent)
        for i in range(teams)
    ]
    record_history(organisation=org, teams=children, cycles=cycles)
    lead = TeamLeadFactory(team=parent).user
    admin = UserFactory(organisation=org, is_org_admin=True)
    for i in range(flags):
        flag = FlagFactory(
            team=children[0],
            kind=KINDS[i % len(KINDS)],
            state=Flag.State.ACKNOWLEDGED,
            acknowledged_at=timezone.now(),
            action_taken=f"Action {i}",
        )
        flag.events.create(kind="acknowledged", actor=lead, note=f"Action {i}")
    return children[0], parent, lead, admin


def count_queries(client, user, url: str) -> int:
    client.force_login(user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "page",
    ["team", "parent", "you_said", "overview", "export", "landing"],
)
def test_dashboard_query_count_does_not_grow_with_teams_cycles_or_flags(client, page):
    counts = []
    for size in (
        {"teams": 2, "cycles": 3, "flags": 1},
        {"teams": 6, "cycles": 12, "flags": 4},
    ):
        team, parent, lead, admin = build(**size)
        user, url = {
            "team": (lead, f"/dashboards/teams/{team.public_id}/?cycles=52"),
            "parent": (lead, f"/dashboards/teams/{parent.public_id}/"),
            "you_said": (lead, f"/dashboards/teams/{team.public_id}/you-said-we-did/"),
            "overview": (admin, "/dashboards/organisation/"),
            "export": (admin, "/dashboards/organisation/export.csv"),
            "landing": (lead, "/dashboards/"),
        }[page]
        counts.append(count_queries(client, user, url))
    assert counts[0] == counts[1], counts
