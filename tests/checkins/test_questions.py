"""The question library and versioning: nothing with answers is edited in place."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine

from checkins import services
from checkins.forms import CheckinForm, field_name_for
from checkins.models import Question, Schedule, Survey
from checkins.selectors import invitation_questions, questions_available
from tests.checkins.conftest import FIRST_OPEN
from wellbeing.analytics import DIMENSIONS
from wellbeing.errors import ServiceError


def test_the_library_ships_the_promised_instruments(weekly_pulse):
    library = Question.objects.filter(organisation__isnull=True)
    keys = set(library.values_list("key", flat=True))
    assert "stress-single-item" in keys and "burnout-single-item" in keys
    assert library.filter(key__startswith="who5-").count() == 5
    assert library.filter(dimension="client_burnout").count() == 6
    assert library.filter(kind="text").count() == 1
    for q in library.filter(kind="scale"):
        assert q.dimension in DIMENSIONS
        assert q.source and q.licence
        assert len(q.scale_labels) == q.scale_max - q.scale_min + 1
        assert q.translations["de"]["text"] and len(q.translations["de"]["labels"]) == len(
            q.scale_labels
        )
    assert not library.filter(text__icontains="perceived stress scale").exists()  # PSS not shipped


def test_the_german_text_is_served_for_german(weekly_pulse):
    q = Question.objects.get(key="who5-calm", organisation__isnull=True)
    assert q.text_in("de").startswith("In den letzten zwei Wochen")
    assert q.labels_in("de")[0] == "Zu keinem Zeitpunkt"
    assert q.text_in("fr") == q.text


def test_a_translation_stored_malformed_falls_back_to_english(org):
    # Given a question whose German entry was stored before translations were checked
    q = make_question(org)
    Question.objects.filter(pk=q.pk).update(
        translations={"de": {"text": ["not", "text"], "labels": 5}}
    )
    q.refresh_from_db()
    # Then German speakers get the English text and the numbered scale, not an error
    form = CheckinForm(questions=[q], language="de")
    assert form.fields[field_name_for(q)].label == q.text
    assert [value for value, _label in form.choices[field_name_for(q)]][:5] == list("12345")


def make_question(org, **kw):
    defaults = {
        "key": "team-clarity",
        "text": "Was it clear what mattered most this week?",
        "dimension": "workload",
        "scale_min": 1,
        "scale_max": 5,
        "higher_is_worse": False,
    }
    defaults.update(kw)
    return services.question_create(organisation=org, **defaults)


def test_an_unanswered_question_is_edited_in_place(org):
    q = make_question(org)
    updated = services.question_update(question=q, text="Clearer?")
    assert updated.pk == q.pk and updated.version == 1 and updated.text == "Clearer?"


def test_an_answered_question_gets_a_new_version(org, cycle):
    # Given an org question that appears in an answered response
    q = make_question(org)
    from checkins.models import Response

    Response.objects.create(cycle=cycle, team_id=cycle.team_ids[0], answers={str(q.pk): 3})
    # When it is edited
    new = services.question_update(question=q, text="Was it clear what mattered?")
    # Then a new version replaces it and the old text is untouched
    q.refresh_from_db()
    assert (new.version, new.replaces_id, new.key) == (2, q.pk, q.key)
    assert q.text == "Was it clear what mattered most this week?" and not q.is_current
    assert new.is_current
    with pytest.raises(ServiceError):
        services.question_update(question=q, text="edit an old version")


def test_library_questions_cannot_be_edited(weekly_pulse):
    q = Question.objects.filter(organisation__isnull=True).first()
    with pytest.raises(ServiceError) as err:
        services.question_update(question=q, text="x")
    assert err.value.code == "read_only"


def test_bad_custom_questions_are_refused(org):
    with pytest.raises(ServiceError) as err:
        make_question(org, scale_min=5, scale_max=1)
    assert err.value.code == "invalid"
    with pytest.raises(ServiceError) as err:
        make_question(org, dimension="happiness")
    assert "dimension" in err.value.fields


def test_a_scale_beyond_a_hundred_is_refused_whatever_the_path(org):
    with pytest.raises(ServiceError) as err:
        make_question(org, scale_min=1, scale_max=30000)
    assert "scale_max" in err.value.fields
    with pytest.raises(ServiceError) as err:
        make_question(org, scale_min=-101, scale_max=5)
    assert "scale_min" in err.value.fields


def test_custom_questions_are_only_visible_to_their_organisation(org):
    from tests.factories import OrganisationFactory

    q = make_question(org)
    assert q in questions_available(organisation=org)
    assert q not in questions_available(organisation=OrganisationFactory())


def test_a_published_survey_is_versioned_and_schedules_follow(org, team, weekly_pulse):
    q1, q2 = make_question(org, key="a"), make_question(org, key="b", dimension="support")
    survey = services.survey_create(organisation=org, name="Mini", question_ids=[q1.pk, q2.pk])
    services.survey_update(survey=survey, name="Mini pulse")  # draft: in place
    survey.refresh_from_db()
    assert (survey.name, survey.version) == ("Mini pulse", 1)
    services.survey_publish(survey=survey)
    schedule = services.schedule_create(
        organisation=org, name="s", survey=survey, team_ids=[team.pk], start_date=date(2026, 3, 1)
    )
    new = services.survey_update(survey=survey, question_ids=[q2.pk, q1.pk])
    assert (new.version, new.replaces_id, new.is_published) == (2, survey.pk, True)
    assert list(new.items.order_by("position").values_list("question_id", flat=True)) == [
        q2.pk,
        q1.pk,
    ]
    assert list(survey.items.order_by("position").values_list("question_id", flat=True)) == [
        q1.pk,
        q2.pk,
    ]
    assert Schedule.objects.get(pk=schedule.pk).survey_id == new.pk
    assert not Survey.objects.get(pk=survey.pk).is_current


def test_surveys_must_measure_every_dimension_within_the_cap(org):
    qs = [make_question(org, key=f"q{i}", dimension=d) for i, d in enumerate(DIMENSIONS)]
    with pytest.raises(ServiceError) as err:
        services.survey_create(
            organisation=org, name="Too wide", question_ids=[q.pk for q in qs], items_per_person=5
        )
    assert "items_per_person" in err.value.fields


def test_schedules_refuse_drafts_foreign_teams_and_late_reminders(org, team, weekly_pulse):
    from tests.factories import TeamFactory

    with pytest.raises(ServiceError) as err:
        services.schedule_create(
            organisation=org,
            name="x",
            survey=weekly_pulse,
            team_ids=[TeamFactory().pk],
            start_date=date(2026, 3, 1),
        )
    assert "team_ids" in err.value.fields
    with pytest.raises(ServiceError) as err:
        services.schedule_create(
            organisation=org,
            name="x",
            survey=weekly_pulse,
            team_ids=[team.pk],
            start_date=date(2026, 3, 1),
            open_hours=24,
            reminder_offsets=[30],
        )
    assert "reminder_offsets" in err.value.fields


def test_customer_facing_items_go_only_to_customer_facing_teams(org, weekly_pulse):
    from tests.checkins.conftest import make_schedule, open_cycle
    from tests.factories import team_with_members

    backoffice = team_with_members(organisation=org, size=3, name="Finance")
    cycle = open_cycle(make_schedule(organisation=org, teams=[backoffice], survey=weekly_pulse))
    with time_machine.travel(FIRST_OPEN + timedelta(hours=1)):
        for inv in cycle.invitations.all():
            dims = {q.dimension for q in invitation_questions(invitation=inv) if q.is_scale}
            assert "client_burnout" not in dims
            assert dims == set(DIMENSIONS) - {"client_burnout"}
            assert len([q for q in invitation_questions(invitation=inv) if q.is_scale]) <= 8
