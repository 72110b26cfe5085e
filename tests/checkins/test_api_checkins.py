"""The check-in API: admin configuration scoped per organisation, cycles for admins and leads,
the anonymous token submit, bad input and the schema."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date, timedelta

import pytest
import time_machine
from django.db.models.signals import post_save
from rest_framework.test import APIClient

from checkins.models import Invitation, PendingAnswer, Question, Response, Schedule, Survey
from checkins.selectors import invitation_questions
from checkins.services import checkin_submit, question_create, survey_create, survey_publish
from notifications.models import Message
from tests.checkins.conftest import FIRST_OPEN, make_schedule
from tests.factories import (
    OrganisationFactory,
    TeamFactory,
    TeamLeadFactory,
    UserFactory,
    team_with_members,
)

DURING = FIRST_OPEN + timedelta(hours=2)
SUBMIT = "/api/checkins/submit/"


@pytest.fixture(autouse=True)
def _during_the_window():
    with time_machine.travel(DURING, tick=False):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters(settings):
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"


@pytest.fixture
def admin_client(org):
    client = APIClient()
    client.force_authenticate(UserFactory(organisation=org, is_org_admin=True))
    return client


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


def link_token(invitation: Invitation) -> str:
    url = Message.objects.get(idempotency_key=f"inv:{invitation.public_id}").sensitive_context[
        "url"
    ]
    return url.rstrip("/").rsplit("/", 1)[-1]


def own_question(org, key="queue-length", **overrides) -> Question:
    return question_create(
        organisation=org,
        key=key,
        text=overrides.pop("text", "The queue felt manageable."),
        dimension=overrides.pop("dimension", "workload"),
        scale_min=1,
        scale_max=5,
        **overrides,
    )


# --- questions --------------------------------------------------------------------------------


def test_admin_lists_library_and_own_questions_paginated(admin_client, org, weekly_pulse):
    own_question(org)
    own_question(OrganisationFactory(), key="someone-elses")

    response = admin_client.get("/api/questions/?page_size=500")

    assert response.status_code == 200
    keys = {q["key"] for q in response.json()["results"]}
    assert "queue-length" in keys and "stress-single-item" in keys
    assert "someone-elses" not in keys
    assert {"count", "next", "previous", "results"} <= set(response.json())


def test_questions_can_be_filtered_by_dimension(admin_client, org, weekly_pulse):
    response = admin_client.get("/api/questions/", {"dimension": "stress"})

    assert response.status_code == 200
    assert {q["dimension"] for q in response.json()["results"]} == {"stress"}


def test_admin_creates_a_question(admin_client, org):
    payload = {
        "key": "handover",
        "text": "Handovers went smoothly.",
        "dimension": "workload",
        "scale_min": 1,
        "scale_max": 5,
    }

    response = admin_client.post("/api/questions/", payload, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["version"] == 1
    assert Question.objects.get(organisation=org, key="handover").text == payload["text"]


def test_an_invalid_question_is_refused_per_field_and_not_stored(admin_client, org):
    response = admin_client.post(
        "/api/questions/",
        {"key": "bad key!", "text": "", "scale_min": "low"},
        format="json",
    )

    assert response.status_code == 400
    fields = error_of(response)["fields"]
    assert {"key", "text", "scale_min"} <= set(fields)
    assert not Question.objects.filter(organisation=org).exists()


GERMAN = {"text": "Die Übergaben liefen gut.", "labels": ["1", "2", "3", "4", "5"]}


@pytest.mark.parametrize(
    "translations",
    [
        {"de": {"labels": 5}},
        {"de": {"labels": ["nur", "drei", "Stufen"]}},
        {"de": {"text": ""}},
        {"de": {"text": "Null\u0000byte"}},
        {"de": {"title": "Übergaben"}},
        {"xx": {"text": "Handovers"}},
    ],
)
def test_a_question_with_malformed_translations_is_refused_and_not_stored(
    admin_client, org, translations
):
    payload = {
        "key": "handover",
        "text": "Handovers went smoothly.",
        "dimension": "workload",
        "scale_min": 1,
        "scale_max": 5,
        "translations": translations,
    }

    response = admin_client.post("/api/questions/", payload, format="json")

    assert response.status_code == 400
    assert error_of(response)["fields"]["translations"]
    assert not Question.objects.filter(organisation=org).exists()


def test_a_question_with_a_german_translation_is_created(admin_client, org):
    payload = {
        "key": "handover",
        "text": "Handovers went smoothly.",
        "dimension": "workload",
        "scale_min": 1,
        "scale_max": 5,
        "translations": {"de": GERMAN},
    }

    response = admin_client.post("/api/questions/", payload, format="json")

    assert response.status_code == 201, response.content
    assert Question.objects.get(organisation=org, key="handover").text_in("de") == GERMAN["text"]


def test_editing_a_question_to_malformed_translations_is_refused(admin_client, org):
    question = own_question(org, translations={"de": GERMAN})

    response = admin_client.patch(
        f"/api/questions/{question.pk}/", {"translations": {"de": {"labels": 5}}}, format="json"
    )

    assert response.status_code == 400
    assert "translations" in error_of(response)["fields"]
    question.refresh_from_db()
    assert question.translations == {"de": GERMAN}


def test_editing_an_unanswered_question_changes_it_in_place(admin_client, org):
    question = own_question(org)

    response = admin_client.patch(
        f"/api/questions/{question.pk}/", {"text": "Queues were fine."}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["id"] == question.pk and response.json()["version"] == 1


def test_editing_a_question_in_a_published_survey_returns_a_new_version(admin_client, org):
    question = own_question(org)
    survey_publish(survey=survey_create(organisation=org, name="Ours", question_ids=[question.pk]))

    response = admin_client.patch(
        f"/api/questions/{question.pk}/", {"text": "Queues were fine."}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 2 and body["replaces"] == question.pk and body["id"] != question.pk
    question.refresh_from_db()
    assert question.text == "The queue felt manageable." and not question.is_current


def test_library_questions_are_read_only(admin_client, weekly_pulse):
    library = Question.objects.filter(organisation__isnull=True).first()

    response = admin_client.patch(f"/api/questions/{library.pk}/", {"text": "x"}, format="json")

    assert response.status_code == 403
    assert error_of(response)["code"] == "read_only"


def test_another_organisations_question_is_not_found(admin_client, db):
    foreign = own_question(OrganisationFactory(), key="foreign")

    assert admin_client.get(f"/api/questions/{foreign.pk}/").status_code == 404
    response = admin_client.patch(f"/api/questions/{foreign.pk}/", {"text": "x"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["employee", "lead", "anonymous"])
def test_configuration_endpoints_are_for_admins_only(org, team, role):
    client = APIClient()
    if role == "employee":
        client.force_authenticate(UserFactory(organisation=org))
    elif role == "lead":
        client.force_authenticate(TeamLeadFactory(team=team).user)

    for path in ("/api/questions/", "/api/surveys/", "/api/schedules/", "/api/support-resources/"):
        response = client.get(path)
        assert response.status_code in {401, 403}, path
        error_of(response)


# --- surveys ----------------------------------------------------------------------------------


def test_admin_creates_a_draft_survey_and_publishes_it(admin_client, org, weekly_pulse):
    ids = [own_question(org).pk, own_question(org, key="breaks", dimension="recovery").pk]

    created = admin_client.post(
        "/api/surveys/", {"name": "Ours", "question_ids": ids}, format="json"
    )
    assert created.status_code == 201, created.content
    key = created.json()["key"]
    assert created.json()["is_published"] is False and created.json()["question_ids"] == ids

    published = admin_client.post(f"/api/surveys/{key}/publish/")

    assert published.status_code == 200
    assert published.json()["is_published"] is True
    assert Survey.objects.get(key=key).is_published


def test_a_survey_with_unknown_questions_is_refused(admin_client, org):
    response = admin_client.post(
        "/api/surveys/", {"name": "Ours", "question_ids": [987654]}, format="json"
    )

    assert response.status_code == 400
    assert "question_ids" in error_of(response)["fields"]
    assert not Survey.objects.filter(organisation=org).exists()


def test_editing_a_published_survey_returns_a_new_version(admin_client, org):
    first, second = own_question(org), own_question(org, key="breaks", dimension="recovery")
    survey = survey_publish(
        survey=survey_create(organisation=org, name="Ours", question_ids=[first.pk])
    )

    response = admin_client.patch(
        f"/api/surveys/{survey.key}/", {"question_ids": [first.pk, second.pk]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["version"] == 2 and response.json()["is_published"] is True


@pytest.mark.parametrize(
    "url",
    [
        "/api/surveys/%00/",
        "/api/surveys/weekly%00pulse/",
        "/api/schedules/%00/",
        "/api/cycles/%00/",
        "/api/questions/%00/",
        "/api/support-resources/%00/",
        "/api/questions/99999999999999999999999/",
    ],
)
def test_an_address_no_object_can_have_is_not_found(admin_client, weekly_pulse, url):
    # PostgreSQL refuses NUL in text and integers beyond 64 bits: neither may become a 500
    response = admin_client.get(url)

    assert response.status_code == 404
    assert error_of(response)["code"]


def test_editing_a_survey_at_an_address_with_a_nul_is_not_found(admin_client, weekly_pulse):
    response = admin_client.patch("/api/surveys/%00/", {"name": "x"}, format="json")

    assert response.status_code == 404


# --- schedules --------------------------------------------------------------------------------


def test_admin_creates_a_schedule_with_a_preview_of_openings(admin_client, org, team, weekly_pulse):
    payload = {
        "name": "Support weekly",
        "survey": "weekly-pulse",
        "team_ids": [str(team.public_id)],
        "start_date": "2026-03-09",
        "weekday": 0,
        "local_time": "09:00",
    }

    response = admin_client.post("/api/schedules/", payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert uuid.UUID(body["public_id"])
    assert body["team_ids"] == [str(team.public_id)]
    assert len(body["next_open_times"]) == 5
    assert body["next_open_times"][0].startswith("2026-03-09T09:00:00+01:00")


def test_a_schedule_for_another_organisations_team_is_refused(admin_client, org, weekly_pulse):
    foreign = team_with_members(organisation=OrganisationFactory(), size=1)
    before = Schedule.objects.count()

    response = admin_client.post(
        "/api/schedules/",
        {
            "name": "Sneaky",
            "survey": "weekly-pulse",
            "team_ids": [str(foreign.public_id)],
            "start_date": "2026-03-09",
        },
        format="json",
    )

    assert response.status_code == 400
    assert "team_ids" in error_of(response)["fields"]
    assert Schedule.objects.count() == before


def test_a_team_takes_part_in_one_schedule_at_a_time(admin_client, org, weekly_pulse):
    # given a department scheduled weekly, with a sub-team of its own and a separate team
    department = TeamFactory(organisation=org, name="Department")
    sub_team = team_with_members(organisation=org, size=6, name="Sub-team", parent=department)
    separate = team_with_members(organisation=org, size=6, name="Separate")
    make_schedule(organisation=org, teams=[department], survey=weekly_pulse, name="Dept weekly")

    def create(team, **extra):
        payload = {
            "name": f"{team.name} pulse",
            "survey": "weekly-pulse",
            "team_ids": [str(team.public_id)],
            "start_date": "2026-03-09",
            **extra,
        }
        return admin_client.post("/api/schedules/", payload, format="json")

    # when a second schedule would check in the sub-team too, it is refused naming both
    refused = create(sub_team)
    assert refused.status_code == 400
    [problem] = error_of(refused)["fields"]["team_ids"]
    assert "Sub-team" in problem and "Dept weekly" in problem
    assert not Schedule.objects.filter(name="Sub-team pulse").exists()
    # (two figures of the department's people in the same week would differ by the sub-team's)
    # a separate team may have its own; and one that ends before the other starts does not clash
    assert create(separate).status_code == 201
    Schedule.objects.filter(name="Dept weekly").update(end_date=date(2026, 3, 1))
    assert create(sub_team).status_code == 201


@pytest.mark.parametrize(
    ("dates", "field"),
    [
        ({"start_date": "9999-12-31"}, "start_date"),
        ({"start_date": "2040-01-05"}, "start_date"),
        ({"start_date": "1999-12-27"}, "start_date"),
        ({"start_date": "2026-03-09", "end_date": "2026-01-01"}, "end_date"),
    ],
)
def test_a_schedule_with_dates_it_cannot_run_on_is_refused_on_that_field(
    admin_client, org, team, weekly_pulse, dates, field
):
    payload = {"name": "Off", "survey": "weekly-pulse", "team_ids": [str(team.public_id)]}

    response = admin_client.post("/api/schedules/", {**payload, **dates}, format="json")

    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert not Schedule.objects.filter(name="Off").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [({"start_date": "9999-12-31"}, "start_date"), ({"end_date": "2026-02-01"}, "end_date")],
)
def test_moving_a_schedules_dates_out_of_reach_is_refused_and_changes_nothing(
    admin_client, schedule, change, field
):
    before = (schedule.start_date, schedule.end_date)

    response = admin_client.patch(f"/api/schedules/{schedule.public_id}/", change, format="json")

    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    schedule.refresh_from_db()
    assert (schedule.start_date, schedule.end_date) == before


def test_a_schedule_stored_with_a_first_day_in_9999_lists_without_openings(admin_client, schedule):
    Schedule.objects.filter(pk=schedule.pk).update(start_date="9999-12-31")  # as once accepted

    response = admin_client.get("/api/schedules/")

    assert response.status_code == 200
    assert response.json()["results"][0]["next_open_times"] == []


def test_a_schedule_created_paused_is_never_stored_running(admin_client, org, team, weekly_pulse):
    stored_paused: list[bool] = []

    def record(sender, instance, **kwargs):
        stored_paused.append(instance.paused)

    post_save.connect(record, sender=Schedule, weak=False)
    try:
        response = admin_client.post(
            "/api/schedules/",
            {
                "name": "Quiet",
                "survey": "weekly-pulse",
                "team_ids": [str(team.public_id)],
                "start_date": "2026-03-09",
                "paused": True,
            },
            format="json",
        )
    finally:
        post_save.disconnect(record, sender=Schedule)

    assert response.status_code == 201, response.content
    assert response.json()["paused"] is True and response.json()["next_open_times"] == []
    # one write, already paused: no moment at which a tick could open it
    assert stored_paused == [True]


def test_a_schedule_is_paused_by_patch_and_shows_no_openings(admin_client, schedule):
    response = admin_client.patch(
        f"/api/schedules/{schedule.public_id}/", {"paused": True}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["paused"] is True and response.json()["next_open_times"] == []


def test_schedules_are_addressed_by_public_id_only(admin_client, schedule):
    assert admin_client.get(f"/api/schedules/{schedule.pk}/").status_code == 404
    assert admin_client.get(f"/api/schedules/{schedule.public_id}/").status_code == 200


# --- support resources ------------------------------------------------------------------------


def test_admin_adds_and_lists_support_resources(admin_client, org):
    response = admin_client.post(
        "/api/support-resources/",
        {"title": "EAP", "url": "https://eap.example/", "phone": "0800 1"},
        format="json",
    )
    assert response.status_code == 201, response.content

    listed = admin_client.get("/api/support-resources/").json()["results"]

    assert [r["title"] for r in listed] == ["EAP"]


def test_a_support_resource_with_a_bad_url_is_refused(admin_client, org):
    response = admin_client.post(
        "/api/support-resources/", {"title": "EAP", "url": "not a url"}, format="json"
    )

    assert response.status_code == 400
    assert "url" in error_of(response)["fields"]


# --- cycles -----------------------------------------------------------------------------------


def test_admin_sees_cycles_with_participation_withheld_below_k(admin_client, cycle):
    response = admin_client.get("/api/cycles/")

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["public_id"] == str(cycle.public_id)
    assert row["participation"] == {"invited": 6, "responded": None, "rate": None}


def test_participation_is_shown_from_k_answers(admin_client, cycle):
    for invitation in Invitation.objects.filter(cycle=cycle)[:5]:
        answers = {
            q.pk: q.scale_min for q in invitation_questions(invitation=invitation) if q.is_scale
        }
        checkin_submit(invitation=invitation, answers=answers, comment=None)

    row = admin_client.get(f"/api/cycles/{cycle.public_id}/").json()

    assert row["participation"] == {"invited": 6, "responded": 5, "rate": 0.833}


def test_a_lead_sees_cycles_of_their_team_only(cycle, team, org, weekly_pulse):
    lead = TeamLeadFactory(team=team).user
    other_team = team_with_members(organisation=org, size=2)
    other_lead = TeamLeadFactory(team=other_team).user
    client = APIClient()

    client.force_authenticate(lead)
    assert [c["public_id"] for c in client.get("/api/cycles/").json()["results"]] == [
        str(cycle.public_id)
    ]
    client.force_authenticate(other_lead)
    assert client.get("/api/cycles/").json()["results"] == []
    assert client.get(f"/api/cycles/{cycle.public_id}/").status_code == 404


def test_employees_cannot_read_cycles(cycle, org):
    client = APIClient()
    client.force_authenticate(UserFactory(organisation=org))

    response = client.get("/api/cycles/")

    assert response.status_code == 403


def test_admins_of_another_organisation_see_no_cycles(cycle):
    client = APIClient()
    client.force_authenticate(UserFactory(is_org_admin=True))

    assert client.get("/api/cycles/").json()["results"] == []
    assert client.get(f"/api/cycles/{cycle.public_id}/").status_code == 404


def test_cycles_can_be_filtered_by_state(admin_client, cycle):
    assert len(admin_client.get("/api/cycles/", {"state": "open"}).json()["results"]) == 1
    assert admin_client.get("/api/cycles/", {"state": "closed"}).json()["results"] == []


def test_cycle_time_filters_take_any_iso_offset_and_refuse_instants_outside_the_calendar(
    admin_client, cycle
):
    # an offset PostgreSQL cannot store (above 15:59) is compared in UTC
    wide = admin_client.get("/api/cycles/", {"opens_after": "2000-01-01T00:00:00+23:30"})
    assert wide.status_code == 200 and len(wide.json()["results"]) == 1
    # and an instant before year 1 in UTC is a 400 in the API's error shape
    early = admin_client.get("/api/cycles/", {"opens_before": "0001-01-01T00:00:00+05:00"})
    assert early.status_code == 400
    assert "opens_before" in early.json()["error"]["fields"]


# --- anonymous submit -------------------------------------------------------------------------


def submit_payload(invitation: Invitation, **overrides) -> dict:
    payload = {
        "token": link_token(invitation),
        "answers": {
            str(q.pk): q.scale_min
            for q in invitation_questions(invitation=invitation)
            if q.is_scale
        },
    }
    payload.update(overrides)
    return payload


def first_invitation(cycle) -> Invitation:
    return Invitation.objects.filter(cycle=cycle).order_by("pk").first()


def assert_nothing_stored(invitation: Invitation) -> None:
    invitation.refresh_from_db()
    assert not invitation.answered
    assert PendingAnswer.objects.count() == 0 and Response.objects.count() == 0


def test_submitting_with_a_token_is_accepted_once(cycle):
    invitation = first_invitation(cycle)
    client = APIClient(enforce_csrf_checks=True)

    response = client.post(SUBMIT, submit_payload(invitation), format="json")

    assert response.status_code == 201
    assert response.json() == {"status": "received"}
    invitation.refresh_from_db()
    assert invitation.answered and PendingAnswer.objects.count() == 1
    again = client.post(SUBMIT, submit_payload(invitation), format="json")
    assert again.status_code == 409
    assert PendingAnswer.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda a, q: a.update({q: 99}), "q"),
        (lambda a, q: a.update({q: "lots"}), "q"),
        (lambda a, q: a.update({"999999": 1}), "999999"),
        (lambda a, q: a.update({"not-a-question": 1}), "not-a-question"),
    ],
)
def test_bad_answers_are_refused_per_item_and_nothing_stored(cycle, change, field):
    invitation = first_invitation(cycle)
    payload = submit_payload(invitation)
    target = next(iter(payload["answers"]))
    change(payload["answers"], target)

    response = APIClient().post(SUBMIT, payload, format="json")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert (target if field == "q" else field) in error["fields"]
    assert_nothing_stored(invitation)


def test_a_missing_required_item_is_refused(cycle):
    invitation = first_invitation(cycle)
    payload = submit_payload(invitation)
    required = next(q for q in invitation_questions(invitation=invitation) if q.required)
    payload["answers"][str(required.pk)] = None

    response = APIClient().post(SUBMIT, payload, format="json")

    assert response.status_code == 400
    assert str(required.pk) in error_of(response)["fields"]
    assert_nothing_stored(invitation)


def test_a_refused_submit_can_be_corrected_and_sent_again(cycle):
    invitation = first_invitation(cycle)
    bad = submit_payload(invitation)
    bad["answers"][next(iter(bad["answers"]))] = 99
    client = APIClient()
    assert client.post(SUBMIT, bad, format="json").status_code == 400

    response = client.post(SUBMIT, submit_payload(invitation), format="json")

    assert response.status_code == 201


def test_duplicate_question_keys_in_the_json_are_refused(cycle):
    invitation = first_invitation(cycle)
    qid = next(iter(submit_payload(invitation)["answers"]))
    token = link_token(invitation)
    body = f'{{"token": "{token}", "answers": {{"{qid}": 1, "{qid}": 2}}}}'.encode()

    response = APIClient().post(SUBMIT, body, content_type="application/json")

    assert response.status_code == 400
    assert "duplicate" in error_of(response)["message"]
    assert_nothing_stored(invitation)


@pytest.mark.parametrize(
    "body", [b"{not json", b"[1, 2]", b'{"token": 5}', b'{"answers": NaN}', b"\xff\xfe"]
)
def test_malformed_bodies_get_400(cycle, body):
    response = APIClient().post(SUBMIT, body, content_type="application/json")

    assert response.status_code == 400
    error_of(response)
    assert PendingAnswer.objects.count() == 0


def test_answers_that_are_not_a_mapping_are_refused(cycle):
    invitation = first_invitation(cycle)

    response = APIClient().post(
        SUBMIT, submit_payload(invitation, answers=[1, 2, 3]), format="json"
    )

    assert response.status_code == 400
    assert "answers" in error_of(response)["fields"]
    assert_nothing_stored(invitation)


def test_an_oversized_body_gets_413(cycle, settings):
    invitation = first_invitation(cycle)
    payload = submit_payload(invitation, comment="x" * (settings.PULSE_CHECKIN_MAX_BODY_BYTES + 1))

    response = APIClient().post(SUBMIT, payload, format="json")

    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert_nothing_stored(invitation)


def test_a_comment_when_comments_are_off_is_refused(cycle):
    invitation = first_invitation(cycle)

    response = APIClient().post(SUBMIT, submit_payload(invitation, comment="hello"), format="json")

    assert response.status_code == 400
    assert "comment" in error_of(response)["fields"]
    assert_nothing_stored(invitation)


def test_an_overlong_comment_is_refused(cycle):
    cycle.organisation.comments_enabled = True
    cycle.organisation.save(update_fields=["comments_enabled"])
    invitation = first_invitation(cycle)

    response = APIClient().post(
        SUBMIT, submit_payload(invitation, comment="a" * 1001), format="json"
    )

    assert response.status_code == 400
    assert "comment" in error_of(response)["fields"]
    assert_nothing_stored(invitation)


def test_an_unknown_token_gets_404(cycle):
    response = APIClient().post(SUBMIT, {"token": "z" * 43, "answers": {}}, format="json")

    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown"


def test_a_token_of_a_closed_cycle_gets_410(cycle):
    invitation = first_invitation(cycle)
    payload = submit_payload(invitation)

    with time_machine.travel(cycle.closes_at + timedelta(minutes=5), tick=False):
        response = APIClient().post(SUBMIT, payload, format="json")

    assert response.status_code == 410
    assert_nothing_stored(invitation)


def test_token_guesses_on_the_api_are_rate_limited(cycle, settings):
    settings.PULSE_TOKEN_GUESS_RATE = "3/m"
    client = APIClient()
    for attempt in range(3):
        payload = {"token": f"{'q' * 40}{attempt:03d}", "answers": {}}
        assert client.post(SUBMIT, payload, format="json").status_code == 404

    response = client.post(SUBMIT, {"token": "q" * 43, "answers": {}}, format="json")

    assert response.status_code == 429
    assert error_of(response)["code"] == "rate_limited"


def test_the_submit_never_logs_the_token_or_answers(cycle, caplog):
    invitation = first_invitation(cycle)
    payload = submit_payload(invitation)
    caplog.set_level(logging.DEBUG)

    APIClient().post(SUBMIT, payload, format="json")
    APIClient().post(SUBMIT, payload, format="json")

    assert payload["token"] not in caplog.text
    assert json.dumps(payload["answers"]) not in caplog.text


# --- schema -----------------------------------------------------------------------------------


def test_the_openapi_schema_describes_the_check_in_api(db):
    client = APIClient()
    client.force_authenticate(UserFactory())

    response = client.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    for path in (
        "/api/checkins/submit/",
        "/api/questions/{id}/",
        "/api/surveys/{key}/publish/",
        "/api/schedules/{public_id}/",
        "/api/cycles/{public_id}/",
        "/api/support-resources/",
    ):
        assert path in paths, path


def test_configuration_changed_through_the_api_is_audited_as_on_the_manage_pages(
    admin_client, org, team
):
    from wellbeing.models import AuditEntry

    question = admin_client.post(  # fmt: skip
        "/api/questions/",
        {
            "key": "queue-length",
            "text": "The queue felt manageable",
            "dimension": "workload",
            "scale_min": 1,
            "scale_max": 5,
        },
        format="json",
    )
    assert question.status_code == 201, question.content
    survey = admin_client.post(
        "/api/surveys/",
        {"name": "Ours", "question_ids": [question.json()["id"]]},
        format="json",
    )
    assert survey.status_code == 201, survey.content
    key = survey.json()["key"]
    assert admin_client.post(f"/api/surveys/{key}/publish/").status_code == 200
    schedule = admin_client.post(
        "/api/schedules/",
        {"name": "Ours weekly", "survey": key, "team_ids": [str(team.public_id)],
         "start_date": "2026-03-09"},
        format="json",
    )  # fmt: skip
    assert schedule.status_code == 201, schedule.content
    public_id = schedule.json()["public_id"]
    patched = admin_client.patch(f"/api/schedules/{public_id}/", {"open_hours": 80}, format="json")
    assert patched.status_code == 200, patched.content
    resource = admin_client.post(
        "/api/support-resources/", {"title": "Employee assistance line"}, format="json"
    )
    assert resource.status_code == 201, resource.content
    # a refused change leaves no entry
    refused = admin_client.patch(f"/api/schedules/{public_id}/", {"open_hours": 0}, format="json")
    assert refused.status_code == 400

    entries = list(AuditEntry.objects.filter(organisation=org).order_by("at", "pk"))
    assert [e.action for e in entries] == [
        "question.create",
        "survey.create",
        "survey.publish",
        "schedule.create",
        "schedule.update",
        "support.create",
    ]
    assert all(e.actor is not None and e.actor.organisation_id == org.pk for e in entries)
    update = entries[4]
    assert update.before == {"open_hours": 96} and update.after == {"open_hours": 80}
