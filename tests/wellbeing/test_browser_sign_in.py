"""In a real browser: a person without a password asks for a link on the sign-in page, sets a
password with it and signs in; each page has no serious or critical accessibility violation."""

from __future__ import annotations

import re
import time

import pytest
from django.core import mail

from notifications.models import Message
from notifications.services import outbox_deliver_due
from tests.browser_helpers import axe_violations, needs_axe, screenshot
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, needs_axe]


def test_first_sign_in_through_an_e_mailed_link(
    chromium_browser, live_server, transactional_db, settings
):
    settings.SITE_URL = live_server.url
    person = UserFactory(email="new.lead@example.test", full_name="Nia New")
    person.set_unusable_password()
    person.save()
    context = chromium_browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    try:
        page = context.new_page()
        # the sign-in page leads to the request for a link
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_role("link", name="First time here, or forgot your password?").click()
        assert axe_violations(page) == []
        page.get_by_label("E-mail").fill("new.lead@example.test")
        page.get_by_role("button", name="Send me a link").click()
        page.wait_for_url("**/accounts/password/sent/")
        assert "Check your e-mail" in page.locator("h1").inner_text()
        assert axe_violations(page) == []

        # the e-mail's link opens the form to choose a password (queued once the server has
        # sent its answer: wait for it)
        deadline = time.monotonic() + 10
        while not Message.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        outbox_deliver_due()
        link = re.search(r"(http\S+/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
        page.goto(link)
        assert "Choose your password" in page.locator("h1").inner_text()
        assert axe_violations(page) == []
        page.get_by_label("New password", exact=True).fill("quiet-meadow-lantern")
        page.get_by_label("New password confirmation").fill("quiet-meadow-lantern")
        page.get_by_role("button", name="Save the password").click()
        page.wait_for_url("**/accounts/reset/done/")
        screenshot(page, "password-saved", area="accounts")

        # and with it she signs in
        page.get_by_role("link", name="Sign in").click()
        page.get_by_label("E-mail").fill("new.lead@example.test")
        page.get_by_label("Password").fill("quiet-meadow-lantern")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert "/accounts/login/" not in page.url
    finally:
        context.close()
