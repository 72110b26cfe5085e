"""A lead's team dashboard and an admin's organisation overview in German: the organisation's
language, which every page a person of it reads follows unless they chose their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import translation

from tests.dashboards.conftest import FlagFactory, record_history
from wellbeing.flags import SUGGESTED_ACTIONS
from wellbeing.models import Flag

pytestmark = pytest.mark.django_db

ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _in_german(org):
    org.locale = "de"
    org.save(update_fields=["locale"])


@pytest.fixture(autouse=True)
def _back_to_the_default_language() -> Iterator[None]:
    """The locale middleware leaves German active in the test thread; later tests expect none."""
    yield
    translation.deactivate()


def test_the_team_dashboard_is_rendered_in_german(client, org, support, lead):
    # given closed cycles and an open flag
    record_history(organisation=org, teams=[support], cycles=3)
    FlagFactory(
        team=support,
        kind=Flag.Kind.PARTICIPATION_DROP,
        suggested_actions=[SUGGESTED_ACTIONS["workload_review"]],
    )
    client.force_login(lead)
    # when the organisation reads German (and the lead's browser asks for English)
    _in_german(org)
    html = client.get(f"/dashboards/teams/{support.public_id}/", **ENGLISH_BROWSER).content.decode()
    # then headings, flag wording, table labels and the form are German
    assert '<html lang="de">' in html
    assert "Verlauf der Maßnahmen" in html and "Action history" not in html
    assert "Rückgang der Teilnahme" in html and "Participation drop" not in html
    assert "Diesen Hinweis zur Kenntnis nehmen" in html and "Acknowledge this flag" not in html
    assert "Teilnahme als Tabelle" in html and "Participation as a table" not in html
    assert "Fehlende Unterstützung" in html and "Lack of support" not in html
    # and the suggested next steps, stored in English as the flag's record, are shown in German
    assert "Überprüfen Sie Arbeitslast und Personalausstattung" in html
    assert "Review workload and staffing" not in html


def test_the_organisation_overview_is_rendered_in_german(client, org, support, admin):
    record_history(organisation=org, teams=[support], cycles=2)
    FlagFactory(team=support, severity=Flag.Severity.CRITICAL)
    client.force_login(admin)
    _in_german(org)
    html = client.get("/dashboards/organisation/", **ENGLISH_BROWSER).content.decode()
    assert "Offene Hinweise, die schwerwiegendsten zuerst" in html
    assert "Open flags, most severe first" not in html
    assert "Kritisch" in html and "Gesamte Organisation" in html
    assert "Teams nach Dimension, letzter Check-in" in html
