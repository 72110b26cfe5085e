"""The close's release of every team's remainder: one statement on PostgreSQL, the per-team
loop elsewhere; both move everything, and a remainder smaller than k takes the team's earlier
released responses with it (new ids, reshuffled), while larger remainders leave them alone."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from django.db import connection

from checkins import services
from checkins.models import PendingAnswer, Response
from tests.checkins.conftest import ensure_library, make_schedule, open_cycle
from tests.factories import OrganisationFactory
from wellbeing.models import Membership, Team, User

K = 5


@pytest.fixture
def setup(db):
    survey = ensure_library()
    org = OrganisationFactory(anonymity_threshold=K)
    teams = Team.objects.bulk_create(Team(organisation=org, name=f"T{i}") for i in range(3))
    users = User.objects.bulk_create(
        User(email=f"r{i}@example.test", organisation=org, password="!") for i in range(30)
    )
    Membership.objects.bulk_create(
        Membership(user=u, team=teams[i % 3], started_on=date(2020, 1, 1))
        for i, u in enumerate(users)
    )
    cycle = open_cycle(make_schedule(organisation=org, teams=teams, survey=survey))
    big, small, fresh = teams
    # big: 5 released + 6 pending; small: 5 released + 2 pending; fresh: 3 pending, none earlier
    for team, released, pending in ((big, 5, 6), (small, 5, 2), (fresh, 0, 3)):
        Response.objects.bulk_create(
            Response(cycle=cycle, team=team, answers={"q": f"{team.name}-r{i}"})
            for i in range(released)
        )
        PendingAnswer.objects.bulk_create(
            PendingAnswer(cycle=cycle, team=team, answers={"q": f"{team.name}-p{i}"})
            for i in range(pending)
        )
    return cycle, big, small, fresh


@pytest.mark.parametrize("vendor_path", ["statement", "per_team"])
def test_every_remainder_is_released_and_small_ones_are_remixed(setup, vendor_path, monkeypatch):
    cycle, big, small, fresh = setup
    if vendor_path == "statement" and connection.vendor != "postgresql":
        pytest.skip("the one-statement release needs PostgreSQL")
    if vendor_path == "per_team":
        monkeypatch.setattr(connection, "vendor", "per_team_path")
    before = {
        team.pk: set(Response.objects.filter(team=team).values_list("pk", flat=True))
        for team in (big, small)
    }

    released = services.pending_release(cycle=cycle, force=True)

    assert released == 11
    assert not PendingAnswer.objects.filter(cycle=cycle).exists()
    answers = Counter(
        (team_id, a["q"]) for team_id, a in Response.objects.values_list("team_id", "answers")
    )
    expected = Counter(
        [(big.pk, f"T0-r{i}") for i in range(5)]
        + [(big.pk, f"T0-p{i}") for i in range(6)]
        + [(small.pk, f"T1-r{i}") for i in range(5)]
        + [(small.pk, f"T1-p{i}") for i in range(2)]
        + [(fresh.pk, f"T2-p{i}") for i in range(3)]
    )
    assert answers == expected  # nothing lost, nothing doubled, every row kept its team
    after = {
        team.pk: set(Response.objects.filter(team=team).values_list("pk", flat=True))
        for team in (big, small)
    }
    assert before[big.pk] <= after[big.pk]  # k or more waiting: earlier rows untouched
    assert not before[small.pk] & after[small.pk]  # fewer than k: all rewritten with new ids
