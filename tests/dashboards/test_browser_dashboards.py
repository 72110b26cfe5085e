"""In a real browser: a lead sees the rising team's chart, acknowledges its empathy-risk flag with
an action, and the action appears on the team's "you said, we did" page.  Accessibility: axe-core
finds no serious or critical violation on the lead dashboard or the admin overview.

Drives Debian's Chromium through Playwright against pytest-django's live server; skipped with a
reason when Chromium or axe-core (``npm ci``) is missing.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from django.utils import timezone

from tests.browser_helpers import SignedInPages, axe_violations, needs_axe, screenshot
from tests.dashboards.conftest import record_history
from tests.factories import OrganisationFactory, TeamLeadFactory, UserFactory, team_with_members
from wellbeing.models import AuditEntry, Flag

# ``chromium_browser`` (tests/conftest.py) skips without Chromium and sets
# DJANGO_ALLOW_ASYNC_UNSAFE while Playwright's event loop runs in this thread.
pytestmark = pytest.mark.browser


@pytest.fixture
def signed_in(chromium_browser, live_server, client):
    """A function that opens a browser page signed in as ``user``."""
    pages = SignedInPages(chromium_browser, live_server, client)
    yield pages.open
    pages.close()


def rising(team, i, dimension):
    if team.name == "Support Tier 1" and dimension in ("stress", "client_burnout"):
        return 30.0 + 3.0 * i
    return 40.0


@pytest.fixture
def rising_team(transactional_db):
    """A customer-facing team whose stress and client burnout rise for 12 cycles, next to a
    stable team; the trends code opens an empathy-risk flag for it."""
    org = OrganisationFactory(anonymity_threshold=5)
    support = team_with_members(
        organisation=org, size=8, name="Support Tier 1", customer_facing=True
    )
    stable = team_with_members(organisation=org, size=7, name="Billing")
    record_history(organisation=org, teams=[support, stable], cycles=12, level=rising)
    lead = TeamLeadFactory(team=support, user__full_name="Lea Lead").user
    admin = UserFactory(organisation=org, is_org_admin=True, full_name="Ada Admin")
    return org, support, lead, admin


shot = partial(screenshot, area="dashboards")


def test_lead_acknowledges_the_empathy_risk_flag_and_the_team_sees_the_action(
    signed_in, live_server, rising_team
):
    org, support, lead, admin = rising_team
    flag = Flag.objects.get(team=support, kind=Flag.Kind.EMPATHY_RISK, state=Flag.State.OPEN)
    page = signed_in(lead)

    # the lead sees the rising team's stress chart and the flag with its evidence
    page.goto(f"{live_server.url}/dashboards/teams/{support.public_id}/")
    stress_chart = page.locator("svg#trend-stress")
    assert stress_chart.is_visible()
    assert stress_chart.get_attribute("role") == "img"
    assert stress_chart.locator("g.point").count() == 12
    card = page.locator(f"#flag-{flag.public_id}")
    assert "Empathy risk" in card.locator("h3").inner_text()
    assert card.locator("svg").count() == 2  # stress and client-related burnout evidence
    shot(page, "lead-team")

    # acknowledges it with the action taken and a follow-up date
    follow_up = timezone.localdate() + timedelta(days=14)
    card.get_by_label("What did you do, or what will you do?").fill(
        "Two extra people on the phone queue; weekly huddle to share hard calls."
    )
    card.get_by_label("Follow up on").fill(follow_up.isoformat())
    card.get_by_role("button", name="Record action and acknowledge").click()
    page.wait_for_url(f"**/dashboards/teams/{support.public_id}/#flags")
    assert "The action is recorded" in page.locator(".messages").inner_text()
    assert "Acknowledged" in page.locator(f"#flag-{flag.public_id} h3").inner_text()
    shot(page, "lead-team-acknowledged")

    flag.refresh_from_db()
    assert flag.state == Flag.State.ACKNOWLEDGED and flag.follow_up_on == follow_up
    assert AuditEntry.objects.filter(action="flag.acknowledge", organisation=org).count() == 1

    # a team member sees the action on "you said, we did", without numbers or names
    member_page = signed_in(support.memberships.first().user)
    member_page.goto(f"{live_server.url}/dashboards/teams/{support.public_id}/you-said-we-did/")
    text = member_page.locator("main").inner_text()
    assert "Two extra people on the phone queue" in text
    assert "Lea Lead" not in text
    shot(member_page, "you-said-we-did")

    # and the admin overview logs it
    admin_page = signed_in(admin)
    admin_page.goto(f"{live_server.url}/dashboards/organisation/")
    assert "Two extra people on the phone queue" in admin_page.locator("main").inner_text()
    shot(admin_page, "organisation")


def test_lead_dismisses_a_flag_with_a_reason(signed_in, live_server, rising_team):
    org, support, lead, admin = rising_team
    flag = Flag.objects.get(team=support, kind=Flag.Kind.EMPATHY_RISK, state=Flag.State.OPEN)
    page = signed_in(lead)
    page.goto(f"{live_server.url}/dashboards/teams/{support.public_id}/")
    card = page.locator(f"#flag-{flag.public_id}")

    # dismissing is behind its own disclosure, apart from the acknowledgement
    reason = card.get_by_label("Why does this flag need no action?")
    assert not reason.is_visible()
    card.get_by_text("Dismiss this flag").click()
    # an empty reason is refused, with the disclosure left open at the error
    card.get_by_role("button", name="Dismiss with this reason").click()
    page.wait_for_load_state()
    card = page.locator(f"#flag-{flag.public_id}")
    assert "This field is required." in card.inner_text()
    card.get_by_label("Why does this flag need no action?").fill("Planned launch week, passing.")
    card.get_by_role("button", name="Dismiss with this reason").click()
    page.wait_for_url(f"**/dashboards/teams/{support.public_id}/#flags")
    assert "The flag is dismissed" in page.locator(".messages").inner_text()
    assert page.locator(f"#flag-{flag.public_id}").count() == 0
    flag.refresh_from_db()
    assert (flag.state, flag.dismissed_reason) == (
        Flag.State.DISMISSED,
        "Planned launch week, passing.",
    )
    assert AuditEntry.objects.filter(action="flag.dismiss", organisation=org).count() == 1


@needs_axe
@pytest.mark.parametrize("which", ["lead-team", "organisation", "you-said-we-did", "landing"])
def test_dashboards_have_no_serious_or_critical_accessibility_violations(
    signed_in, live_server, rising_team, which
):
    org, support, lead, admin = rising_team
    user, path = {
        "lead-team": (lead, f"/dashboards/teams/{support.public_id}/"),
        "organisation": (admin, "/dashboards/organisation/"),
        "you-said-we-did": (lead, f"/dashboards/teams/{support.public_id}/you-said-we-did/"),
        "landing": (lead, "/dashboards/"),
    }[which]
    page = signed_in(user)
    page.goto(live_server.url + path)
    # open the table alternatives so axe checks them too
    for summary in page.locator("details > summary").all():
        summary.click()
    assert axe_violations(page) == []
