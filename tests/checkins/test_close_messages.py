"""What the close's messages say once rendered: a flag alert links to the team's evidence and
names a next step (or says the flag was resolved), the admin summary gives the participation
and links to the overview.  The contexts come from the real flag step and the real close."""

from __future__ import annotations

import pytest
from django.test import override_settings

from checkins import services
from notifications.models import Message
from notifications.rendering import render_message
from tests.analytics.helpers import fixed_input, record
from tests.checkins.test_close import answer_all
from tests.factories import OrganisationFactory, TeamFactory, TeamLeadFactory, UserFactory
from wellbeing.models import FlagSettings

pytestmark = pytest.mark.django_db

SITE = "https://pulse.example.com"
HIGH, LOW = [70.0] * 6, [40.0] * 6


def rendered_alert(organisation, change, recipient):
    message = Message(
        organisation=organisation,
        kind="flag_alert",
        template="flag_alert",
        recipient=recipient,
        context=services._flag_alert_context(change),
        idempotency_key=change.idempotency_key,
    )
    return render_message(message)


@override_settings(SITE_URL=SITE)
def test_a_flag_alert_links_to_the_evidence_names_a_step_and_says_when_it_is_resolved():
    # given a desk whose stress is above the level twice (a flag opens), then in control
    # for three cycles (it resolves)
    organisation = OrganisationFactory(anonymity_threshold=5)
    FlagSettings.objects.create(
        organisation=organisation,
        high_stress_level=60,
        high_stress_consecutive=2,
        resolve_after_cycles=3,
    )
    team = TeamFactory(organisation=organisation, name="Desk")
    lead = TeamLeadFactory(team=team).user
    record(organisation, 0, [fixed_input(team, stress=HIGH)])
    (opened,) = record(organisation, 1, [fixed_input(team, stress=HIGH)])
    for cycle in (2, 3):
        record(organisation, cycle, [fixed_input(team, stress=LOW)])
    (resolved,) = record(organisation, 4, [fixed_input(team, stress=LOW)])
    assert (opened.change, resolved.change) == ("opened", "resolved")

    # when the opening's alert is rendered
    alert = rendered_alert(organisation, opened, lead)
    # then its button and text lead to the team's page, and it names the flag and a next step
    evidence = f"{SITE}/dashboards/teams/{team.public_id}/"
    assert alert.button_url == evidence
    assert f"See the evidence: {evidence}" in alert.text and f'href="{evidence}"' in alert.html
    assert alert.subject == "Pulse flag for Desk: High stress"
    assert "Suggested next step:" in alert.text and "Suggested next step:" in alert.html
    assert "A flag was raised for Desk." in alert.text

    # and the resolution's alert says so, without asking for a step
    done = rendered_alert(organisation, resolved, lead)
    assert done.button_url == evidence
    for part in (done.text, done.html, done.chat_text):
        assert "The flag for Desk has been resolved." in part
        assert "raised" not in part and "Suggested next step" not in part


def test_a_german_lead_reads_the_suggested_step_in_german():
    organisation = OrganisationFactory(anonymity_threshold=5)
    FlagSettings.objects.create(
        organisation=organisation, high_stress_level=60, high_stress_consecutive=2
    )
    team = TeamFactory(organisation=organisation, name="Desk")
    lead = TeamLeadFactory(team=team, user__language="de").user
    record(organisation, 0, [fixed_input(team, stress=HIGH)])
    (opened,) = record(organisation, 1, [fixed_input(team, stress=HIGH)])
    alert = rendered_alert(organisation, opened, lead)
    for part in (alert.text, alert.html):
        assert "Vorgeschlagener nächster Schritt:" in part
        assert "Führen Sie ein kurzes Gespräch über das Wohlbefinden" in part
        assert "Hold a short wellness check-in" not in part


@override_settings(SITE_URL=SITE)
def test_the_admin_summary_gives_the_participation_and_links_to_the_overview(cycle):
    # given five of six people answered (k = 5) and the cycle closed
    admin = UserFactory(organisation=cycle.organisation, is_org_admin=True)
    answer_all(cycle, 5)
    services.cycle_close(cycle=cycle, now=cycle.closes_at)
    # when the admin's summary is rendered
    summary = render_message(Message.objects.get(kind="cycle_summary", recipient=admin))
    # then it says how many answered and leads to the organisation's overview
    assert "Participation: 5/6 (83 %)" in summary.text
    assert summary.button_url == f"{SITE}/dashboards/organisation/"
    assert f"Open the dashboard: {SITE}/dashboards/organisation/" in summary.text


@override_settings(SITE_URL=SITE)
def test_the_admin_summary_leaves_the_participation_out_below_k(cycle):
    admin = UserFactory(organisation=cycle.organisation, is_org_admin=True)
    answer_all(cycle, 3)  # fewer than k = 5
    services.cycle_close(cycle=cycle, now=cycle.closes_at)
    summary = render_message(Message.objects.get(kind="cycle_summary", recipient=admin))
    assert "Participation" not in summary.text and "3/6" not in summary.text
    assert summary.button_url == f"{SITE}/dashboards/organisation/"
