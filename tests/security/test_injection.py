"""Hostile text typed into any free-text field is shown as text everywhere: pages (walked from
the URL resolver, as admin, lead and employee), e-mail HTML, Slack and Teams payloads, CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from checkins import services as checkin_services
from checkins.models import Invitation
from notifications.models import Kind, Message
from notifications.rendering import render_message
from tests.checkins.conftest import FIRST_OPEN, make_schedule, open_cycle
from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    TeamFactory,
    TeamLeadFactory,
    UserFactory,
)
from tests.security.urlwalk import routes

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
PAYLOAD = f"X{ATTRIBUTE}{SCRIPT}"
RAW_MARKERS = ("<script>alert(1)", "<img src=x onerror")
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
FORMULA = '=HYPERLINK("http://evil.example/","help")'


@pytest.fixture
def hostile(db):
    """An organisation where every free-text field an admin or employee can type is hostile."""
    organisation = OrganisationFactory(
        name=f"Org {PAYLOAD}", anonymity_threshold=5, comments_enabled=True, comment_threshold=5
    )
    team = TeamFactory(organisation=organisation, name=f"{FORMULA} {PAYLOAD}", customer_facing=True)
    members = [
        MembershipFactory(team=team, user__full_name=f"Pat {PAYLOAD}").user for _ in range(6)
    ]
    lead = TeamLeadFactory(team=team, user__full_name=f"Lee {PAYLOAD}").user
    admin = UserFactory(organisation=organisation, is_org_admin=True, full_name=f"Ada {PAYLOAD}")
    question = checkin_services.question_create(
        organisation=organisation,
        key="hostile",
        text=f"How stressed? {PAYLOAD}",
        dimension="stress",
        scale_min=1,
        scale_max=5,
        scale_labels=[f"{n} {PAYLOAD}" for n in range(1, 6)],
    )
    comment_question = checkin_services.question_create(
        organisation=organisation, key="hostile-comment", kind="text", text=f"Else? {PAYLOAD}"
    )
    survey = checkin_services.survey_create(
        organisation=organisation,
        name=f"Survey {PAYLOAD}",
        question_ids=[question.pk, comment_question.pk],
    )
    survey = checkin_services.survey_publish(survey=survey)
    checkin_services.support_resource_create(
        organisation=organisation,
        title=f"Help {PAYLOAD}",
        description=f"Call us {PAYLOAD}",
        url="https://help.example.org/",
    )
    schedule = make_schedule(
        organisation=organisation, teams=[team], survey=survey, name=f"Weekly {PAYLOAD}"
    )
    cycle = open_cycle(schedule)
    first = Invitation.objects.get(cycle=cycle, user=members[0])
    link = Message.objects.get(recipient=members[0], kind=Kind.INVITATION).sensitive_context["url"]
    with time_machine.travel(FIRST_OPEN + timedelta(hours=1), tick=False):
        for invitation in Invitation.objects.filter(cycle=cycle).exclude(pk=first.pk):
            checkin_services.checkin_submit(
                invitation=invitation,
                answers={question.pk: 1 + invitation.pk % 5},
                comment=f"Comment {PAYLOAD}",
            )
    return {
        "organisation": organisation,
        "team": team,
        "members": members,
        "lead": lead,
        "admin": admin,
        "cycle": cycle,
        "schedule": schedule,
        "first_link": link,
        "first": first,
    }


def close(world) -> None:
    cycle = world["cycle"]
    with time_machine.travel(FIRST_OPEN + timedelta(hours=2), tick=False):
        checkin_services.checkin_submit(
            invitation=world["first"], answers={}, comment=f"Late {PAYLOAD}"
        )
    checkin_services.pending_release(cycle=cycle, force=True)
    assert checkin_services.cycle_close(cycle=cycle, now=cycle.closes_at)


def assert_no_raw_markup(body: str, where: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in body, f"unescaped {marker!r} in {where}"


def test_checkin_pages_show_hostile_text_escaped(client, hostile):
    path = hostile["first_link"].split("://", 1)[1].split("/", 1)[1]
    start = client.get("/" + path)
    assert_no_raw_markup(start.content.decode(), "check-in start page")
    with time_machine.travel(FIRST_OPEN + timedelta(hours=1), tick=False):
        client.post("/" + path)
        form = client.get(reverse("checkins:answer"))
        # the support page as shown right after submitting
        session = client.session
        session["pulse_checkin_done"] = hostile["organisation"].pk
        session.save()
        thanks = client.get(reverse("checkins:thanks")).content.decode()
    body = form.content.decode()
    assert form.status_code == 200
    assert_no_raw_markup(body, "check-in form")
    assert "How stressed? X&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" + ESCAPED_SCRIPT in body
    assert_no_raw_markup(thanks, "thanks page")
    assert f"Help X&quot;&gt;&lt;img src=x onerror=alert(1)&gt;{ESCAPED_SCRIPT}" in thanks


@pytest.mark.parametrize("role", ["admin", "lead", "employee"])
def test_every_page_shows_hostile_text_escaped(client, hostile, role):
    close(hostile)
    user = hostile["members"][1] if role == "employee" else hostile[role]
    client.force_login(user)
    values = {
        "public_id": str(hostile["team"].public_id),
        "cycle_id": str(hostile["cycle"].public_id),
        "pk": str(hostile["schedule"].survey_id),
    }
    overrides = {
        "manage_checkins:schedule": {"public_id": str(hostile["schedule"].public_id)},
        "organisation-detail": {"public_id": str(hostile["organisation"].public_id)},
        "manage:person_deactivate": {"public_id": str(hostile["members"][2].public_id)},
    }
    shown = 0
    for route in routes():
        if route.name in {"logout", "api-docs"} or "token" in route.kwargs:
            continue
        path = route.path({**values, **overrides.get(route.name, {})})
        if path is None:
            continue
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code < 500, f"{route.name} answered {response.status_code}"
        if not hasattr(response, "content"):
            continue
        body = response.content.decode(errors="replace")
        content_type = response.get("Content-Type", "")
        if "html" in content_type:
            assert_no_raw_markup(body, f"{route.name} as {role}")
            shown += ESCAPED_SCRIPT in body
        elif "json" in content_type:
            json.loads(body)  # data, not markup: a browser will not run it
    assert shown >= 1, "no page showed the hostile text at all: the test would prove nothing"


@pytest.mark.parametrize("kind", [k.value for k in Kind])
def test_messages_escape_hostile_text_in_html_slack_and_teams(hostile, kind):
    context = {
        key: f"{key} {PAYLOAD}"
        for key in (
            "team_name",
            "closes_on",
            "participation",
            "explanation",
            "suggested_action",
            "period",
            "flag_label",
        )
    }
    context["lines"] = [f"line {PAYLOAD}"]
    context["teams"] = [
        {"name": f"team {PAYLOAD}", "path": f"parent {PAYLOAD} / team {PAYLOAD}", "shown": True,
         "stress": 50, "participation": 70, "open_flags": 1},
    ]  # fmt: skip
    message = Message.objects.create(
        organisation=hostile["organisation"],
        kind=kind,
        recipient=hostile["lead"],
        template=kind,
        context=context,
        idempotency_key=f"injection-{kind}",
    )
    rendered = render_message(message)
    assert_no_raw_markup(rendered.html, f"{kind} e-mail HTML")
    assert ESCAPED_SCRIPT in rendered.html
    slack = rendered.slack_payload()
    for block in slack["blocks"]:
        if block.get("text", {}).get("type") == "mrkdwn":
            text = block["text"]["text"]
            assert "<" not in text and ">" not in text, "Slack mrkdwn must escape <, > and &"
    assert "<" not in slack["text"]
    teams = json.dumps(rendered.teams_payload())
    assert_no_raw_markup(teams, f"{kind} Teams card")


def test_csv_export_neutralises_formulas(client, hostile):
    close(hostile)
    client.force_login(hostile["admin"])
    response = client.get(reverse("dashboards:organisation-export"))
    assert response.status_code == 200
    text = b"".join(response).decode() if response.streaming else response.content.decode()
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert any("HYPERLINK" in cell for cell in cells), "the team should be in the export"
    assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))]
    assert not [c for c in cells if c.startswith("-") and not c[1:2].isdigit()]
