"""The form submit's lean path: few queries, no session write, refusals still named in order.

On PostgreSQL answers that pass the checks go in as one statement (lock the cycle, claim the
invitation, park the answers, count the team's pending ones); everything else takes the checked
path.  These tests pin what that path reads and writes and that a change between the form load
and the submit (comments switched off, the cycle closed, the link used elsewhere) still stores
nothing and says why.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkins import selectors, services
from checkins.models import Cycle, Invitation, PendingAnswer, Question, Response, Survey
from checkins.selectors import (
    checkin_with_questions,
    invitation_for_checkin,
    invitation_questions,
)
from checkins.tokens import token_hash
from checkins.views import SNAPSHOT_COOKIE, SNAPSHOT_SALT
from tests.checkins.conftest import FIRST_OPEN, make_schedule, open_cycle
from tests.checkins.test_views_checkin import first_invitation, form_data, link_token, started
from tests.factories import team_with_members
from wellbeing.errors import ServiceError

DURING = FIRST_OPEN + timedelta(hours=2)


@pytest.fixture(autouse=True)
def _during_the_window():
    with time_machine.travel(DURING, tick=False):
        yield


def test_the_prebuilt_read_loads_the_same_rows_as_the_orm(cycle):
    # given an invitation as the ORM loads it with its cycle and organisation
    expected = (
        Invitation.objects.select_related("cycle", "cycle__organisation", "user")
        .filter(cycle=cycle)
        .order_by("pk")
        .first()
    )
    # when it is read through the check-in's prebuilt query
    with CaptureQueriesContext(connection) as queries:
        loaded = invitation_for_checkin(public_id=expected.public_id)
        assert loaded is not None
        # then every field of the three rows is equal and converted alike (JSON, times, uuids),
        # but the cycle's targeted team ids, which are left for a query of their own
        assert loaded.cycle.get_deferred_fields() == {"team_ids"}
        for model_a, model_b in (
            (loaded, expected),
            (loaded.cycle, expected.cycle),
            (loaded.cycle.organisation, expected.cycle.organisation),
        ):
            for field in type(model_a)._meta.concrete_fields:
                if field.attname in model_a.get_deferred_fields():
                    continue
                assert getattr(model_a, field.attname) == getattr(model_b, field.attname), field
                assert type(getattr(model_a, field.attname)) is type(
                    getattr(model_b, field.attname)
                ), field
        assert loaded.user.language == expected.user.language
        assert [q.pk for q in invitation_questions(invitation=loaded)] == [
            q.pk for q in invitation_questions(invitation=expected)
        ]
    # and reading it (and its questions) took one query each
    assert len(queries) == 3
    # the team ids are still there for anyone who asks
    assert loaded.cycle.team_ids == expected.cycle.team_ids
    assert invitation_for_checkin(public_id="not-a-uuid") is None
    assert invitation_for_checkin(public_id="00000000-0000-4000-8000-000000000000") is None


@pytest.mark.parametrize("comments", [False, True])
def test_the_invitation_with_its_questions_matches_the_two_separate_reads(cycle, comments):
    # given an invitation (comments off or on)
    cycle.organisation.comments_enabled = comments
    cycle.organisation.save(update_fields=["comments_enabled"])
    public_id = first_invitation(cycle).public_id
    expected = invitation_for_checkin(public_id=public_id)
    # when read together with its questions, in a process that has not read the survey yet
    selectors._SURVEY_ITEMS.clear()
    with CaptureQueriesContext(connection) as queries:
        loaded = checkin_with_questions(public_id=public_id)
    assert loaded is not None
    invitation, questions = loaded
    # then that takes two queries, and one once the (published) survey is in memory
    assert len(queries) == 2
    with CaptureQueriesContext(connection) as queries:
        assert checkin_with_questions(public_id=public_id) is not None
    assert len(queries) == 1
    # then the rows and the questions (values and order) are the separate reads'
    for field in Invitation._meta.concrete_fields:
        assert getattr(invitation, field.attname) == getattr(expected, field.attname)
    assert invitation.cycle.organisation.pk == cycle.organisation.pk
    assert invitation.user.language == expected.user.language
    assert [(q.pk, q.text, q.translations, q.scale_labels) for q in questions] == [
        (q.pk, q.text, q.translations, q.scale_labels)
        for q in invitation_questions(invitation=expected)
    ]
    assert (not questions[-1].is_scale) is comments
    assert checkin_with_questions(public_id="00000000-0000-4000-8000-000000000000") is None


def test_a_published_surveys_questions_are_kept_an_unpublished_ones_read_every_time(cycle):
    survey = cycle.survey
    assert survey.is_published
    stamp = (True, survey.created_at)
    selectors._SURVEY_ITEMS.clear()
    # given the survey read once
    first = selectors.survey_questions(survey.pk, stamp=stamp)
    assert [q.pk for q in first] == list(
        survey.items.order_by("position", "pk").values_list("question_id", flat=True)
    )
    # then the next read with the same stamp is served from memory
    with CaptureQueriesContext(connection) as queries:
        assert selectors.survey_questions(survey.pk, stamp=stamp) is first
    assert len(queries) == 0
    # but not under another stamp (the same id with other content, as after a rollback)
    with CaptureQueriesContext(connection) as queries:
        selectors.survey_questions(survey.pk, stamp=(True, survey.created_at - timedelta(1)))
    assert len(queries) == 1
    # and a draft survey, whose items may still change, is read every time
    draft = Survey.objects.create(organisation=cycle.organisation, key="draft", name="Draft")
    question = Question.objects.filter(pk=first[0].pk).get()
    draft.items.create(question=question, position=1)
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            got = selectors.survey_questions(draft.pk, stamp=(False, draft.created_at))
        assert [q.pk for q in got] == [question.pk]
        assert len(queries) == 1
    draft.items.all().delete()
    assert selectors.survey_questions(draft.pk, stamp=(False, draft.created_at)) == ()


def test_an_answered_invitation_is_read_with_no_questions(cycle):
    invitation = invitation_for_checkin(public_id=first_invitation(cycle).public_id)
    questions = invitation_questions(invitation=invitation)
    answers = {q.pk: q.scale_min for q in questions if q.is_scale}
    services.checkin_submit(invitation=invitation, answers=answers, comment=None)
    loaded = checkin_with_questions(public_id=invitation.public_id)
    assert loaded is not None and loaded[0].answered and loaded[1] == []


def test_the_comment_question_comes_last_and_only_when_comments_are_on(cycle):
    invitation = invitation_for_checkin(public_id=first_invitation(cycle).public_id)
    assert all(q.is_scale for q in invitation_questions(invitation=invitation))
    cycle.organisation.comments_enabled = True
    cycle.organisation.save(update_fields=["comments_enabled"])
    invitation = invitation_for_checkin(public_id=invitation.public_id)
    questions = invitation_questions(invitation=invitation)
    assert not questions[-1].is_scale and all(q.is_scale for q in questions[:-1])
    assert {q.pk for q in questions[:-1]} == {int(q) for q in invitation.question_ids}


def test_the_form_submit_reads_little_and_leaves_the_session_alone(client, cycle):
    # given a check-in started from its link
    invitation = first_invitation(cycle)
    started(client, invitation)
    data = form_data(invitation)
    session_before = dict(client.session)
    # when the form is submitted
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/checkin/answer/", data)
    # then it is stored with a handful of queries (on PostgreSQL, with the survey in memory:
    # the session and the submit statement; the invitation comes from the session's snapshot)
    # and no session write
    assert response.status_code == 302
    # (prepared statements are counted; psycopg does not hand their text back for the log)
    sql = [q["sql"] or "" for q in queries.captured_queries]
    assert not any("django_session" in s and not s.startswith("SELECT") for s in sql), sql
    budget = 2 if connection.vendor == "postgresql" else 12
    assert len(sql) <= budget, sql
    assert dict(client.session) == session_before
    assert PendingAnswer.objects.count() == 1
    # and the thanks page still finds the organisation through the started check-in
    assert client.get("/checkin/thanks/").context["organisation"] == cycle.organisation


def test_a_comment_sent_after_comments_were_switched_off_is_refused(client, cycle):
    # given a form loaded while comments were on
    organisation = cycle.organisation
    organisation.comments_enabled = True
    organisation.save(update_fields=["comments_enabled"])
    invitation = invitation_for_checkin(public_id=first_invitation(cycle).public_id)
    questions = invitation_questions(invitation=invitation)
    answers = {q.pk: q.scale_min for q in questions if q.is_scale}
    # when comments are switched off before the submit
    organisation.comments_enabled = False
    organisation.save(update_fields=["comments_enabled"])
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(
            invitation=invitation, answers=answers, comment="hello", questions=questions
        )
    # then nothing is stored and the comment is named
    assert err.value.code == "invalid" and "comment" in err.value.fields
    assert not Invitation.objects.get(pk=invitation.pk).answered
    assert PendingAnswer.objects.count() == 0


@pytest.mark.parametrize(
    ("state", "code"), [(Cycle.State.CLOSED, "closed"), (Cycle.State.SCHEDULED, "unknown")]
)
def test_a_cycle_that_stopped_taking_answers_after_the_form_loaded_stores_nothing(
    cycle, state, code
):
    invitation = invitation_for_checkin(public_id=first_invitation(cycle).public_id)
    questions = invitation_questions(invitation=invitation)
    answers = {q.pk: q.scale_min for q in questions if q.is_scale}
    Cycle.objects.filter(pk=cycle.pk).update(state=state)
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(
            invitation=invitation, answers=answers, comment=None, questions=questions
        )
    assert err.value.code == code
    assert not Invitation.objects.get(pk=invitation.pk).answered
    assert PendingAnswer.objects.count() + Response.objects.count() == 0


def test_a_link_used_in_another_browser_meanwhile_gets_already_received(cycle):
    # given the same invitation loaded in two browsers
    first = invitation_for_checkin(public_id=first_invitation(cycle).public_id)
    second = invitation_for_checkin(public_id=first.public_id)
    questions = invitation_questions(invitation=first)
    answers = {q.pk: q.scale_min for q in questions if q.is_scale}
    services.checkin_submit(invitation=first, answers=answers, comment=None, questions=questions)
    # when the second submits too, with answers that would not pass either
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(invitation=second, answers={}, comment=None, questions=questions)
    # then it is told the answers were already received, and one answer is kept
    assert err.value.code == "already_received"
    assert PendingAnswer.objects.count() == 1


@pytest.mark.parametrize("fast", [True, False], ids=["one-statement", "checked-path"])
def test_a_release_is_queued_per_completed_batch_not_per_answer(
    org, weekly_pulse, django_capture_on_commit_callbacks, fast, monkeypatch
):
    # given a team of twelve, k = 5, and a worker that has not released anything yet
    team = team_with_members(organisation=org, size=12, name="Claims")
    cycle = open_cycle(make_schedule(organisation=org, teams=[team], survey=weekly_pulse))
    if not fast:
        monkeypatch.setattr(services, "_submit_in_one_statement", lambda **_kw: None)
    queued = []
    for invitation in Invitation.objects.filter(cycle=cycle).order_by("pk")[:11]:
        loaded = invitation_for_checkin(public_id=invitation.public_id)
        questions = invitation_questions(invitation=loaded)
        answers = {q.pk: q.scale_min for q in questions if q.is_scale}
        with django_capture_on_commit_callbacks() as callbacks:
            services.checkin_submit(
                invitation=loaded, answers=answers, comment=None, questions=questions
            )
        queued.append(len(callbacks))
    # then the fifth and the tenth answer queue it, the ones in between and after do not
    assert queued == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    assert PendingAnswer.objects.filter(cycle=cycle, team=team).count() == 11
    # and the tick still picks up a team whose batch is waiting
    assert services.tick_run(now=DURING).releasing == 1


def test_the_snapshot_cookie_holds_what_the_submit_needs_and_no_token(client, cycle):
    invitation = first_invitation(cycle)
    token = link_token(invitation)
    started(client, invitation)
    cookie = client.cookies[SNAPSHOT_COOKIE]
    assert cookie["path"] == "/checkin/answer/" and cookie["httponly"]
    snapshot = signing.loads(cookie.value, salt=SNAPSHOT_SALT)
    # then it names the invitation, its team, shown items, cycle and survey ...
    assert snapshot["id"] == invitation.pk and snapshot["team"] == invitation.team_id
    assert snapshot["shown"] == [int(q) for q in invitation.question_ids]
    assert snapshot["cycle"] == cycle.pk and snapshot["survey"] == cycle.survey_id
    # ... and never the token (nor its hash)
    stored = repr(snapshot) + repr(dict(client.session))
    assert token not in stored and token_hash(token) not in stored
    # and it rebuilds the form's questions once the survey is kept, without a query
    invitation_questions(invitation=invitation_for_checkin(public_id=invitation.public_id))
    with CaptureQueriesContext(connection) as queries:
        rebuilt, questions = selectors.checkin_from_snapshot(snapshot)
    assert len(queries) == 0
    expected = checkin_with_questions(public_id=invitation.public_id)
    assert [q.pk for q in questions] == [q.pk for q in expected[1]]
    assert rebuilt.pk == invitation.pk and rebuilt.cycle_id == cycle.pk
    # not when this process does not keep that survey (or a snapshot is damaged)
    selectors._SURVEY_ITEMS.clear()
    assert selectors.checkin_from_snapshot(snapshot) is None
    assert selectors.checkin_from_snapshot({**snapshot, "cycle": "x"}) is None
    assert selectors.checkin_from_snapshot(None) is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one statement is PostgreSQL's")
def test_a_session_without_a_snapshot_still_submits_reading_the_invitation(client, cycle):
    # given a check-in started in a browser that did not keep the snapshot's cookie
    invitation = first_invitation(cycle)
    started(client, invitation)
    del client.cookies[SNAPSHOT_COOKIE]
    data = form_data(invitation)
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/checkin/answer/", data)
    # then it is stored, with the invitation read as before
    assert response.status_code == 302
    assert len(queries) == 3
    assert PendingAnswer.objects.count() == 1


def test_refusals_on_the_snapshot_path_are_named_as_on_the_full_path(client, cycle):
    invitation = first_invitation(cycle)
    organisation = cycle.organisation
    organisation.comments_enabled = True
    organisation.save(update_fields=["comments_enabled"])
    started(client, invitation)
    data = form_data(invitation)
    # an answer missing: the form comes back with the error, nothing stored
    first_field = next(iter(data))
    response = client.post("/checkin/answer/", {**data, first_field: ""})
    assert response.status_code == 400 and response.context["form"].errors
    assert PendingAnswer.objects.count() == 0
    # comments switched off since the link was used: the statement refuses the comment, and
    # the full path (whose form no longer has a comment field) stores the answers without it
    organisation.comments_enabled = False
    organisation.save(update_fields=["comments_enabled"])
    response = client.post("/checkin/answer/", {**data, "comment": "hello"})
    assert response.status_code == 302
    assert list(PendingAnswer.objects.values_list("comment", flat=True)) == [""]
    # a second submit (or one after answering in another browser): already received
    response = client.post("/checkin/answer/", data)
    assert response.status_code == 409
    assert PendingAnswer.objects.count() == 1


def test_a_closed_cycle_refuses_a_submit_from_the_snapshot(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)
    data = form_data(invitation)
    Cycle.objects.filter(pk=cycle.pk).update(state=Cycle.State.CLOSED)
    response = client.post("/checkin/answer/", data)
    assert response.status_code == 410
    assert PendingAnswer.objects.count() == 0
    assert not Invitation.objects.get(pk=invitation.pk).answered
