"""The real close job stores guarded aggregates; the recompute command replaces them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from checkins import services
from checkins.models import Invitation
from checkins.selectors import invitation_questions
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule, open_cycle
from tests.checkins.test_close import answer_all
from tests.factories import MembershipFactory, OrganisationFactory, team_with_members
from wellbeing.models import CycleResult, Membership, TeamAggregate, TeamParticipation


@pytest.fixture
def weekly_pulse(db):
    return ensure_library()


@pytest.fixture
def closed_cycle(weekly_pulse):
    organisation = OrganisationFactory(timezone="Europe/Berlin", anonymity_threshold=5)
    big = team_with_members(organisation=organisation, size=7, name="Big")
    small = team_with_members(organisation=organisation, size=4, name="Small")
    schedule = make_schedule(organisation=organisation, teams=[big, small], survey=weekly_pulse)
    cycle = open_cycle(schedule)
    answer_all(cycle, 11)
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    cycle.refresh_from_db()
    return cycle, big, small


@pytest.mark.django_db
def test_close_job_stores_guarded_aggregates_for_every_team(closed_cycle):
    cycle, big, small = closed_cycle
    # then the cycle's results are stored under its public id
    result = CycleResult.objects.get(cycle_key=cycle.public_id)
    assert result.period_start == cycle.period_start
    # and the small team (four people) has no numbers while the organisation (11) minus the
    # big team (7) would reveal it, so at most one of those two is published
    small_stress = TeamAggregate.objects.get(result=result, team=small, dimension="stress")
    assert not small_stress.published and small_stress.index is None
    big_stress = TeamAggregate.objects.get(result=result, team=big, dimension="stress")
    org_stress = TeamAggregate.objects.get(result=result, team__isnull=True, dimension="stress")
    assert not (big_stress.published and org_stress.published)
    assert TeamParticipation.objects.filter(result=result).count() == 3


@pytest.mark.django_db
def test_recompute_command_replaces_the_cycles_rows_idempotently(closed_cycle):
    cycle, big, _ = closed_cycle
    before = sorted(
        TeamAggregate.objects.filter(result__cycle_key=cycle.public_id).values_list(
            "team_id", "scope", "dimension", "published", "index"
        ),
        key=str,
    )
    out = StringIO()
    # when the command runs twice
    call_command("recompute_aggregates", "--cycle-key", str(cycle.public_id), stdout=out)
    call_command("recompute_aggregates", "--cycle-key", str(cycle.public_id), stdout=out)
    # then the same figures, stored once
    after = sorted(
        TeamAggregate.objects.filter(result__cycle_key=cycle.public_id).values_list(
            "team_id", "scope", "dimension", "published", "index"
        ),
        key=str,
    )
    assert after == before
    assert CycleResult.objects.filter(cycle_key=cycle.public_id).count() == 1
    assert "Recomputed cycle=" in out.getvalue() and "flag_changes=0" in out.getvalue()


@pytest.mark.django_db
def test_recompute_command_refuses_unknown_cycles():
    with pytest.raises(CommandError):
        call_command("recompute_aggregates", "--cycle-key", str(uuid.uuid4()))
    with pytest.raises(CommandError):
        call_command("recompute_aggregates", "--cycle-key", "not-a-uuid")


def _answer_everyone(cycle):
    with time_machine.travel(cycle.opens_at + timedelta(hours=2), tick=False):
        for invitation in Invitation.objects.filter(cycle=cycle):
            answers = {
                q.pk: q.scale_max for q in invitation_questions(invitation=invitation) if q.is_scale
            }
            services.checkin_submit(invitation=invitation, answers=answers, comment=None)


@pytest.mark.django_db
def test_the_close_hides_a_change_of_the_people_it_asked_that_the_memberships_do_not_show(
    weekly_pulse,
):
    # given teams A, B and C of six people, each answering a first cycle
    organisation = OrganisationFactory(timezone="Europe/Berlin", anonymity_threshold=5)
    a, b, c = (team_with_members(organisation=organisation, size=6, name=name) for name in "ABC")
    schedule = make_schedule(organisation=organisation, teams=[a, b, c], survey=weekly_pulse)
    first = open_cycle(schedule)
    _answer_everyone(first)
    assert services.cycle_close(cycle=first, now=first.closes_at) is True
    # when, before the second, a person of A also joins B (staying in A: the invitation goes
    # to their latest team), and a person is entered in B with a start years back
    x = Membership.objects.filter(team=a).order_by("pk").first().user
    MembershipFactory(team=b, user=x, started_on=date(2026, 3, 9))
    MembershipFactory(team=b, started_on=date(2020, 1, 1))
    second = open_cycle(schedule, at=FIRST_OPEN + timedelta(weeks=1))
    assert second.period_start == date(2026, 3, 9)
    _answer_everyone(second)
    assert services.cycle_close(cycle=second, now=second.closes_at) is True

    def stress(team):
        return TeamAggregate.objects.get(
            team=team, dimension="stress", result__cycle_key=second.public_id
        )

    # then A's figure lost one person and B's gained two: neither change is published,
    # although A's memberships did not change and B's new person "was there" at the first cycle
    assert stress(a).published and stress(a).n == 5 and not stress(a).delta_published
    assert stress(b).published and stress(b).n == 8 and not stress(b).delta_published
    # and C, asked the same people twice, publishes its change
    assert stress(c).published and stress(c).delta_published
    # and a recompute of the second cycle decides the same
    call_command("recompute_aggregates", "--cycle-key", str(second.public_id), stdout=StringIO())
    assert not stress(a).delta_published and not stress(b).delta_published
    assert stress(c).delta_published
