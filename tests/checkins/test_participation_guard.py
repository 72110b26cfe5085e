"""Cycle participation as the API and the admins' summary give it: through the anonymity guard
(no total beside which a hidden team's count is the difference), a lead's own teams only, and
nothing live for leads while the cycle is open."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from checkins import services
from checkins.models import Invitation
from checkins.selectors import invitation_questions
from notifications.models import Message
from tests.checkins.conftest import FIRST_OPEN, make_schedule, open_cycle
from tests.factories import TeamFactory, TeamLeadFactory, UserFactory, team_with_members
from wellbeing.models import TeamParticipation

DURING = FIRST_OPEN + timedelta(hours=2)


def answer(invitations) -> None:
    with time_machine.travel(DURING, tick=False):
        for invitation in invitations:
            answers = {
                q.pk: q.scale_min for q in invitation_questions(invitation=invitation) if q.is_scale
            }
            services.checkin_submit(invitation=invitation, answers=answers, comment=None)


def participation(user, cycle) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(f"/api/cycles/{cycle.public_id}/")
    assert response.status_code == 200
    return response.json()["participation"]


@pytest.fixture
def small_beside_published(org, weekly_pulse):
    """Dept (no direct members) over Sub, 6 of 6 answering, and a separate team Small with 2
    of 3: Sub's count is published, Small's is not, so the cycle's total 8 would give Small's
    2 away as 8 - 6."""
    dept = TeamFactory(organisation=org, name="Dept")
    sub = team_with_members(organisation=org, size=6, name="Sub", parent=dept)
    small = team_with_members(organisation=org, size=3, name="Small")
    cycle = open_cycle(make_schedule(organisation=org, teams=[sub, small], survey=weekly_pulse))
    answer(Invitation.objects.filter(cycle=cycle, team=sub))
    answer(Invitation.objects.filter(cycle=cycle, team=small)[:2])
    return cycle, dept


def test_no_total_lets_a_hidden_teams_count_be_subtracted(org, small_beside_published):
    cycle, dept = small_beside_published
    admin = UserFactory(organisation=org, is_org_admin=True)
    dept_lead = TeamLeadFactory(team=dept).user
    # while open, the live total is withheld for the same reason
    assert participation(admin, cycle) == {"invited": 9, "responded": None, "rate": None}

    assert services.cycle_close(cycle=cycle, now=cycle.closes_at)

    stored = TeamParticipation.objects.get(result__cycle_key=cycle.public_id, team=None)
    assert not stored.published  # the guard hid the organisation's figure at close
    cycle.refresh_from_db()
    assert participation(admin, cycle) == {"invited": 9, "responded": None, "rate": None}
    summary = Message.objects.get(kind="cycle_summary", recipient=admin).context
    assert summary["responded"] is None and summary["participation_rate"] is None
    # Dept's lead sees Dept's own published figure, not the organisation's
    assert participation(dept_lead, cycle) == {"invited": 6, "responded": 6, "rate": 1.0}


def test_a_lead_sees_their_own_teams_once_the_cycle_has_closed(org, weekly_pulse):
    alpha = team_with_members(organisation=org, size=6, name="Alpha")
    bravo = team_with_members(organisation=org, size=6, name="Bravo")
    lead = TeamLeadFactory(team=alpha).user
    admin = UserFactory(organisation=org, is_org_admin=True)
    cycle = open_cycle(make_schedule(organisation=org, teams=[alpha, bravo], survey=weekly_pulse))
    invitations = list(Invitation.objects.filter(cycle=cycle, team=alpha).order_by("pk"))
    answer(invitations[:5])
    answer(Invitation.objects.filter(cycle=cycle, team=bravo)[:5])

    # while open: the lead's own invited count, no live count that moves with each submit
    assert participation(lead, cycle) == {"invited": 6, "responded": None, "rate": None}
    answer(invitations[5:])
    assert participation(lead, cycle) == {"invited": 6, "responded": None, "rate": None}
    # the admin follows the live count (every team's is publishable here)
    assert participation(admin, cycle) == {"invited": 12, "responded": 11, "rate": 0.917}

    assert services.cycle_close(cycle=cycle, now=cycle.closes_at)
    cycle.refresh_from_db()

    # once closed: Alpha's published figure, nothing of Bravo's
    assert participation(lead, cycle) == {"invited": 6, "responded": 6, "rate": 1.0}
    assert participation(admin, cycle) == {"invited": 12, "responded": 11, "rate": 0.917}
