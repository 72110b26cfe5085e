"""In a real browser, an organisation admin imports people from a CSV (a file with errors first,
then the fixed one) and creates a check-in schedule, seeing its next openings in local time.
axe-core finds no serious or critical violation on the import preview.

Drives Debian's Chromium through Playwright against pytest-django's live server; skipped with a
reason when Chromium (``chromium_browser``) or axe-core (``npm ci``) is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from checkins.models import Schedule, Survey
from checkins.scheduling import schedule_next_open_times
from tests.browser_helpers import axe_violations, needs_axe, screenshot, signed_in_context
from tests.checkins.conftest import ensure_library
from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    TeamFactory,
    UserFactory,
)
from wellbeing.models import Membership, User

pytestmark = pytest.mark.browser

BERLIN = "Europe/Berlin"
HEADER = "email,name,team path,lead,start,end\n"
BROKEN = (
    HEADER
    + "ana@acme.test,Ana Alves,Customer Care / Frontline Alpha,yes,2025-01-06,\n"
    + "not-an-email,Bo Bauer,Customer Care / Frontline Alpha,no,,\n"  # row 3: e-mail
    + "cleo@acme.test,Cleo Chen,Customer Care / Frontline Beta,maybe,,\n"  # row 4: lead
    + "dan@acme.test,Dan Diaz,Customer Care / Frontline Beta,no,06/01/2025,\n"  # row 5: start
    + "ana@acme.test,Ana Again,Billing,no,,\n"  # row 6: e-mail used on row 2
)
FIXED = (
    HEADER
    + "ana@acme.test,Ana Alves,Customer Care / Frontline Alpha,yes,2025-01-06,\n"
    + "bo@acme.test,Bo Bauer,Customer Care / Frontline Alpha,no,,\n"
    + "cleo@acme.test,Cleo Chen,Customer Care / Frontline Beta,no,,\n"
    + "dan@acme.test,Dan Diaz,Customer Care / Frontline Beta,no,2025-01-06,\n"
    + "eve@acme.test,Eve Eng,Billing,yes,,\n"
)
# Tuesday 17 March 2026: the next openings straddle Berlin's switch to summer time (29 March).
BEFORE_DST = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)
NEW_EMAILS = {"ana@acme.test", "bo@acme.test", "cleo@acme.test", "dan@acme.test", "eve@acme.test"}


shot = partial(screenshot, area="manage")


@pytest.fixture
def acme(transactional_db):
    """An organisation in Berlin with its admin and a team that already has one member, who
    stays in the file so the import's leaver rule does not get in the way."""
    organisation = OrganisationFactory(name="Acme", slug="acme", timezone=BERLIN)
    admin = UserFactory(
        organisation=organisation, is_org_admin=True, email="admin@acme.test", full_name="Ada"
    )
    care = TeamFactory(organisation=organisation, name="Customer Care")
    alpha = TeamFactory(organisation=organisation, name="Frontline Alpha", parent=care)
    MembershipFactory(team=alpha, user__email="ana@acme.test", user__organisation=organisation)
    ensure_library()  # the published survey the product ships (a flush may have removed it)
    return organisation, admin


@pytest.fixture
def admin_page(chromium_browser, live_server, client, acme):
    """A page signed in as the admin (session made by the test client, so the login form and
    its lock-out rules stay out of the way)."""
    _, admin = acme
    context = signed_in_context(chromium_browser, live_server, client, admin)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def upload(page, base_url: str, text: str) -> None:
    page.goto(f"{base_url}/manage/people/import/")
    page.get_by_label("CSV or XLSX file").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.get_by_role("button", name="Preview").click()
    page.wait_for_load_state()


def error_rows(page) -> list[tuple[str, str]]:
    cells = page.locator(".import-errors tbody tr").evaluate_all(
        "rows => rows.map(r => [r.cells[0].innerText.trim(), r.cells[1].innerText.trim()])"
    )
    return [tuple(c) for c in cells]


@time_machine.travel(BEFORE_DST, tick=True)
def test_admin_fixes_a_people_file_imports_it_and_schedules_a_check_in(
    admin_page, live_server, acme
):
    organisation, admin = acme
    page = admin_page
    people_before = set(User.objects.values_list("email", flat=True))

    # the admin uploads a file with errors
    page.goto(f"{live_server.url}/manage/people/import/")
    shot(page, "1-import-upload")
    upload(page, live_server.url, BROKEN)

    # and sees every error with its row number, and that nothing will be imported
    assert "errors — nothing will be imported" in page.locator(".import-errors h2").inner_text()
    errors = error_rows(page)
    assert {("3", "email"), ("4", "lead"), ("5", "start"), ("6", "email")} <= set(errors)
    assert {row for row, _ in errors} == {"3", "4", "5", "6"}
    assert page.get_by_role("button", name="Apply these changes").count() == 0
    shot(page, "2-import-preview-errors")
    # nothing was applied
    assert set(User.objects.values_list("email", flat=True)) == people_before
    assert not organisation.teams.filter(name="Frontline Beta").exists()

    # the fixed file previews cleanly
    upload(page, live_server.url, FIXED)
    assert page.locator(".import-errors").count() == 0
    main = page.locator("main").inner_text()
    assert "new team Customer Care / Frontline Beta" in main
    assert "new person eve@acme.test" in main or "Eve Eng" in main
    shot(page, "3-import-preview-clean")
    assert set(User.objects.values_list("email", flat=True)) == people_before

    # confirming applies it
    page.get_by_role("button", name="Apply these changes").click()
    page.wait_for_load_state()
    assert "Import applied" in page.locator(".messages").inner_text()
    shot(page, "4-import-applied")
    today = timezone.now().astimezone(ZoneInfo(BERLIN)).date()
    active = Membership.active_on(today)
    for email in NEW_EMAILS:
        person = User.objects.get(email=email)
        assert person.organisation == organisation and person.is_active
    assert (
        Membership.objects.filter(active, user__email="cleo@acme.test").get().team.name
        == "Frontline Beta"
    )
    assert organisation.teams.get(name="Billing").leads.get().user.email == "eve@acme.test"
    admin.refresh_from_db()
    assert admin.is_active  # absent from the file, kept

    # then the admin creates a weekly schedule for the imported teams
    survey = Survey.objects.get(organisation__isnull=True, key="weekly-pulse", is_current=True)
    page.goto(f"{live_server.url}/manage/checkins/schedules/")
    shot(page, "5-schedules")
    page.get_by_label("Name").fill("Weekly pulse, Customer Care")
    page.get_by_label("Survey").select_option(value=str(survey.pk))
    page.get_by_label("Customer Care", exact=True).check()
    page.get_by_label("Billing").check()
    page.get_by_label("Cadence").select_option(value="weekly")
    page.get_by_label("Day:", exact=True).select_option(value="2")  # Wednesday
    page.get_by_label("Local time").fill("08:30")
    page.get_by_label("Timezone").fill("")
    page.get_by_label("Open for (hours)").fill("48")
    page.get_by_label("Reminders (hours after opening)").fill("24")
    page.get_by_label("First day").fill((today + timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Create schedule").click()
    page.wait_for_url("**/manage/checkins/schedules/*-*/")

    # and sees the next openings in the organisation's local time, 08:30 on both sides of the
    # switch to summer time
    schedule = Schedule.objects.get(organisation=organisation, name="Weekly pulse, Customer Care")
    assert "Schedule created" in page.locator(".messages").inner_text()
    heading = page.get_by_role("heading", name="Next openings")
    assert BERLIN in heading.inner_text()
    shown = page.locator("ol.next-open-times time")
    expected = schedule_next_open_times(schedule, shown.count())
    assert shown.count() >= 3
    assert {at.strftime("%z") for at in expected} == {"+0100", "+0200"}
    for element, at in zip(shown.all(), expected, strict=True):
        local = at.astimezone(ZoneInfo(BERLIN))
        assert local.weekday() == 2 and (local.hour, local.minute) == (8, 30)
        assert element.get_attribute("datetime") == local.isoformat()
        text = element.inner_text()
        assert "Wednesday" in text and "08:30" in text
        assert local.strftime("%z") in text.replace(":", "")  # e.g. UTC+0100 / UTC+0200
    shot(page, "6-schedule-next-openings")


@needs_axe
def test_import_preview_has_no_serious_or_critical_accessibility_violations(
    admin_page, live_server
):
    # given a preview with errors and a clean preview
    for text, name in ((BROKEN, "errors"), (FIXED, "clean")):
        upload(admin_page, live_server.url, text)
        # then axe-core finds nothing serious on it
        assert axe_violations(admin_page) == [], name
