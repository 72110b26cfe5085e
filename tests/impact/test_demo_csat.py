"""The demo's weekly CSAT: customer-facing teams get values, Support Tier 1's CSAT dips a couple
of weeks after its stress climbs, and the admin's figure finds that lag."""

from __future__ import annotations

from datetime import UTC, date, datetime

from checkins.demo import customer_metrics_seed, history_seed
from wellbeing.customer_metrics import organisation_impact
from wellbeing.demo import organisation_seed
from wellbeing.models import CustomerMetricValue, Team

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_demo_csat_dips_after_support_tier_1_stress_climbs(db):
    organisation, _ = organisation_seed(today=date(2026, 11, 25))
    summary = history_seed(organisation=organisation, weeks=26, now=NOW)
    assert summary["csat_values"] == 5 * 26  # five customer-facing teams without sub-teams
    team = Team.objects.get(organisation=organisation, name="Support Tier 1")
    csat = list(
        CustomerMetricValue.objects.filter(team=team, metric__key="csat")
        .order_by("week_start")
        .values_list("value", flat=True)
    )
    assert sum(csat[-2:]) / 2 < sum(csat[:12]) / 12 - 5
    stress = next(
        i for i in organisation_impact(organisation=organisation) if i.dimension == "stress"
    ).summary
    assert stress.association and stress.headline.lag == 2 and stress.headline.slope < 0
    # and seeding again changes nothing
    assert customer_metrics_seed(organisation=organisation, now=NOW) == 0
