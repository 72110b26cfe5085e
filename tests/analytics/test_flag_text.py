"""Flag explanations are written from the evidence's conclusions, in the reader's language: the
English record, German on a German reader's dashboard and in their alert."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils import translation

from notifications.models import Message
from notifications.rendering import TemplateSet, render_message
from tests.analytics.test_flags import _drifting_history
from tests.dashboards.conftest import FlagFactory
from tests.factories import OrganisationFactory, TeamLeadFactory, UserFactory
from wellbeing import flag_text
from wellbeing.models import Flag

HIGH_STRESS = {"threshold": 70, "consecutive_cycles": 3, "statistic": 78.6, "cycles": []}
RISING = {
    "status": "signal",
    "baseline_source": "team",
    "shifted_cycles": 4,
    "trend": "up",
    "cycles": [],
}
EMPATHY = {
    **RISING,
    "shifted_cycles": 1,
    "baseline_source": "organisation",
    "trend": "unclear",
    "client_burnout": {"rising": False, "latest": 66.5, "cycles": []},
    "customer": {
        "name": "CSAT",
        "unit": "%",
        "direction": "higher_is_better",
        "first": 88.0,
        "latest": 81.25,
        "weeks": [{}] * 8,
        "slope_per_week": -0.9,
    },
}
PARTICIPATION = {"latest_rate": 0.412, "usual_rate": 0.735, "cycles": []}


def _text(kind, evidence, language):
    with translation.override(language):
        return flag_text.explain(flag_text.facts(kind, evidence))


@pytest.mark.parametrize(
    ("kind", "evidence", "english"),
    [
        (
            "high_stress",
            HIGH_STRESS,
            "The team's stress index has been above 70 (the level your organisation set) for at "
            "least 3 check-ins in a row; it is now 79.",
        ),
        (
            "high_stress",
            {**HIGH_STRESS, "consecutive_cycles": 1},
            "The team's stress index has been above 70 (the level your organisation set) for at "
            "least 1 check-in in a row; it is now 79.",
        ),
        (
            "rising_stress",
            RISING,
            "Stress has risen above its own usual level and has stayed above the control limit "
            "for 4 cycles, and the recent trend is upward.",
        ),
        (
            "rising_stress",
            {**RISING, "trend": None, "shifted_cycles": 1},
            "Stress has risen above its own usual level and has stayed above the control limit "
            "for 1 cycle.",
        ),
        (
            "empathy_risk",
            EMPATHY,
            "This customer-facing team's stress is rising and client-related burnout is high (66 "
            "of 100). Stressed people have less empathy to give, so the quality of customer "
            "contacts may suffer. Stress has risen above the organisation's usual level and has "
            "stayed above the control limit for 1 cycle, and the recent trend is not clearly "
            "upward. Supporting evidence from customer service: CSAT has fallen from 88% to "
            "81.25% over the last 8 weeks (-0.90% a week). This supports, but does not prove, "
            "that the strain is reaching customers.",
        ),
        (
            "empathy_risk",
            {
                **EMPATHY,
                "status": "in_control",
                "baseline_source": "team",
                "trend": "up",
                "client_burnout": {"rising": True, "latest": 50.0},
                "customer": None,
            },
            "This customer-facing team's stress is rising and client-related burnout is rising "
            "too. Stressed people have less empathy to give, so the quality of customer contacts "
            "may suffer. Stress is within the normal range of its own usual level, and the "
            "recent trend is upward.",
        ),
        (
            "participation_drop",
            PARTICIPATION,
            "Participation fell to 41% against a usual 74%. A falling response rate can mean "
            "people are overloaded or no longer trust the check-in.",
        ),
    ],
)
def test_each_kind_is_written_from_its_evidence(kind, evidence, english):
    assert _text(kind, evidence, "en") == english
    assert flag_text.record(kind, evidence) == english


def test_german_readers_get_german_sentences_and_number_formats():
    assert _text("high_stress", HIGH_STRESS, "de") == (
        "Der Stressindex des Teams liegt seit mindestens 3 Check-ins in Folge über 70 (dem von "
        "Ihrer Organisation festgelegten Wert); derzeit beträgt er 79."
    )
    empathy = _text("empathy_risk", EMPATHY, "de")
    assert empathy.startswith(
        "Der Stress in diesem Team mit Kundenkontakt steigt, und das kundenbezogene Burnout ist "
        "hoch (66 von 100)."
    )
    assert (
        "CSAT ist in den letzten 8 Wochen von 88% auf 81,25% gesunken (-0,90% pro Woche)."
        in empathy
    )
    assert _text("participation_drop", PARTICIPATION, "de").startswith(
        "Die Teilnahme ist auf 41 % gefallen, üblich sind 74 %."
    )
    assert _text("rising_stress", RISING, "de") == (
        "Stress ist über das eigene übliche Niveau des Teams gestiegen und liegt seit 4 "
        "Check-ins über der Kontrollgrenze, und der jüngste Trend zeigt nach oben."
    )


@pytest.mark.parametrize(
    ("kind", "evidence"),
    [
        ("empathy_risk", {"statistic": "ewma", "threshold": 3.0}),  # stored by an older release
        ("rising_stress", {**RISING, "trend": "sideways"}),
        ("high_stress", {"threshold": 70}),
        ("participation_drop", {"latest_rate": "n/a", "usual_rate": 0.7}),
        ("no_such_kind", RISING),
        ("rising_stress", None),
    ],
)
def test_evidence_without_the_conclusions_gives_no_text(kind, evidence):
    assert flag_text.facts(kind, evidence) is None
    assert flag_text.record(kind, evidence) == ""


@pytest.mark.django_db
def test_a_flag_from_an_older_release_shows_its_stored_explanation():
    flag = FlagFactory(evidence={"statistic": "ewma", "threshold": 3.0})
    with translation.override("de"):
        assert flag.explanation_text == flag.explanation
    rendered = Template(
        "{% load flag_text %}{% flag_explanation facts fallback %}|"
        "{% flag_explanation broken fallback %}"
    ).render(Context({"facts": None, "broken": {"kind": "high_stress"}, "fallback": "stored"}))
    assert rendered == "stored|stored"


@pytest.mark.django_db
def test_the_close_stores_the_english_record_and_german_readers_see_german(client):
    # given a customer-facing team whose stress and client burnout drift up, and its lead, who
    # reads German
    organisation = OrganisationFactory(anonymity_threshold=5)
    rising, _, changes = _drifting_history(organisation)
    flag = Flag.objects.get(team=rising, kind=Flag.Kind.EMPATHY_RISK)
    lead = TeamLeadFactory(team=rising).user
    lead.language = "de"
    lead.save(update_fields=["language"])

    # then the stored explanation is the English record of the evidence
    assert flag.explanation == flag_text.record(flag.kind, flag.evidence)
    assert flag.explanation.startswith("This customer-facing team's stress is rising")

    # and the lead's dashboard shows it in German
    client.force_login(lead)
    html = client.get(f"/dashboards/teams/{rising.public_id}/").content.decode()
    assert "Der Stress in diesem Team mit Kundenkontakt steigt" in html
    assert "customer-facing team&#x27;s stress" not in html

    # and the alert the close queued reads German for a German recipient, English otherwise
    opened = next(c for c in changes if c.kind == "empathy_risk" and c.change == "opened")
    assert opened.context["explanation_facts"]["kind"] == "empathy_risk"
    texts = {}
    for language in ("de", "en"):
        recipient = UserFactory(organisation=organisation, language=language)
        message = Message(
            organisation=organisation,
            kind="flag_alert",
            template="flag_alert",
            recipient=recipient,
            context=opened.context,
            idempotency_key=f"flag-text-{language}",
        )
        texts[language] = render_message(
            message, unsubscribe_url="https://p.test/u", templates=TemplateSet(), chat=True
        )
    assert "Der Stress in diesem Team mit Kundenkontakt steigt" in texts["de"].text
    assert "Der Stress in diesem Team mit Kundenkontakt steigt" in texts["de"].html
    assert "Der Stress in diesem Team mit Kundenkontakt steigt" in texts["de"].chat_text
    assert "This customer-facing team" not in texts["de"].text
    assert "This customer-facing team's stress is rising" in texts["en"].text
