"""The admins' pages in German (the organisation's language), and form labels that follow each
request's language."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse
from django.utils import translation

GERMAN_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "de-DE,de;q=0.9"}


def _organisation_reads(world, language):
    world.organisation.locale = language
    world.organisation.save(update_fields=["locale"])


@pytest.fixture(autouse=True)
def _back_to_the_default_language() -> Iterator[None]:
    """The locale middleware leaves German active in the test thread; later tests expect none."""
    yield
    translation.deactivate()


def test_the_people_page_is_rendered_in_german(admin_client, world):
    _organisation_reads(world, "de")
    html = admin_client.get(reverse("manage:people")).content.decode()
    assert '<html lang="de">' in html
    assert "Personen aus einer Tabelle importieren" in html
    assert "Import people from a spreadsheet" not in html
    assert "Deaktivierte einbeziehen" in html and "Include deactivated" not in html


def test_form_labels_follow_the_language_of_each_request(admin_client, world):
    # the metric form is defined at import time: its labels must still be translated per request
    url = reverse("manage:metrics")
    _organisation_reads(world, "de")
    german = admin_client.get(url).content.decode()
    _organisation_reads(world, "en")
    english = admin_client.get(url, **GERMAN_BROWSER).content.decode()
    assert "Niedrigster gültiger Wert" in german and "Lowest valid value" not in german
    assert "Lowest valid value" in english and "Niedrigster gültiger Wert" not in english


def test_the_threshold_and_channel_forms_are_labelled_in_german(admin_client, world):
    _organisation_reads(world, "de")
    flags = admin_client.get(reverse("manage:flag_settings")).content.decode()
    assert "Schwelle für hohen Stress" in flags and "High stress level" not in flags
    channels = admin_client.get(reverse("manage_checkins:channels")).content.decode()
    assert "Standardkanal" in channels and "Default channel" not in channels
