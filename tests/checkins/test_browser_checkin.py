"""An employee answers a check-in on a phone in a real browser (Chromium via Playwright)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
import time_machine

from checkins.models import Invitation, PendingAnswer
from checkins.selectors import invitation_questions
from checkins.services import support_resource_create
from notifications.models import Message
from tests.browser_helpers import screenshot
from tests.checkins.conftest import FIRST_OPEN

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _during_the_window():
    # chromium_browser sets DJANGO_ALLOW_ASYNC_UNSAFE while Playwright's loop runs here.
    with time_machine.travel(FIRST_OPEN + timedelta(hours=2), tick=True):
        yield


@pytest.fixture
def phone(chromium_browser):
    context = chromium_browser.new_context(viewport=PHONE, device_scale_factor=2, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def link_token(invitation: Invitation) -> str:
    url = Message.objects.get(idempotency_key=f"inv:{invitation.public_id}").sensitive_context[
        "url"
    ]
    return url.rstrip("/").rsplit("/", 1)[-1]


shot = partial(screenshot, area="checkin")


def test_employee_answers_on_a_phone_and_the_link_then_reports_used(
    live_server, phone, transactional_db, cycle
):
    # Given an open check-in, a support resource and the employee's one-time link
    support_resource_create(
        organisation=cycle.organisation,
        title="Employee assistance line",
        description="Free and confidential, around the clock.",
        phone="0800 123 456",
    )
    invitation = Invitation.objects.filter(cycle=cycle).select_related("cycle").first()
    token = link_token(invitation)
    link = f"{live_server.url}/checkin/t/{token}/"

    # When they open the link, they see a start step (mail scanners never get further)
    phone.goto(link)
    phone.get_by_role("button", name="Start check-in").wait_for()
    shot(phone, "1-start")
    phone.get_by_role("button", name="Start check-in").click()

    # Then they land on a token-free address with the form
    phone.wait_for_url(f"{live_server.url}/checkin/answer/")
    assert token not in phone.url
    questions = [q for q in invitation_questions(invitation=invitation) if q.is_scale]
    assert phone.locator("fieldset").count() == len(questions)
    unlabelled = phone.evaluate(
        "Array.from(document.querySelectorAll('input:not([type=hidden]), textarea'))"
        ".filter(el => el.labels.length === 0).length"
    )
    assert unlabelled == 0
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    smallest = phone.evaluate(
        "Math.min(...Array.from(document.querySelectorAll('.option'))"
        ".map(el => el.getBoundingClientRect().height))"
    )
    assert smallest >= 24
    shot(phone, "2-form")

    # When they answer every item (the first by keyboard) and send
    phone.focus(f"#q{questions[0].pk}-{questions[0].scale_min}")
    phone.keyboard.press("ArrowRight")
    for question in questions[1:]:
        phone.locator(f"label[for='q{question.pk}-{question.scale_max}']").click()
    phone.get_by_role("button", name="Send my answers").click()

    # Then they see thanks with the organisation's support resources
    phone.wait_for_url(f"{live_server.url}/checkin/thanks/")
    phone.get_by_text("Employee assistance line").wait_for()
    assert phone.locator("a[href='tel:0800123456']").count() == 1
    shot(phone, "3-thanks")
    invitation.refresh_from_db()
    assert invitation.answered
    assert PendingAnswer.objects.count() == 1

    # And reopening the link shows the friendly "already used" page
    response = phone.goto(link)
    assert response is not None and response.status == 409
    phone.get_by_role("heading", name="This link has already been used").wait_for()
    shot(phone, "4-used")


def test_a_missing_answer_is_named_at_the_top_and_next_to_the_item(
    live_server, phone, transactional_db, cycle
):
    invitation = Invitation.objects.filter(cycle=cycle).first()
    phone.goto(f"{live_server.url}/checkin/t/{link_token(invitation)}/")
    phone.get_by_role("button", name="Start check-in").click()
    phone.wait_for_url(f"{live_server.url}/checkin/answer/")

    # When they send without answering the required item
    phone.get_by_role("button", name="Send my answers").click()

    # Then an error summary links to the item, and nothing is stored
    summary = phone.locator("#error-summary")
    summary.wait_for()
    required = next(q for q in invitation_questions(invitation=invitation) if q.required)
    summary.locator(f"a[href='#q{required.pk}-{required.scale_min}']").click()
    assert phone.evaluate("document.activeElement.id") == f"q{required.pk}-{required.scale_min}"
    assert phone.locator(f"#q{required.pk}-error").is_visible()
    shot(phone, "5-errors")
    assert PendingAnswer.objects.count() == 0
