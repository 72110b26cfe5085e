"""axe-core finds no serious or critical accessibility violation on the employee check-in form
(built by the check-in pages; checked here together with the dashboards)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from checkins.models import Invitation
from notifications.models import Message
from tests.browser_helpers import axe_violations, needs_axe, screenshot
from tests.checkins.conftest import (  # noqa: F401  (fixtures)
    FIRST_OPEN,
    cycle,
    org,
    schedule,
    team,
    weekly_pulse,
)

pytestmark = [pytest.mark.browser, needs_axe]


def test_employee_form_has_no_serious_or_critical_accessibility_violations(
    chromium_browser,
    live_server,
    transactional_db,
    cycle,  # noqa: F811
):
    # given an open check-in and an employee's one-time link
    with time_machine.travel(FIRST_OPEN + timedelta(hours=2), tick=True):
        invitation = Invitation.objects.filter(cycle=cycle).order_by("pk").first()
        url = Message.objects.get(idempotency_key=f"inv:{invitation.public_id}").sensitive_context[
            "url"
        ]
        token = url.rstrip("/").rsplit("/", 1)[-1]
        context = chromium_browser.new_context(
            viewport={"width": 390, "height": 844}, bypass_csp=True
        )
        try:
            page = context.new_page()
            # when they open the form
            page.goto(f"{live_server.url}/checkin/t/{token}/")
            page.get_by_role("button", name="Start check-in").click()
            page.wait_for_url(f"{live_server.url}/checkin/answer/")
            screenshot(page, "employee-form", area="dashboards")
            # then
            assert axe_violations(page) == []
        finally:
            context.close()
