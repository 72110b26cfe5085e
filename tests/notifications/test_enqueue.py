"""Writing to the outbox: idempotency, channels, mutes, cancelling, and query counts."""

from __future__ import annotations

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications.models import ChannelSettings, Message, NotificationPreference
from notifications.services import (
    OutgoingMessage,
    message_cancel_pending,
    message_enqueue,
    messages_cancel_pending_by_key_part,
    messages_enqueue_bulk,
)
from tests.factories import OrganisationFactory, UserFactory
from wellbeing.errors import ServiceError

from .helpers import WORKING_HOURS, invitation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _working_hours():
    with time_machine.travel(WORKING_HOURS, tick=True):
        yield


def test_enqueue_writes_a_pending_message_due_now(organisation):
    # given a person
    person = UserFactory(organisation=organisation)
    # when an invitation is enqueued during working hours
    message = message_enqueue(invitation(organisation, person, "inv-1"))
    # then it is pending, due now, by e-mail, holding the link in the sensitive context
    assert message is not None
    message.refresh_from_db()
    assert message.state == "pending"
    assert message.channel == "email"
    assert message.sensitive_context == {"url": "https://pulse.example/checkin/t/secret-inv-1"}
    assert message.next_attempt_at <= WORKING_HOURS.replace(minute=1)


def test_enqueue_with_an_existing_key_returns_none_and_changes_nothing(organisation):
    person = UserFactory(organisation=organisation)
    first = message_enqueue(invitation(organisation, person, "inv-1"))
    # when the same key is enqueued again with another template
    again = message_enqueue(invitation(organisation, person, "inv-1", template="reminder"))
    # then nothing is written
    assert first is not None and again is None
    assert Message.objects.get().template == "invitation"


def test_enqueue_queues_delivery_only_on_commit(organisation, django_capture_on_commit_callbacks):
    person = UserFactory(organisation=organisation)
    with django_capture_on_commit_callbacks() as callbacks:
        message_enqueue(invitation(organisation, person, "inv-1"))
    assert len(callbacks) == 1


def test_bulk_enqueue_counts_inserted_rows_and_skips_duplicate_keys(organisation):
    people = UserFactory.create_batch(3, organisation=organisation)
    message_enqueue(invitation(organisation, people[0], "inv-0"))
    # when a batch repeats one existing key and one key twice
    batch = [invitation(organisation, p, f"inv-{i}") for i, p in enumerate(people)]
    batch.append(invitation(organisation, people[2], "inv-2"))
    inserted = messages_enqueue_bulk(batch, batch_size=2)
    # then only the two new keys are inserted
    assert inserted == 2
    assert Message.objects.count() == 3


def test_bulk_enqueue_of_new_keys_copies_without_looking_them_up(organisation):
    people = UserFactory.create_batch(3, organisation=organisation)
    message_enqueue(invitation(organisation, people[0], "inv-old"))
    batch = [invitation(organisation, p, f"inv-new-{i}") for i, p in enumerate(people)]
    # when keys the caller has just minted are enqueued as new
    with CaptureQueriesContext(connection) as queries:
        inserted = messages_enqueue_bulk(batch, new_keys=True)
    # then all are written, and no query looked for them first
    assert inserted == 3
    assert Message.objects.filter(idempotency_key__startswith="inv-new-").count() == 3
    assert not [q for q in queries if "inv-new-0" in q["sql"] and "SELECT" in q["sql"]]
    # and a key that did exist fails the caller's transaction, as a duplicate insert does
    with pytest.raises(IntegrityError), transaction.atomic():
        messages_enqueue_bulk([invitation(organisation, people[1], "inv-old")], new_keys=True)
    assert Message.objects.filter(idempotency_key="inv-old").count() == 1


def test_bulk_enqueue_of_a_thousand_schedules_one_callback_and_few_queries(
    organisation, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    people = UserFactory.create_batch(10, organisation=organisation)
    batch = [invitation(organisation, people[i % 10], f"inv-{i}") for i in range(1000)]
    # when a thousand invitations are enqueued in batches of 500
    with django_capture_on_commit_callbacks() as callbacks, django_assert_max_num_queries(60):
        inserted = messages_enqueue_bulk(batch, batch_size=500)
    # then a bounded number of queries (no per-message query; SQLite splits inserts), one publish
    assert inserted == 1000
    assert len(callbacks) == 1


def test_enqueue_rolled_back_with_the_callers_transaction_leaves_nothing(organisation):
    person = UserFactory(organisation=organisation)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        message_enqueue(invitation(organisation, person, "inv-1"))
        raise Boom
    assert not Message.objects.exists()


def test_invalid_kind_is_refused_with_a_service_error(organisation):
    person = UserFactory(organisation=organisation)
    with pytest.raises(ServiceError) as error:
        message_enqueue(invitation(organisation, person, "x", kind="gossip"))
    assert "kind" in error.value.fields


def test_template_name_cannot_escape_the_template_folder(organisation):
    person = UserFactory(organisation=organisation)
    with pytest.raises(ServiceError) as error:
        message_enqueue(invitation(organisation, person, "x", template="../../base"))
    assert "template" in error.value.fields


def test_muted_reminder_is_recorded_as_cancelled_without_its_secret(organisation):
    person = UserFactory(organisation=organisation)
    NotificationPreference.objects.create(user=person, mute_reminders=True)
    message = message_enqueue(invitation(organisation, person, "rem-1", kind="reminder"))
    assert message is not None
    message.refresh_from_db()
    assert message.state == "cancelled"
    assert message.sensitive_context is None


def test_invitations_cannot_be_muted(organisation):
    person = UserFactory(organisation=organisation)
    NotificationPreference.objects.create(user=person, mute_reminders=True, mute_digests=True)
    message = message_enqueue(invitation(organisation, person, "inv-1"))
    assert message is not None and message.state == "pending"


def test_slack_reaches_a_person_only_through_their_personal_webhook(organisation):
    # given an organisation using Slack, one person with a personal webhook and one without
    ChannelSettings.objects.create(organisation=organisation, slack_enabled=True)
    with_hook, without_hook = UserFactory.create_batch(2, organisation=organisation)
    NotificationPreference.objects.create(
        user=with_hook, channel="slack", slack_webhook_url="https://hooks.slack.com/services/A/B/C"
    )
    NotificationPreference.objects.create(user=without_hook, channel="slack")
    # when both get a reminder
    a = message_enqueue(invitation(organisation, with_hook, "a", kind="reminder"))
    b = message_enqueue(invitation(organisation, without_hook, "b", kind="reminder"))
    # then e-mail is the fallback for the one without a webhook
    assert a is not None and a.channel == "slack"
    assert b is not None and b.channel == "email"


def test_personal_channel_is_ignored_when_the_organisation_does_not_allow_it(organisation):
    ChannelSettings.objects.create(organisation=organisation, slack_enabled=False)
    person = UserFactory(organisation=organisation)
    NotificationPreference.objects.create(
        user=person, channel="slack", slack_webhook_url="https://hooks.slack.com/services/A/B/C"
    )
    message = message_enqueue(invitation(organisation, person, "a", kind="reminder"))
    assert message is not None and message.channel == "email"


def test_channel_message_goes_to_the_organisations_webhook(organisation):
    ChannelSettings.objects.create(
        organisation=organisation,
        teams_enabled=True,
        teams_webhook_url="https://acme.webhook.office.com/webhookb2/x",
    )
    message = message_enqueue(
        OutgoingMessage(
            organisation_id=organisation.pk,
            kind="flag_alert",
            recipient_id=None,
            template="flag_alert",
            context={"team_name": "Support"},
            idempotency_key="flag-1",
            channel="teams",
        )
    )
    assert message is not None and message.channel == "teams"


def test_cancel_pending_by_prefix_leaves_other_and_sent_messages(organisation):
    person = UserFactory(organisation=organisation)
    for key in ["cycle-7:reminder:1", "cycle-7:reminder:2", "cycle-8:reminder:1"]:
        message_enqueue(invitation(organisation, person, key, kind="reminder"))
    Message.objects.filter(idempotency_key="cycle-7:reminder:2").update(state="sent")
    # when reminders of cycle 7 are no longer needed
    cancelled = message_cancel_pending(idempotency_key_prefix="cycle-7:")
    # then only the pending one of cycle 7 is cancelled, and its secret erased
    assert cancelled == 1
    states = dict(Message.objects.values_list("idempotency_key", "state"))
    assert states == {
        "cycle-7:reminder:1": "cancelled",
        "cycle-7:reminder:2": "sent",
        "cycle-8:reminder:1": "pending",
    }
    assert Message.objects.get(idempotency_key="cycle-7:reminder:1").sensitive_context is None


def test_cancel_pending_refuses_an_empty_prefix():
    with pytest.raises(ServiceError):
        message_cancel_pending(idempotency_key_prefix="")


def test_cancel_pending_by_key_part_cancels_the_organisations_pending_matches_with_the_reason(
    organisation,
):
    # given an event's messages, keyed with its id inside, one sent already, and the same id
    # in another organisation's key
    person = UserFactory(organisation=organisation)
    for key in ["sum:e7:1", "flag:3:opened:e7:1", "flag:4:opened:e7:1", "sum:e8:1", "inv:e7x"]:
        message_enqueue(invitation(organisation, person, key, kind="flag_alert"))
    Message.objects.filter(idempotency_key="flag:4:opened:e7:1").update(state="sent")
    other = OrganisationFactory()
    message_enqueue(invitation(other, UserFactory(organisation=other), "sum:e7:2"))
    # when the event's messages are cancelled
    cancelled = messages_cancel_pending_by_key_part(
        organisation_id=organisation.pk, key_parts=[":e7:"], reason="a test's reason"
    )
    # then only this organisation's pending ones, with the reason, their secret erased
    assert cancelled == 2
    rows = {m.idempotency_key: m for m in Message.objects.all()}
    assert {key for key, m in rows.items() if m.state == "cancelled"} == {
        "sum:e7:1",
        "flag:3:opened:e7:1",
    }
    assert rows["sum:e7:1"].last_error == "a test's reason"
    assert rows["sum:e7:1"].sensitive_context is None
    assert (rows["flag:4:opened:e7:1"].state, rows["sum:e7:2"].state) == ("sent", "pending")


def test_cancel_pending_by_key_part_with_no_parts_cancels_nothing(organisation):
    message_enqueue(invitation(organisation, UserFactory(organisation=organisation), "sum:e7:1"))
    assert (
        messages_cancel_pending_by_key_part(
            organisation_id=organisation.pk, key_parts=[], reason="r"
        )
        == 0
    )
    assert Message.objects.get().state == "pending"


@pytest.mark.parametrize(("parts", "reason"), [([""], "r"), ([":e7:", ""], "r"), ([":e7:"], "")])
def test_cancel_pending_by_key_part_refuses_an_empty_part_or_reason(organisation, parts, reason):
    with pytest.raises(ServiceError):
        messages_cancel_pending_by_key_part(
            organisation_id=organisation.pk, key_parts=parts, reason=reason
        )
