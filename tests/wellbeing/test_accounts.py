"""Signing in: people without a password (imported) or who forgot it get a one-time link by
e-mail, through the outbox, and choose a password with it."""

from __future__ import annotations

import logging
import random
import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.core import mail
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from notifications.models import Kind, Message, State
from notifications.services import OutgoingMessage, message_enqueue, outbox_deliver_due
from tests.factories import UserFactory
from wellbeing.accounts import SignInLinkRequestView
from wellbeing.errors import ServiceError

REQUEST = "/accounts/password/"
SENT = "/accounts/password/sent/"
LINK = re.compile(r"http://testserver(/accounts/reset/[^/\s]+/[^/\s]+/)")


@pytest.fixture
def browser():
    # A client address of its own, so the per-address limit counts this test's requests only.
    return Client(REMOTE_ADDR=f"10.{random.randrange(256)}.{random.randrange(256)}.7")


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = "http://testserver"


@pytest.fixture
def imported(db):
    """A person brought in by the people import: no usable password yet."""
    user = UserFactory(email="lea.lead@example.test", full_name="Lea Lead")
    user.set_unusable_password()
    user.save()
    return user


def _the_link() -> str:
    assert len(mail.outbox) == 1
    return LINK.search(mail.outbox[0].body).group(1)


def test_an_imported_lead_sets_a_password_from_the_e_mailed_link_and_signs_in(browser, imported):
    # given the sign-in page offers the way to a first password
    assert f'href="{REQUEST}"' in browser.get("/accounts/login/").content.decode()
    # when she asks for a link, in another case than stored
    response = browser.post(REQUEST, {"email": "Lea.Lead@Example.test"})
    # then the page says a link is on its way, and the outbox holds it for her, by e-mail
    assert response.status_code == 302 and response["Location"] == SENT
    message = Message.objects.get()
    assert (message.kind, message.channel, message.recipient) == ("account", "email", imported)
    assert "/accounts/reset/" in message.sensitive_context["url"]
    assert "/accounts/reset/" not in str(message.context)

    # when the outbox delivers it
    outbox_deliver_due()
    email = mail.outbox[0]
    assert email.to == [imported.email]
    assert "List-Unsubscribe" not in email.extra_headers
    assert "reminders" not in email.body.lower()
    message.refresh_from_db()
    assert message.state == State.SENT and message.sensitive_context is None

    # and she opens it and chooses a password
    page = browser.get(_the_link(), follow=True)
    assert "Choose your password" in page.content.decode()
    set_password_url = page.redirect_chain[-1][0]
    response = browser.post(
        set_password_url,
        {"new_password1": "calm-harbour-lanterns", "new_password2": "calm-harbour-lanterns"},
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/reset/done/"

    # then she signs in with it
    response = browser.post(
        "/accounts/login/", {"username": imported.email, "password": "calm-harbour-lanterns"}
    )
    assert response.status_code == 302
    assert browser.get("/").wsgi_request.user == imported


def test_a_used_link_no_longer_works(browser, imported):
    browser.post(REQUEST, {"email": imported.email})
    outbox_deliver_due()
    link = _the_link()
    page = browser.get(link, follow=True)
    browser.post(
        page.redirect_chain[-1][0],
        {"new_password1": "calm-harbour-lanterns", "new_password2": "calm-harbour-lanterns"},
    )
    assert "This link no longer works" in Client().get(link, follow=True).content.decode()


def test_a_weak_password_is_refused_with_the_reason(browser, imported):
    browser.post(REQUEST, {"email": imported.email})
    outbox_deliver_due()
    page = browser.get(_the_link(), follow=True)
    response = browser.post(
        page.redirect_chain[-1][0], {"new_password1": "password", "new_password2": "password"}
    )
    assert response.status_code == 200
    assert "This password is too common." in response.content.decode()
    imported.refresh_from_db()
    assert not imported.has_usable_password()


@pytest.mark.parametrize("who", ["unknown", "inactive", "operator"])
def test_the_page_answers_alike_and_sends_nothing_to_those_who_cannot_sign_in(
    browser, db, django_user_model, who
):
    if who == "inactive":
        UserFactory(email="gone@example.test", is_active=False)
    if who == "operator":  # outside any organisation: sets a password with manage.py
        django_user_model.objects.create_superuser(email="gone@example.test", password="x" * 20)
    response = browser.post(REQUEST, {"email": "gone@example.test"})
    assert response.status_code == 302 and response["Location"] == SENT
    assert not Message.objects.exists()


def test_a_malformed_address_is_refused_with_a_message(browser, db):
    response = browser.post(REQUEST, {"email": "not an address"})
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert not Message.objects.exists()


def test_an_account_gets_at_most_its_rate_of_links(browser, imported, settings):
    settings.PULSE_SIGN_IN_LINK_RATE = "2/h"
    for _ in range(4):
        assert browser.post(REQUEST, {"email": imported.email})["Location"] == SENT
    assert Message.objects.filter(recipient=imported).count() == 2


def test_one_address_gets_at_most_its_rate_of_requests(browser, db, settings):
    settings.PULSE_SIGN_IN_LINK_ADDRESS_RATE = "2/h"
    people = [UserFactory(email=f"p{i}@example.test") for i in range(3)]
    for person in people:
        assert browser.post(REQUEST, {"email": person.email})["Location"] == SENT
    assert Message.objects.count() == 2


def test_the_link_is_sent_at_once_even_outside_working_hours(browser, imported):
    imported.organisation.timezone = "Europe/Berlin"
    imported.organisation.save()
    night = datetime(2026, 12, 6, 2, 30, tzinfo=UTC)  # a Sunday, 03:30 in Berlin
    with time_machine.travel(night, tick=False):
        browser.post(REQUEST, {"email": imported.email})
    assert Message.objects.get().next_attempt_at == night


def test_a_sign_in_link_goes_to_a_person_by_e_mail_only(db):
    person = UserFactory()
    base = {
        "organisation_id": person.organisation_id,
        "kind": Kind.ACCOUNT,
        "template": "account",
        "context": {},
        "idempotency_key": "account:test",
    }
    with pytest.raises(ServiceError) as refused:
        message_enqueue(OutgoingMessage(recipient_id=None, **base))
    assert "recipient_id" in refused.value.fields
    with pytest.raises(ServiceError) as refused:
        message_enqueue(OutgoingMessage(recipient_id=person.pk, channel="slack", **base))
    assert "channel" in refused.value.fields


def test_neither_the_request_nor_the_link_is_logged_with_its_token(browser, imported, caplog):
    caplog.set_level(logging.DEBUG)
    browser.post(REQUEST, {"email": imported.email})
    outbox_deliver_due()
    token = _the_link().rstrip("/").rsplit("/", 1)[1]
    browser.get(_the_link(), follow=True)
    assert token not in caplog.text
    assert imported.email not in caplog.text


@pytest.mark.parametrize("change", ["deactivated", "operator"])
def test_a_link_no_longer_works_once_its_person_cannot_sign_in(browser, imported, change):
    # given a link on its way, and then the person leaves (or is no longer in an organisation)
    browser.post(REQUEST, {"email": imported.email})
    outbox_deliver_due()
    link = _the_link()
    if change == "deactivated":
        imported.is_active = False
    else:
        imported.organisation = None
    imported.save()
    # when the link is opened, then it no longer offers to choose a password
    page = browser.get(link, follow=True)
    assert "This link no longer works" in page.content.decode()
    assert "new_password1" not in page.content.decode()
    # and posting to it changes nothing
    uidb64 = link.split("/")[3]
    response = browser.post(
        f"/accounts/reset/{uidb64}/set-password/",
        {"new_password1": "calm-harbour-lanterns", "new_password2": "calm-harbour-lanterns"},
    )
    assert response.status_code == 200
    imported.refresh_from_db()
    assert not imported.has_usable_password()


def test_choosing_a_new_password_ends_the_lockout_of_this_browser(
    browser, imported, settings, caplog
):
    # given someone who forgot the password and was locked out trying
    imported.set_password("forgotten-password-1")
    imported.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = browser.post(
            "/accounts/login/", {"username": imported.email, "password": "a-wrong-guess"}
        )
    assert response.status_code == 429
    # when she chooses a new password with the link e-mailed to her
    browser.post(REQUEST, {"email": imported.email})
    outbox_deliver_due()
    page = browser.get(_the_link(), follow=True)
    response = browser.post(
        page.redirect_chain[-1][0],
        {"new_password1": "calm-harbour-lanterns", "new_password2": "calm-harbour-lanterns"},
    )
    assert response.status_code == 302
    # then she signs in with it at once, not after the cool-off
    response = browser.post(
        "/accounts/login/", {"username": imported.email, "password": "calm-harbour-lanterns"}
    )
    assert response.status_code == 302
    # while another address's lockout for the account stays
    elsewhere = Client(REMOTE_ADDR="10.99.99.99")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        elsewhere.post("/accounts/login/", {"username": imported.email, "password": "guess"})
    assert (
        elsewhere.post(
            "/accounts/login/", {"username": imported.email, "password": "calm-harbour-lanterns"}
        ).status_code
        == 429
    )
    assert imported.email not in caplog.text


def test_the_answer_is_made_before_any_work_for_an_account_whether_or_not_there_is_one(
    imported, rf
):
    # Looking the address up and queueing the link (queries, a broker publish; seconds with the
    # broker down) would make a known address's answer measurably slower than an unknown one's.
    answers = {}
    for email in (imported.email, "nobody@example.test"):
        request = rf.post(REQUEST, {"email": email}, REMOTE_ADDR=f"10.20.{len(answers)}.7")
        request._dont_enforce_csrf_checks = True
        with CaptureQueriesContext(connection) as queries:
            response = SignInLinkRequestView.as_view()(request)
        answers[email] = (response, len(queries))
    (known, known_queries), (unknown, unknown_queries) = answers.values()
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert known_queries == unknown_queries == 0
    assert not Message.objects.exists()
    # the link is queued once the answer has gone out (the server closes the response; as
    # Django's test client does, keep the test's database connection open meanwhile)
    request_finished.disconnect(close_old_connections)
    try:
        unknown.close()
        known.close()
    finally:
        request_finished.connect(close_old_connections)
    assert Message.objects.get().recipient == imported
