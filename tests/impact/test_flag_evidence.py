"""The empathy-risk flag cites a worsening customer metric as supporting evidence."""

from __future__ import annotations

from datetime import timedelta

from tests.dashboards.conftest import FIRST_PERIOD, record_history
from tests.factories import OrganisationFactory, team_with_members
from tests.impact.conftest import csat_rows, import_rows
from wellbeing.models import Flag


def rising(team, i, dimension):
    if team.name == "Support Tier 1" and dimension in ("stress", "client_burnout"):
        return 30.0 + 3.0 * i
    return 40.0


def setup_rising_team(cycles=11):
    org = OrganisationFactory(anonymity_threshold=5)
    support = team_with_members(
        organisation=org, size=8, name="Support Tier 1", customer_facing=True
    )
    stable = team_with_members(organisation=org, size=7, name="Billing")
    record_history(organisation=org, teams=[support, stable], cycles=cycles, level=rising)
    return org, support, stable


def falling(team, i):
    return 90.0 - 1.5 * i


def test_a_flag_opened_at_close_cites_falling_csat(db):
    # given CSAT falling for weeks before the latest check-in closes
    org, support, stable = setup_rising_team(cycles=11)
    import_rows(org, csat_rows([support], cycles=11, value=falling))
    # when the next cycle closes
    record_history(
        organisation=org,
        teams=[support, stable],
        cycles=1,
        level=lambda team, i, d: rising(team, i + 11, d),
        first_period=FIRST_PERIOD + timedelta(weeks=11),
    )
    # then
    flag = Flag.objects.get(team=support, kind=Flag.Kind.EMPATHY_RISK, state=Flag.State.OPEN)
    customer = flag.evidence["customer"]
    assert customer["key"] == "csat" and customer["slope_per_week"] < 0
    assert "Supporting evidence from customer service" in flag.explanation
    assert "CSAT (% satisfied) has fallen" in flag.explanation


def test_csat_arriving_after_the_flag_is_added_to_its_evidence_once(db):
    org, support, _stable = setup_rising_team(cycles=12)
    flag = Flag.objects.get(team=support, kind=Flag.Kind.EMPATHY_RISK, state=Flag.State.OPEN)
    assert "customer" not in flag.evidence
    import_rows(org, csat_rows([support], cycles=12, value=falling))
    flag.refresh_from_db()
    assert flag.evidence["customer"]["latest"] == falling(support, 11)
    # a correction that flattens the curve withdraws the evidence again
    import_rows(org, csat_rows([support], cycles=12, value=lambda team, i: 85.0 + (i % 2)))
    flag.refresh_from_db()
    assert "customer" not in flag.evidence
    assert "Supporting evidence" not in flag.explanation


def test_steady_csat_is_not_cited(db):
    org, support, _stable = setup_rising_team(cycles=12)
    import_rows(org, csat_rows([support], cycles=12, value=lambda team, i: 86.0 + (i % 3)))
    flag = Flag.objects.get(team=support, kind=Flag.Kind.EMPATHY_RISK, state=Flag.State.OPEN)
    assert "customer" not in flag.evidence
