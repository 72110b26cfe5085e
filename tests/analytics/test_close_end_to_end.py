"""The real close job stores guarded aggregates; the recompute command replaces them."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from checkins import services
from tests.checkins.conftest import ensure_library, make_schedule, open_cycle
from tests.checkins.test_close import answer_all
from tests.factories import OrganisationFactory, team_with_members
from wellbeing.models import CycleResult, TeamAggregate, TeamParticipation


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
