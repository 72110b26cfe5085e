"""The outbox in Django admin: filterable, read-only, no secrets, "retry now"."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import ChannelSettings, Message
from notifications.services import message_enqueue
from tests.factories import UserFactory
from wellbeing.models import User

from .helpers import invitation

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    admin = User.objects.create_superuser(email="ops@example.test", password="x-long-pass-1")
    client.force_login(admin)
    return client


def test_changelist_filters_by_state(organisation, operator):
    person = UserFactory(organisation=organisation)
    message_enqueue(invitation(organisation, person, "a"))
    message_enqueue(invitation(organisation, person, "b"))
    Message.objects.filter(idempotency_key="b").update(state="failed", last_error="smtp: 550")
    url = reverse("admin:notifications_message_changelist")
    response = operator.get(url, {"state__exact": "failed"})
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


def test_change_page_shows_no_secret_link_and_no_address(organisation, operator):
    person = UserFactory(organisation=organisation)
    message = message_enqueue(invitation(organisation, person, "a"))
    assert message is not None
    response = operator.get(reverse("admin:notifications_message_change", args=[message.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert "secret-a" not in page
    assert person.email not in page


def test_retry_now_requeues_failed_messages_but_not_those_whose_link_was_erased(
    organisation, operator
):
    person = UserFactory(organisation=organisation)
    digest = message_enqueue(
        invitation(organisation, person, "d", kind="digest", sensitive_context=None)
    )
    invite = message_enqueue(invitation(organisation, person, "i"))
    assert digest is not None and invite is not None
    Message.objects.update(state="failed", attempts=8, sensitive_context=None, last_error="x")
    response = operator.post(
        reverse("admin:notifications_message_changelist"),
        {"action": "retry_now", "_selected_action": [digest.pk, invite.pk]},
        follow=True,
    )
    assert response.status_code == 200
    digest.refresh_from_db()
    invite.refresh_from_db()
    assert (digest.state, digest.attempts) == ("pending", 0)
    assert invite.state == "failed"


def test_channel_settings_admin_masks_the_webhook(organisation, operator):
    settings_row = ChannelSettings.objects.create(
        organisation=organisation,
        slack_enabled=True,
        slack_webhook_url="https://hooks.slack.com/services/T0/B0/topsecretWXYZ",
    )
    page = operator.get(
        reverse("admin:notifications_channelsettings_change", args=[settings_row.pk])
    ).content.decode()
    assert "topsecret" not in page
    assert "…WXYZ" in page
