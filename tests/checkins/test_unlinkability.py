"""Released responses cannot be linked to submit order (DESIGN.md §4).

1,000 simulated people in 20 teams of 50 submit in a random order; with k = 10 each team's
answers are released in batches of 10 as they arrive.  Within each batch, the rank correlation
between submit order and every order the database reveals — primary key, physical position
(``ctid``) and transaction id (``xmin``) — must look like chance."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection
from scipy import stats

from checkins import services
from checkins.models import Invitation, PendingAnswer, Response
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule, open_cycle
from tests.factories import OrganisationFactory
from wellbeing.models import Membership, Team, User

TEAMS, PER_TEAM, K = 20, 50, 10
# Two-sided 99.9 % critical value of Spearman's rho for n = 10 (exact null distribution).
RHO_CRITICAL_N10 = 0.903


def ctid_key(ctid: str) -> int:
    page, item = ctid.strip("()").split(",")
    return int(page) * 100_000 + int(item)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_released_order_does_not_reveal_submit_order(postgres):
    # Given 1,000 people in 20 teams, k = 10, comments on (the comment carries a test marker)
    weekly_pulse = ensure_library()
    org = OrganisationFactory(anonymity_threshold=K, comment_threshold=K, comments_enabled=True)
    teams = Team.objects.bulk_create(Team(organisation=org, name=f"T{i}") for i in range(TEAMS))
    users = User.objects.bulk_create(
        User(email=f"u{i}@example.test", organisation=org, password="!")
        for i in range(TEAMS * PER_TEAM)
    )
    Membership.objects.bulk_create(
        Membership(user=u, team=teams[i // PER_TEAM], started_on=date(2020, 1, 1))
        for i, u in enumerate(users)
    )
    cycle = open_cycle(make_schedule(organisation=org, teams=teams, survey=weekly_pulse))
    invitations = list(Invitation.objects.filter(cycle=cycle))
    assert len(invitations) == 1000
    stress_id = next(
        q
        for q in invitations[0].question_ids
        if str(q)
        in {
            str(x)
            for x in weekly_pulse.items.filter(question__key="stress-single-item").values_list(
                "question_id", flat=True
            )
        }
    )
    # When they submit in a random order, each release running as soon as a team has k waiting
    order = random.Random(20260302).sample(range(len(invitations)), len(invitations))
    with time_machine.travel(FIRST_OPEN + timedelta(hours=1), tick=False):
        for submit_index, i in enumerate(order):
            invitation = invitations[i]
            services.checkin_submit(
                invitation=invitation, answers={stress_id: 3}, comment=f"s{submit_index:04d}"
            )
            if PendingAnswer.objects.filter(team_id=invitation.team_id).count() >= K:
                services.pending_release(cycle=cycle, team_id=invitation.team_id)
    assert Response.objects.count() == 1000 and PendingAnswer.objects.count() == 0

    # Then within every batch (same team, same release transaction) each stored ordering is
    # uncorrelated with submit order
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT team_id, xmin::text, ctid::text, id::text, comment FROM checkins_response"
        )
        rows = cursor.fetchall()
    batches: dict[tuple[int, str], list[tuple]] = {}
    for team_id, xmin, ctid, pk, comment in rows:
        batches.setdefault((team_id, xmin), []).append((int(comment[1:]), ctid_key(ctid), pk))
    assert len(batches) == TEAMS * PER_TEAM // K  # one transaction id per batch of exactly k
    assert all(len(b) == K for b in batches.values())
    rhos: dict[str, list[float]] = {"pk": [], "ctid": []}
    for batch in batches.values():
        submit = [r[0] for r in batch]
        rhos["ctid"].append(stats.spearmanr(submit, [r[1] for r in batch]).statistic)
        rhos["pk"].append(stats.spearmanr(submit, [r[2] for r in batch]).statistic)
    for name, values in rhos.items():
        # no single batch beyond the 99.9 % critical value more often than chance allows
        # (expected 0.1 of 100; P(>= 3) < 2e-4)
        extreme = sum(abs(r) >= RHO_CRITICAL_N10 for r in values)
        assert extreme <= 2, (name, extreme)
        # aggregated: under H0 each rho has mean 0 and variance 1/(n-1); the mean of 100 is
        # within 3.29 standard errors (99.9 %)
        mean = sum(values) / len(values)
        bound = 3.29 * (1 / (K - 1) / len(values)) ** 0.5
        assert abs(mean) < bound, (name, mean, bound)
    # xmin carries no order at all inside a batch: one value per batch by construction above
