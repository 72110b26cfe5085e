"""A small organisation with weekly stored stress history for five customer-facing teams, and
helpers to load customer metrics through the real import path."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from tests.dashboards.conftest import FIRST_PERIOD, record_history
from tests.factories import OrganisationFactory, TeamLeadFactory, UserFactory, team_with_members
from wellbeing.customer_metrics import MetricRow, customer_metric_values_import
from wellbeing.models import Organisation, Team

TEAM_NAMES = ("Support Tier 1", "Support Tier 2", "Customer Success", "Inside Sales", "Field Sales")
CYCLES = 12
LAG = 2
CSAT_SLOPE = -0.3  # CSAT points per stress point, two weeks later


def week(i: int) -> date:
    return FIRST_PERIOD + timedelta(weeks=i)


def stress_level(team: Team, i: int, dimension: str) -> float:
    """Each team swings around its own level; Support Tier 1 also climbs."""
    j = TEAM_NAMES.index(team.name) if team.name in TEAM_NAMES else 0
    level = 35.0 + 5 * j + 10 * math.sin(0.9 * i + j)
    if team.name == "Support Tier 1":
        level += 3.0 * i
    return level


def csat_for(team: Team, i: int) -> float:
    """CSAT responds to the team's stress two weeks earlier (plus a little fixed wobble)."""
    earlier = stress_level(team, max(0, i - LAG), "stress")
    wobble = 0.4 * math.cos(2.3 * i + len(team.name))
    return round(92.0 + CSAT_SLOPE * earlier + wobble, 2)


def import_rows(organisation: Organisation, rows: list[MetricRow]):
    return customer_metric_values_import(
        organisation=organisation, rows=rows, actor=None, today=date.today()
    )


def csat_rows(teams, cycles: int = CYCLES, value=csat_for) -> list[MetricRow]:
    return [
        MetricRow(
            row=n + 2,
            metric="csat",
            team=str(team.public_id),
            week_start=week(i),
            value=value(team, i),
        )
        for n, (team, i) in enumerate((t, i) for t in teams for i in range(cycles))
    ]


def build_world(*, with_csat: bool = True):
    org = OrganisationFactory(anonymity_threshold=5, name="Impact Org")
    teams = [
        team_with_members(organisation=org, size=6, name=name, customer_facing=True)
        for name in TEAM_NAMES
    ]
    record_history(organisation=org, teams=teams, cycles=CYCLES, level=stress_level)
    if with_csat:
        import_rows(org, csat_rows(teams))
    lead = TeamLeadFactory(team=teams[0], user__full_name="Lea Lead").user
    admin = UserFactory(organisation=org, is_org_admin=True, full_name="Ada Admin")
    return org, teams, lead, admin


@pytest.fixture
def world(db):
    return build_world()


@pytest.fixture
def bare_world(db):
    """The same history without any customer metric yet."""
    return build_world(with_csat=False)
