"""Delivery by e-mail to a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications import tasks
from notifications.models import Message
from notifications.services import message_enqueue, messages_enqueue_bulk, outbox_deliver_due
from tests.factories import UserFactory

from .conftest import free_port
from .helpers import WORKING_HOURS, invitation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _working_hours():
    with time_machine.travel(WORKING_HOURS, tick=True):
        yield


@pytest.fixture
def retry_settings(settings):
    settings.PULSE_OUTBOX_MAX_ATTEMPTS = 4
    settings.PULSE_OUTBOX_BACKOFF_BASE_SECONDS = 60
    settings.PULSE_OUTBOX_BACKOFF_MAX_SECONDS = 3600
    settings.PULSE_OUTBOX_BACKOFF_JITTER = 0.25
    return settings


def test_invitations_reach_the_smtp_server_once_each_and_secrets_are_erased(
    organisation, smtp_settings
):
    people = UserFactory.create_batch(30, organisation=organisation)
    messages_enqueue_bulk([invitation(organisation, p, f"inv-{p.pk}") for p in people])
    # when delivery runs twice
    first = tasks.outbox_deliver()
    second = tasks.outbox_deliver()
    # then every person got exactly one mail, and the one-time links are gone from the outbox
    assert (first, second) == (30, 0)
    assert sorted(smtp_settings.recipients()) == sorted(p.email for p in people)
    assert set(Message.objects.values_list("state", flat=True)) == {"sent"}
    assert not Message.objects.filter(sensitive_context__isnull=False).exists()
    assert not Message.objects.filter(sent_at__isnull=True).exists()


def test_a_batch_shares_one_smtp_connection(organisation, smtp_settings):
    people = UserFactory.create_batch(25, organisation=organisation)
    messages_enqueue_bulk([invitation(organisation, p, f"inv-{p.pk}") for p in people])
    outbox_deliver_due(batch_size=100)
    assert smtp_settings.count() == 25
    assert smtp_settings.sessions == 1


def test_email_has_text_html_link_and_one_click_unsubscribe_headers(organisation, smtp_settings):
    person = UserFactory(organisation=organisation, full_name="Ada <script>")
    message_enqueue(invitation(organisation, person, "inv-1"))
    outbox_deliver_due()
    mail = smtp_settings.received[0].message
    assert mail["List-Unsubscribe"].strip().startswith("<http")
    assert "/notifications/unsubscribe/" in mail["List-Unsubscribe"]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "https://pulse.example/checkin/t/secret-inv-1" in text
    assert 'href="https://pulse.example/checkin/t/secret-inv-1"' in html
    # the name is escaped in HTML
    assert "Ada &lt;script&gt;" in html or "Ada" in html and "<script>" not in html


def test_email_is_rendered_in_the_recipients_language(organisation, smtp_settings):
    person = UserFactory(organisation=organisation, language="de")
    message_enqueue(invitation(organisation, person, "inv-1"))
    outbox_deliver_due()
    # the German catalogue may not be compiled; the rendering must not fail either way
    assert smtp_settings.count() == 1


def test_permanent_smtp_rejection_fails_at_once_without_the_address_in_the_error(
    organisation, smtp_settings
):
    person = UserFactory(organisation=organisation)
    smtp_settings.rcpt_replies[person.email] = f"550 5.1.1 <{person.email}> no such mailbox"
    message_enqueue(invitation(organisation, person, "inv-1"))
    outbox_deliver_due()
    message = Message.objects.get()
    assert message.state == "failed"
    assert message.attempts == 1
    assert "550" in message.last_error
    assert person.email not in message.last_error
    assert message.sensitive_context is None


def test_temporary_smtp_rejection_is_retried_later(organisation, smtp_settings, retry_settings):
    person = UserFactory(organisation=organisation)
    smtp_settings.rcpt_replies[person.email] = "451 4.7.1 greylisted"
    message_enqueue(invitation(organisation, person, "inv-1"))
    before = timezone.now()
    outbox_deliver_due()
    message = Message.objects.get()
    assert message.state == "pending"
    assert message.attempts == 1
    assert "451" in message.last_error
    assert before + timedelta(seconds=60) <= message.next_attempt_at
    assert message.next_attempt_at <= timezone.now() + timedelta(seconds=75)
    assert message.sensitive_context is not None  # still needed for the next attempt


def test_retries_back_off_exponentially_with_bounded_jitter_and_stop_at_the_limit(
    organisation, settings, retry_settings
):
    # given an SMTP server that is down
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    person = UserFactory(organisation=organisation)
    message_enqueue(invitation(organisation, person, "inv-1"))
    delays = []
    # when delivery is attempted every time the message falls due
    for attempt in range(1, 5):
        message = Message.objects.get()
        with time_machine.travel(message.next_attempt_at + timedelta(seconds=1), tick=False):
            attempted_at = timezone.now()
            report = outbox_deliver_due()
        assert report.claimed == 1
        message.refresh_from_db()
        assert message.attempts == attempt
        if attempt < 4:
            assert message.state == "pending"
            delays.append((message.next_attempt_at - attempted_at).total_seconds())
    # then the delays double (60, 120, 240 s) with at most 25 % jitter
    for index, delay in enumerate(delays):
        base = 60 * 2**index
        assert base <= delay <= base * 1.25
    # and after the fourth attempt the message failed with the reason
    assert message.state == "failed"
    assert "gave up after 4 attempts" in message.last_error
    assert "unreachable" in message.last_error
    assert message.sensitive_context is None


def test_a_template_error_fails_one_message_and_the_batch_goes_on(organisation, smtp_settings):
    people = UserFactory.create_batch(3, organisation=organisation)
    message_enqueue(invitation(organisation, people[0], "ok-1"))
    message_enqueue(invitation(organisation, people[1], "broken", template="no_such_template"))
    message_enqueue(invitation(organisation, people[2], "ok-2"))
    report = outbox_deliver_due()
    assert (report.sent, report.failed) == (2, 1)
    broken = Message.objects.get(idempotency_key="broken")
    assert broken.state == "failed"
    assert broken.last_error.startswith("template error")
    assert sorted(smtp_settings.recipients()) == sorted([people[0].email, people[2].email])


def test_messages_due_later_are_not_sent_now(organisation, smtp_settings):
    person = UserFactory(organisation=organisation)
    message_enqueue(
        invitation(organisation, person, "later", not_before=timezone.now() + timedelta(hours=1))
    )
    assert outbox_deliver_due().claimed == 0
    assert smtp_settings.count() == 0


def test_reminder_muted_after_enqueue_is_cancelled_at_send_time(organisation, smtp_settings):
    from notifications.models import NotificationPreference

    person = UserFactory(organisation=organisation)
    message_enqueue(invitation(organisation, person, "rem", kind="reminder"))
    NotificationPreference.objects.create(user=person, mute_reminders=True)
    outbox_deliver_due()
    assert Message.objects.get().state == "cancelled"
    assert smtp_settings.count() == 0


def test_sweeper_releases_a_dead_claim_and_delivery_completes(organisation, smtp_settings):
    # given a message claimed by a worker that then died
    person = UserFactory(organisation=organisation)
    message_enqueue(invitation(organisation, person, "inv-1"))
    from notifications.services import outbox_claim_due, outbox_sweep

    _, ids = outbox_claim_due(limit=10)
    assert len(ids) == 1
    # when the sweeper runs before the claim timeout, nothing is released
    assert outbox_sweep() == (0, 0)
    # and after the timeout it is released and due again
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=True):
        released, due = outbox_sweep()
        assert (released, due) == (1, 1)
        outbox_deliver_due()
    assert smtp_settings.recipients() == [person.email]
    assert Message.objects.get().attempts == 2


def test_a_run_that_lost_its_claim_cannot_overwrite_the_new_owner(organisation, smtp_settings):
    from notifications.services import outbox_claim_due, outbox_release_stuck

    person = UserFactory(organisation=organisation)
    message_enqueue(invitation(organisation, person, "inv-1"))
    old_token, _ = outbox_claim_due(limit=10)
    outbox_release_stuck(claim_timeout_seconds=0)
    new_token, _ = outbox_claim_due(limit=10)
    assert old_token != new_token
    # the stale token matches no row
    assert not Message.objects.filter(claim_token=old_token).exists()
    assert Message.objects.filter(claim_token=new_token, state="claimed").count() == 1


def test_marking_sent_needs_the_current_claim_and_erases_the_secret(organisation):
    from notifications.services import (
        _Outcome,
        _record,
        _Result,
        outbox_claim_due,
        outbox_release_stuck,
    )

    # given a message whose first claim was released (its run looked dead) and claimed again
    person = UserFactory(organisation=organisation)
    message_enqueue(invitation(organisation, person, "inv-1"))
    old_token, _ = outbox_claim_due(limit=10)
    outbox_release_stuck(claim_timeout_seconds=0)
    new_token, _ = outbox_claim_due(limit=10)
    message = Message.objects.get()
    # when the run holding the stale claim reports "sent", nothing changes
    assert _record(message, old_token, _Result(_Outcome.SENT)) is False
    message.refresh_from_db()
    assert (message.state, message.sent_at) == ("claimed", None)
    assert message.sensitive_context
    # then the current owner's report marks it sent and erases the one-time link
    assert _record(message, new_token, _Result(_Outcome.SENT)) is True
    message.refresh_from_db()
    assert message.state == "sent"
    assert message.sent_at is not None
    assert message.sensitive_context is None
    assert message.claim_token is None
