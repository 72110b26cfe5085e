"""Fixtures for the check-in tests: the shipped library, a schedule, an opened cycle."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
import time_machine

from checkins import services
from checkins.library import library_install
from checkins.models import Cycle, Question, Survey, SurveyItem
from tests.factories import OrganisationFactory, team_with_members

# Monday 2026-03-02 09:00 Europe/Berlin (CET) is 08:00 UTC.
FIRST_OPEN = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def ensure_library() -> Survey:
    """The shipped library (re-installed if a transactional test flushed the tables)."""
    library_install(version=1, question_model=Question, survey_model=Survey, item_model=SurveyItem)
    return Survey.objects.get(organisation__isnull=True, key="weekly-pulse", is_current=True)


@pytest.fixture
def weekly_pulse(db) -> Survey:
    return ensure_library()


def make_schedule(
    *, organisation, teams, survey, created_at=datetime(2026, 2, 20, tzinfo=UTC), **overrides
):
    with time_machine.travel(created_at, tick=False):
        return services.schedule_create(
            organisation=organisation,
            name=overrides.pop("name", "Weekly pulse"),
            survey=survey,
            team_ids=[t.pk for t in teams],
            start_date=overrides.pop("start_date", date(2026, 3, 1)),
            weekday=overrides.pop("weekday", 0),
            local_time=overrides.pop("local_time", time(9, 0)),
            **overrides,
        )


def open_cycle(schedule, at=FIRST_OPEN) -> Cycle:
    """Run the tick at ``at`` and open the resulting cycle fully in this process."""
    report = services.tick_run(now=at)
    assert report.opened, "expected the tick to open a cycle"
    cycle = Cycle.objects.get(pk=report.opened[-1])
    services.cycle_open_all(cycle=cycle)
    cycle.refresh_from_db()
    return cycle


@pytest.fixture
def org(db):
    return OrganisationFactory(timezone="Europe/Berlin", anonymity_threshold=5)


@pytest.fixture
def team(org):
    return team_with_members(organisation=org, size=6, name="Support Tier 1", customer_facing=True)


@pytest.fixture
def schedule(org, team, weekly_pulse):
    return make_schedule(organisation=org, teams=[team], survey=weekly_pulse)


@pytest.fixture
def cycle(schedule):
    return open_cycle(schedule)
