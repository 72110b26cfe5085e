"""Preferences page and one-click unsubscribe (RFC 8058)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from notifications.models import ChannelSettings, Message, NotificationPreference
from notifications.services import message_enqueue, unsubscribe_token_for
from tests.factories import UserFactory

from .helpers import invitation

pytestmark = pytest.mark.django_db


def unsubscribe_url(user) -> str:
    return reverse("notifications:unsubscribe", kwargs={"token": unsubscribe_token_for(user)})


def test_unsubscribe_get_shows_a_confirm_button_and_changes_nothing(organisation, client):
    person = UserFactory(organisation=organisation)
    response = client.get(unsubscribe_url(person))
    assert response.status_code == 200
    assert b'method="post"' in response.content
    assert not NotificationPreference.objects.filter(user=person, mute_reminders=True).exists()


def test_one_click_post_without_csrf_mutes_reminders_and_digests(organisation):
    # given a person with a waiting reminder and a waiting invitation
    person = UserFactory(organisation=organisation)
    message_enqueue(invitation(organisation, person, "rem", kind="reminder"))
    message_enqueue(invitation(organisation, person, "inv"))
    # when a mail client POSTs the RFC 8058 body without any cookie or CSRF token
    client = Client(enforce_csrf_checks=True)
    response = client.post(unsubscribe_url(person), {"List-Unsubscribe": "One-Click"})
    # then reminders and digests are muted, the waiting reminder cancelled, invitations kept
    assert response.status_code == 200
    preference = NotificationPreference.objects.get(user=person)
    assert preference.mute_reminders and preference.mute_digests
    states = dict(Message.objects.values_list("idempotency_key", "state"))
    assert states == {"rem": "cancelled", "inv": "pending"}


def test_tampered_unsubscribe_token_is_not_found(organisation, client):
    person = UserFactory(organisation=organisation)
    token = unsubscribe_token_for(person)
    response = client.post(
        reverse("notifications:unsubscribe", kwargs={"token": token[:-2] + "xx"})
    )
    assert response.status_code == 404
    assert not NotificationPreference.objects.filter(user=person).exists()


def test_preferences_require_login(client):
    response = client.get(reverse("notifications:preferences"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_preferences_are_saved(organisation, client):
    person = UserFactory(organisation=organisation)
    client.force_login(person)
    response = client.post(
        reverse("notifications:preferences"),
        {
            "channel": "email",
            "mute_digests": "on",
            "work_start": "09:00",
            "work_end": "17:30",
            "work_days": ["0", "1", "2", "3"],
        },
    )
    assert response.status_code == 302
    preference = NotificationPreference.objects.get(user=person)
    assert preference.mute_digests and not preference.mute_reminders
    assert preference.work_days == [0, 1, 2, 3]
    assert str(preference.work_end) == "17:30:00"


@pytest.fixture
def _default_language_after():
    yield
    translation.deactivate()


@pytest.mark.usefixtures("_default_language_after")
def test_a_chosen_language_is_kept_and_the_signed_in_pages_follow_it(organisation, client):
    # given a person whose browser asks for English
    person = UserFactory(organisation=organisation)
    client.force_login(person)
    english = {"HTTP_ACCEPT_LANGUAGE": "en"}
    page = client.get(reverse("notifications:preferences"), **english).content.decode()
    assert "My organisation&#x27;s language (English)" in page
    # when they choose German on their preferences
    response = client.post(
        reverse("notifications:preferences"),
        {"language": "de", "channel": "email", "work_start": "09:00", "work_end": "17:30",
         "work_days": ["0", "1"]},
        follow=True,
        **english,
    )  # fmt: skip
    # then it is kept, confirmed in German, and the pages follow it whatever the browser asks
    person.refresh_from_db()
    assert person.language == "de"
    assert "Ihre Benachrichtigungseinstellungen wurden gespeichert." in response.content.decode()
    dashboards = client.get(reverse("dashboards:landing"), **english)
    assert dashboards["Content-Language"] == "de"
    assert '<html lang="de">' in dashboards.content.decode()


def test_an_unknown_language_is_refused_next_to_the_field(organisation, client):
    person = UserFactory(organisation=organisation, language="")
    client.force_login(person)
    response = client.post(
        reverse("notifications:preferences"),
        {"language": "xx", "channel": "email", "work_start": "09:00", "work_end": "17:30",
         "work_days": ["0"]},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    person.refresh_from_db()
    assert person.language == ""
    assert not NotificationPreference.objects.filter(user=person).exists()


def test_preferences_offer_only_channels_the_organisation_uses(organisation, client):
    ChannelSettings.objects.create(organisation=organisation, teams_enabled=True)
    person = UserFactory(organisation=organisation)
    client.force_login(person)
    page = client.get(reverse("notifications:preferences")).content.decode()
    assert 'value="teams"' in page
    assert 'value="slack"' not in page
    response = client.post(
        reverse("notifications:preferences"),
        {"channel": "slack", "work_start": "08:00", "work_end": "18:00", "work_days": ["0"]},
    )
    assert response.status_code == 200
    assert not NotificationPreference.objects.filter(user=person).exists()


def test_preferences_refuse_a_foreign_webhook_host(organisation, client):
    ChannelSettings.objects.create(organisation=organisation, slack_enabled=True)
    person = UserFactory(organisation=organisation)
    client.force_login(person)
    response = client.post(
        reverse("notifications:preferences"),
        {
            "channel": "slack",
            "slack_webhook_url": "https://evil.example/collect",
            "work_start": "08:00",
            "work_end": "18:00",
            "work_days": ["0"],
        },
    )
    assert response.status_code == 200
    assert not NotificationPreference.objects.filter(user=person).exists()
