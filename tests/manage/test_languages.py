"""One language rule for a person everywhere (their choice, else their organisation's), and the
organisation's language and timezone set by its admins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse
from django.utils import translation

from notifications.models import Message
from notifications.rendering import TemplateSet, render_message
from tests.factories import OrganisationFactory, UserFactory
from wellbeing.languages import reading_language, supported_language
from wellbeing.models import AuditEntry

ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en"}
GERMAN_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9"}


@pytest.fixture(autouse=True)
def _back_to_the_default_language() -> Iterator[None]:
    yield
    translation.deactivate()


@pytest.mark.parametrize(
    ("code", "found"),
    [("de", "de"), ("de-DE", "de"), ("de_at", "de"), ("EN-gb", "en"), ("fr", None), ("", None)],
)
def test_supported_language_reads_regional_codes(code, found):
    assert supported_language(code) == found


@pytest.mark.django_db
def test_the_person_choice_comes_first_then_the_organisation():
    german = OrganisationFactory(locale="de")
    assert reading_language(UserFactory(organisation=german, language=""), german) == "de"
    assert reading_language(UserFactory(organisation=german, language="en"), german) == "en"
    assert reading_language(None, None) == "en"  # LANGUAGE_CODE


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("own", "expected"), [("", "de"), ("en", "en")], ids=["organisation's", "own choice"]
)
def test_every_page_a_person_reads_follows_the_same_rule(client, own, expected):
    # given a person of a German-reading organisation, whose browser asks for English
    organisation = OrganisationFactory(locale="de")
    person = UserFactory(organisation=organisation, language=own)
    client.force_login(person)
    # when they open their check-ins, the dashboards' landing page and their preferences
    for name in ("checkins:mine", "dashboards:landing", "notifications:preferences"):
        response = client.get(reverse(name), **ENGLISH_BROWSER)
        # then each is in the same language
        assert response["Content-Language"] == expected, name
        assert f'<html lang="{expected}">' in response.content.decode(), name


@pytest.mark.django_db
def test_pages_for_people_outside_an_organisation_follow_the_browser(client):
    assert client.get(reverse("login"), **GERMAN_BROWSER)["Content-Language"] == "de"
    operator = UserFactory(organisation=None, language="")
    client.force_login(operator)
    assert client.get(reverse("login"), **GERMAN_BROWSER)["Content-Language"] == "de"


@pytest.mark.django_db
def test_messages_follow_the_organisation_for_people_without_a_choice():
    organisation = OrganisationFactory(locale="de")
    message = Message(
        organisation=organisation,
        kind="invitation",
        template="invitation",
        recipient=UserFactory(organisation=organisation, language=""),
        context={"closes_on": "2026-12-04"},
        sensitive_context={"url": "https://p.test/t/1"},
        idempotency_key="inv-org-de",
    )
    rendered = render_message(message, unsubscribe_url="https://p.test/u", templates=TemplateSet())
    assert rendered.button_label == "Check-in starten"


@pytest.mark.django_db
def test_admins_set_the_organisation_language_and_timezone(admin_client, world):
    # when an admin saves German and New York on the overview page
    response = admin_client.post(
        reverse("manage:overview"), {"locale": "de", "timezone": "America/New_York"}, follow=True
    )
    # then both are kept and audited with what they were, and the next page reads German
    world.organisation.refresh_from_db()
    assert (world.organisation.locale, world.organisation.timezone) == ("de", "America/New_York")
    entry = AuditEntry.objects.get(action="organisation.settings")
    assert entry.actor == world.admin
    assert entry.after == {"locale": "de", "timezone": "America/New_York"}
    assert entry.before["locale"] == "en"
    html = response.content.decode()
    assert '<html lang="de">' in html
    assert "Einstellungen der Organisation gespeichert." in html
    assert '<a href="/manage/" aria-current="page">Überblick</a>' in html
    # and the employees without a choice of their own read German too
    assert reading_language(world.employee, world.organisation) == "de"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"locale": "fr", "timezone": "America/New_York"}, "locale"),
        ({"locale": "de", "timezone": "Mars/Olympus"}, "timezone"),
        ({"locale": "de"}, "timezone"),
    ],
)
def test_unknown_settings_are_refused_next_to_the_field(admin_client, world, data, field):
    response = admin_client.post(reverse("manage:overview"), data)
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    world.organisation.refresh_from_db()
    assert world.organisation.locale == "en"
    assert not AuditEntry.objects.filter(action="organisation.settings").exists()


@pytest.mark.django_db
def test_only_admins_change_their_own_organisation_settings(client, world):
    for person in (world.lead, world.employee):
        client.force_login(person)
        response = client.post(reverse("manage:overview"), {"locale": "de", "timezone": "UTC"})
        assert response.status_code == 404
    client.force_login(world.other_admin)
    client.post(reverse("manage:overview"), {"locale": "de", "timezone": "UTC"})
    world.organisation.refresh_from_db()
    world.other_admin.organisation.refresh_from_db()
    assert world.organisation.locale == "en"
    assert world.other_admin.organisation.locale == "de"
