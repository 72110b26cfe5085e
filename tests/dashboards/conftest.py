"""Fixtures for the dashboard tests: stored cycle history written through the analytics entry
point (the same path the check-in close job takes) and flags as the trends code stores them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import factory
import pytest
from django.utils import timezone

from tests.factories import OrganisationFactory, TeamLeadFactory, UserFactory, team_with_members
from wellbeing.analytics import DIMENSIONS, TeamCycleInput, cycle_results_record
from wellbeing.models import Flag, Organisation, Team

FIRST_PERIOD = date(2025, 9, 1)  # a Monday


def scores_for(size: int, level: float) -> list[float]:
    """``size`` respondents spread evenly around ``level`` (mean == level when in range)."""
    offsets = [(i - (size - 1) / 2) * 4.0 for i in range(size)]
    return [min(100.0, max(0.0, level + o)) for o in offsets]


def record_history(
    *,
    organisation: Organisation,
    teams: Sequence[Team],
    cycles: int,
    level: Callable[[Team, int, str], float] | None = None,
    responded: Callable[[Team, int], int] | None = None,
    first_period: date = FIRST_PERIOD,
) -> list[date]:
    """Close ``cycles`` weekly cycles for ``teams`` through ``cycle_results_record``."""
    periods = []
    for i in range(cycles):
        period = first_period + timedelta(weeks=i)
        inputs = []
        for team in teams:
            invited = team.memberships.count()
            answered = responded(team, i) if responded else invited
            inputs.append(
                TeamCycleInput(
                    team_id=team.pk,
                    invited=invited,
                    responded=answered,
                    scores={
                        d: scores_for(answered, level(team, i, d) if level else 40.0)
                        for d in DIMENSIONS
                    },
                )
            )
        cycle_results_record(
            organisation=organisation,
            cycle_key=uuid.uuid4(),
            period_start=period,
            closed_at=datetime.combine(period + timedelta(days=3), datetime.min.time(), UTC),
            teams=inputs,
        )
        periods.append(period)
    return periods


class FlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Flag

    team = factory.SubFactory("tests.factories.TeamFactory")
    organisation = factory.SelfAttribute("team.organisation")
    kind = Flag.Kind.EMPATHY_RISK
    severity = Flag.Severity.WARNING
    state = Flag.State.OPEN
    opened_at = factory.LazyFunction(timezone.now)
    first_cycle_period = FIRST_PERIOD
    last_cycle_period = FIRST_PERIOD + timedelta(weeks=3)
    last_evaluated_period = FIRST_PERIOD + timedelta(weeks=3)
    evidence = factory.LazyFunction(lambda: {"statistic": "ewma", "threshold": 3.0})
    explanation = "Stress has been rising for four cycles together with client-related burnout."
    suggested_actions = factory.LazyFunction(
        lambda: ["Hold a wellness check-in conversation", "Review workload and staffing"]
    )


@pytest.fixture
def org(db) -> Organisation:
    return OrganisationFactory(anonymity_threshold=5)


@pytest.fixture
def support(org) -> Team:
    return team_with_members(organisation=org, size=8, name="Support Tier 1", customer_facing=True)


@pytest.fixture
def lead(support):
    return TeamLeadFactory(team=support).user


@pytest.fixture
def admin(org):
    return UserFactory(organisation=org, is_org_admin=True)
