"""In a real browser: the lead sees the team's CSAT overlaid on its stress trend (and its table),
the admin sees the organisation-level lagged association.  Skipped without Chromium."""

from __future__ import annotations

from functools import partial

import pytest

from tests.browser_helpers import SignedInPages, axe_violations, needs_axe, screenshot
from tests.impact.conftest import build_world

pytestmark = pytest.mark.browser


@pytest.fixture
def signed_in(chromium_browser, live_server, client):
    pages = SignedInPages(chromium_browser, live_server, client)
    yield pages.open
    pages.close()


@pytest.fixture
def impact_world(transactional_db):
    return build_world()


shot = partial(screenshot, area="impact")


def test_the_lead_sees_csat_overlaid_on_the_team_stress_trend(signed_in, live_server, impact_world):
    _org, teams, lead, _admin = impact_world
    page = signed_in(lead)
    page.goto(f"{live_server.url}/dashboards/teams/{teams[0].public_id}/")
    chart = page.locator("svg#impact-csat")
    chart.scroll_into_view_if_needed()
    assert chart.is_visible()
    assert chart.get_attribute("role") == "img"
    assert chart.locator("g.point-index").count() == 12
    assert chart.locator("g.point-metric").count() == 12
    assert chart.locator("polyline.series-metric").is_visible()
    assert "right axis" in (chart.locator("g.legend").text_content() or "")
    section = page.locator("#customer-impact")
    section.get_by_text("as a table").click()
    assert section.locator("table.impact-table tbody tr").count() == 12
    shot(page, "lead-overlay")


def test_the_admin_sees_the_organisation_level_association(signed_in, live_server, impact_world):
    _org, _teams, _lead, admin = impact_world
    page = signed_in(admin)
    page.goto(f"{live_server.url}/dashboards/organisation/")
    headline = page.locator("#impact-csat-stress .impact-headline")
    assert headline.is_visible()
    text = headline.inner_text()
    assert "A 10-point rise in team stress is followed two weeks later by a CSAT" in text
    assert "95 % interval" in text and "across 5 teams" in text
    assert "not proof" in page.locator("#impact-csat-stress").inner_text()
    shot(page, "admin-association")


@needs_axe
@pytest.mark.parametrize("which", ["lead-team", "organisation", "manage-metrics"])
def test_impact_pages_have_no_serious_or_critical_accessibility_violations(
    signed_in, live_server, impact_world, which
):
    _org, teams, lead, admin = impact_world
    user, path = {
        "lead-team": (lead, f"/dashboards/teams/{teams[0].public_id}/"),
        "organisation": (admin, "/dashboards/organisation/"),
        "manage-metrics": (admin, "/manage/metrics/"),
    }[which]
    page = signed_in(user)
    page.goto(live_server.url + path)
    for summary in page.locator("details > summary").all():
        summary.click()
    assert axe_violations(page) == []
