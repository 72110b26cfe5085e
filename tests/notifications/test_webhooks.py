"""Slack and Teams delivery through a real local HTTP server standing in for the webhooks."""

from __future__ import annotations

import pytest
import time_machine
from django.core.exceptions import ValidationError

from notifications.models import ChannelSettings, Message, NotificationPreference
from notifications.services import OutgoingMessage, message_enqueue, outbox_deliver_due
from notifications.webhooks import (
    mask_url,
    validate_slack_webhook_url,
    validate_teams_webhook_url,
)
from tests.factories import UserFactory

from .helpers import WORKING_HOURS, invitation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _working_hours():
    with time_machine.travel(WORKING_HOURS, tick=True):
        yield


def channel_alert(organisation, channel: str, key: str = "flag-1", **context) -> Message:
    message = message_enqueue(
        OutgoingMessage(
            organisation_id=organisation.pk,
            kind="flag_alert",
            recipient_id=None,
            template="flag_alert",
            context={
                "team_name": "Support <Tier 1> & Co",
                "url": "https://pulse.example/f/1",
                **context,
            },
            idempotency_key=key,
            channel=channel,
        )
    )
    assert message is not None
    return message


@pytest.fixture
def slack_org(organisation, webhook_server):
    ChannelSettings.objects.create(
        organisation=organisation, slack_enabled=True, slack_webhook_url=webhook_server.url()
    )
    return organisation


@pytest.fixture
def teams_org(organisation, webhook_server):
    ChannelSettings.objects.create(
        organisation=organisation,
        teams_enabled=True,
        teams_webhook_url=webhook_server.url("/teams"),
    )
    return organisation


def test_slack_alert_is_posted_with_escaped_text_and_a_button(slack_org, webhook_server):
    channel_alert(slack_org, "slack")
    report = outbox_deliver_due()
    assert report.sent == 1
    path, payload = webhook_server.requests[0]
    assert path == "/services/T000/B000/secret"
    section, actions = payload["blocks"]
    assert "Support &lt;Tier 1&gt; &amp; Co" in section["text"]["text"]
    assert "<Tier 1>" not in section["text"]["text"]
    button = actions["elements"][0]
    assert button["type"] == "button"
    assert button["url"] == "https://pulse.example/f/1"
    assert Message.objects.get().state == "sent"


def test_teams_alert_is_an_adaptive_card_with_an_open_url_button(teams_org, webhook_server):
    channel_alert(teams_org, "teams")
    outbox_deliver_due()
    _, payload = webhook_server.requests[0]
    card = payload["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["actions"][0] == {
        "type": "Action.OpenUrl",
        "title": "See the evidence",
        "url": "https://pulse.example/f/1",
    }
    assert "&lt;Tier 1&gt;" in card["body"][0]["text"]


def test_webhook_4xx_fails_at_once_with_the_reason_and_without_the_url(slack_org, webhook_server):
    webhook_server.status, webhook_server.body = 400, "invalid_blocks"
    channel_alert(slack_org, "slack")
    outbox_deliver_due()
    message = Message.objects.get()
    assert message.state == "failed"
    assert message.attempts == 1
    assert message.last_error == "slack: HTTP 400 invalid_blocks"
    assert "secret" not in message.last_error


def test_a_webhook_reply_echoing_a_link_keeps_no_token(slack_org, webhook_server):
    # an endpoint that answers an error with the request it got (links and their tokens)
    webhook_server.status = 400
    webhook_server.body = "bad: https://pulse.example/checkin/t/Tok3n-secret/ and /unsubscribe/x:y/"
    channel_alert(slack_org, "slack")
    outbox_deliver_due()
    message = Message.objects.get()
    assert message.state == "failed"
    assert "Tok3n-secret" not in message.last_error and "x:y" not in message.last_error
    assert "/checkin/t/[redacted]/" in message.last_error


def test_webhook_5xx_is_retried(teams_org, webhook_server):
    webhook_server.status, webhook_server.body = 503, "busy"
    channel_alert(teams_org, "teams")
    outbox_deliver_due()
    message = Message.objects.get()
    assert message.state == "pending"
    assert message.last_error == "teams: HTTP 503 busy"
    assert message.next_attempt_at > WORKING_HOURS


def test_webhook_timeout_is_retried(slack_org, webhook_server):
    webhook_server.hang = True
    channel_alert(slack_org, "slack")
    outbox_deliver_due()
    message = Message.objects.get()
    assert message.state == "pending"
    assert message.last_error.startswith("slack: timeout")


def test_webhook_429_is_retried_not_failed(slack_org, webhook_server):
    webhook_server.status = 429
    channel_alert(slack_org, "slack")
    outbox_deliver_due()
    assert Message.objects.get().state == "pending"


def test_personal_slack_invitation_goes_to_the_persons_own_webhook(organisation, webhook_server):
    ChannelSettings.objects.create(organisation=organisation, slack_enabled=True)
    person = UserFactory(organisation=organisation)
    NotificationPreference.objects.create(
        user=person, channel="slack", slack_webhook_url=webhook_server.url("/personal")
    )
    message_enqueue(invitation(organisation, person, "inv-1"))
    outbox_deliver_due()
    path, payload = webhook_server.requests[0]
    assert path == "/personal"
    assert payload["blocks"][1]["elements"][0]["url"].endswith("secret-inv-1")
    assert Message.objects.get().sensitive_context is None


def test_slack_message_falls_back_to_email_when_the_webhook_was_removed(
    organisation, webhook_server, smtp_settings
):
    ChannelSettings.objects.create(organisation=organisation, slack_enabled=True)
    person = UserFactory(organisation=organisation)
    preference = NotificationPreference.objects.create(
        user=person, channel="slack", slack_webhook_url=webhook_server.url("/personal")
    )
    message_enqueue(invitation(organisation, person, "inv-1"))
    preference.slack_webhook_url = ""
    preference.save()
    outbox_deliver_due()
    assert webhook_server.requests == []
    assert smtp_settings.recipients() == [person.email]


def test_channel_message_without_any_destination_fails_with_a_reason(organisation):
    channel_alert(organisation, "slack")
    outbox_deliver_due()
    message = Message.objects.get()
    assert message.state == "failed"
    assert message.last_error.startswith("no destination")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T0/B0/xyz",
    ],
)
def test_slack_webhook_on_the_slack_host_is_valid(url):
    validate_slack_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T0/B0/xyz",
        "https://hooks.slack.com.evil.example/services/x",
        "https://evil.example/hooks.slack.com",
        "http://127.0.0.1:9/x",
    ],
)
def test_slack_webhook_elsewhere_is_refused(url, settings):
    settings.PULSE_WEBHOOK_ALLOW_LOCALHOST = False
    settings.DEBUG = False
    with pytest.raises(ValidationError):
        validate_slack_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.webhook.office.com/webhookb2/abc",
        "https://prod-12.westeurope.logic.azure.com:443/workflows/abc",
    ],
)
def test_teams_webhook_hosts_are_valid(url):
    validate_teams_webhook_url(url)


@pytest.mark.parametrize(
    "url", ["https://webhook.office.com.evil.example/x", "https://logic.azure.com.evil/x"]
)
def test_teams_lookalike_hosts_are_refused(url):
    with pytest.raises(ValidationError):
        validate_teams_webhook_url(url)


def test_local_http_webhook_is_allowed_only_when_configured(settings):
    settings.DEBUG = False
    settings.PULSE_WEBHOOK_ALLOW_LOCALHOST = True
    validate_slack_webhook_url("http://127.0.0.1:8081/x")
    settings.PULSE_WEBHOOK_ALLOW_LOCALHOST = False
    with pytest.raises(ValidationError):
        validate_slack_webhook_url("http://127.0.0.1:8081/x")


def test_webhook_urls_are_masked():
    assert mask_url("https://hooks.slack.com/services/T0/B0/abcdWXYZ") == (
        "https://hooks.slack.com/…WXYZ"
    )
