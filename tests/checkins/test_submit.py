"""Submitting: hostile input is refused whole, answers are stored exactly once and unlinked."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection

from checkins import services
from checkins.models import Cycle, Invitation, PendingAnswer, Question, Response
from checkins.selectors import invitation_questions
from checkins.tasks import pending_release_task
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule, open_cycle
from tests.factories import OrganisationFactory, team_with_members
from wellbeing.errors import ServiceError

DURING = FIRST_OPEN + timedelta(hours=2)


@pytest.fixture(autouse=True)
def _during_the_window():
    with time_machine.travel(DURING, tick=False):
        yield


def valid_answers(invitation: Invitation) -> dict[int, int]:
    return {q.pk: q.scale_min for q in invitation_questions(invitation=invitation) if q.is_scale}


def first_invitation(cycle: Cycle) -> Invitation:
    return Invitation.objects.filter(cycle=cycle).order_by("pk").first()


def assert_nothing_stored(invitation: Invitation) -> None:
    invitation.refresh_from_db()
    assert not invitation.answered
    assert PendingAnswer.objects.count() == 0 and Response.objects.count() == 0


def test_valid_answers_mark_participation_and_wait_in_the_pending_store(cycle):
    invitation = first_invitation(cycle)
    services.checkin_submit(invitation=invitation, answers=valid_answers(invitation), comment=None)
    invitation.refresh_from_db()
    assert invitation.answered
    assert invitation.question_ids == [] and invitation.rotation_offset is None
    pending = PendingAnswer.objects.get()
    assert pending.team_id == invitation.team_id and pending.cycle_id == cycle.pk
    assert Response.objects.count() == 0


def test_skipped_optional_items_are_accepted(cycle):
    invitation = first_invitation(cycle)
    answers = valid_answers(invitation)
    optional = [qid for qid in answers if not Question.objects.get(pk=qid).required]
    answers[optional[0]] = None
    services.checkin_submit(invitation=invitation, answers=answers, comment="")
    assert str(optional[0]) not in PendingAnswer.objects.get().answers


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda a, q: a.update({q: 99}), "Choose a value"),
        (lambda a, q: a.update({q: -1}), "Choose a value"),
        (lambda a, q: a.update({q: "lots"}), "whole number"),
        (lambda a, q: a.update({q: 2.5}), "whole number"),
        (lambda a, q: a.update({q: True}), "whole number"),
        (lambda a, q: a.update({999999: 1}), "not part of your check-in"),
        (lambda a, q: a.update({"drop table": 1}), "Unknown question"),
        (lambda a, q: a.update({str(q): 1}), "more than once"),
    ],
)
def test_bad_answers_are_refused_naming_the_item_and_nothing_is_stored(cycle, mutate, problem):
    invitation = first_invitation(cycle)
    answers: dict = valid_answers(invitation)
    target = next(iter(answers))
    mutate(answers, target)
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(invitation=invitation, answers=answers, comment=None)
    assert err.value.code == "invalid" and err.value.status == 400
    messages = [m for ms in err.value.fields.values() for m in ms]
    assert any(problem in m for m in messages), err.value.fields
    assert_nothing_stored(invitation)


def test_a_missing_required_item_is_refused(cycle):
    invitation = first_invitation(cycle)
    answers = valid_answers(invitation)
    stress = Question.objects.get(key="stress-single-item", organisation__isnull=True)
    assert stress.required and stress.pk in answers
    answers[stress.pk] = None
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(invitation=invitation, answers=answers, comment=None)
    assert err.value.fields == {str(stress.pk): ["This question needs an answer."]}
    assert_nothing_stored(invitation)


def test_several_problems_are_reported_together(cycle):
    invitation = first_invitation(cycle)
    answers: dict = valid_answers(invitation)
    a, b = list(answers)[:2]
    answers[a], answers[b] = 42, "x"
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(invitation=invitation, answers=answers, comment="hi")
    assert {str(a), str(b), "comment"} <= set(err.value.fields)
    assert_nothing_stored(invitation)


def test_answers_that_are_not_a_mapping_are_refused(cycle):
    invitation = first_invitation(cycle)
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(invitation=invitation, answers=[1, 2], comment=None)  # type: ignore[arg-type]
    assert "answers" in err.value.fields


def test_comments_only_when_enabled_and_within_the_limit(cycle):
    invitation = first_invitation(cycle)
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(
            invitation=invitation, answers=valid_answers(invitation), comment="x"
        )
    assert "not enabled" in err.value.fields["comment"][0]
    cycle.organisation.comments_enabled = True
    cycle.organisation.comment_threshold = 8
    cycle.organisation.save()
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(
            invitation=invitation, answers=valid_answers(invitation), comment="x" * 1001
        )
    assert "1000" in err.value.fields["comment"][0]
    assert_nothing_stored(invitation)
    services.checkin_submit(
        invitation=invitation, answers=valid_answers(invitation), comment=" fine "
    )
    assert PendingAnswer.objects.get().comment == "fine"


def test_a_second_submit_stores_nothing_and_reports_already_received(cycle):
    invitation = first_invitation(cycle)
    services.checkin_submit(invitation=invitation, answers=valid_answers(invitation), comment=None)
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(invitation=invitation, answers={}, comment=None)
    assert (err.value.code, err.value.status) == ("already_received", 409)
    assert PendingAnswer.objects.count() == 1


def test_submitting_after_the_window_is_refused(cycle):
    invitation = first_invitation(cycle)
    answers = valid_answers(invitation)
    with time_machine.travel(cycle.closes_at, tick=False), pytest.raises(ServiceError) as err:
        services.checkin_submit(invitation=invitation, answers=answers, comment=None)
    assert err.value.code == "expired"
    assert_nothing_stored(invitation)


def test_the_kth_answer_of_a_team_queues_a_release(cycle, django_capture_on_commit_callbacks):
    # Given k = 5 and six invited people in one team
    invitations = list(Invitation.objects.filter(cycle=cycle).order_by("pk"))
    queued = []
    for invitation in invitations[:5]:
        with django_capture_on_commit_callbacks() as callbacks:
            services.checkin_submit(
                invitation=invitation, answers=valid_answers(invitation), comment=None
            )
        queued.append(len(callbacks))
    # Then only the fifth submit queued the release
    assert queued == [0, 0, 0, 0, 1]


def test_release_waits_for_k_pending_answers_then_moves_them_all(cycle):
    invitations = list(Invitation.objects.filter(cycle=cycle).order_by("pk"))
    team_id = invitations[0].team_id
    for invitation in invitations[:4]:
        services.checkin_submit(
            invitation=invitation, answers=valid_answers(invitation), comment=None
        )
    pending_release_task(cycle.pk, team_id)
    assert (PendingAnswer.objects.count(), Response.objects.count()) == (4, 0)
    # answers keep random ids: an id that followed time would tell when each was given
    assert {a.id.version for a in PendingAnswer.objects.all()} == {4}
    services.checkin_submit(
        invitation=invitations[4], answers=valid_answers(invitations[4]), comment=None
    )
    pending_release_task(cycle.pk, team_id)
    assert (PendingAnswer.objects.count(), Response.objects.count()) == (0, 5)
    assert {r.id.version for r in Response.objects.all()} == {4}


def test_a_forced_final_batch_below_k_is_mixed_with_the_teams_earlier_responses(cycle):
    invitations = list(Invitation.objects.filter(cycle=cycle).order_by("pk"))
    for invitation in invitations[:5]:
        services.checkin_submit(
            invitation=invitation, answers=valid_answers(invitation), comment=None
        )
    services.pending_release(cycle=cycle)
    before = set(Response.objects.values_list("pk", flat=True))
    services.checkin_submit(
        invitation=invitations[5], answers=valid_answers(invitations[5]), comment=None
    )
    assert services.pending_release(cycle=cycle, force=True) == 1
    after = set(Response.objects.values_list("pk", flat=True))
    assert len(after) == 6 and before.isdisjoint(after)  # all six re-inserted as one batch


def test_response_rows_hold_nothing_that_points_to_a_person():
    names = {f.name for f in PendingAnswer._meta.get_fields()}
    assert names == {"id", "cycle", "team", "answers", "comment"}
    # a released response also keeps its answers' indices, computed from the answers alone
    assert {f.name for f in Response._meta.get_fields()} == names | {"scores"}
    for model in (Response, PendingAnswer):
        internal = {f.get_internal_type() for f in model._meta.concrete_fields}
        assert not internal & {
            "DateTimeField",
            "DateField",
            "TimeField",
            "AutoField",
            "BigAutoField",
        }
        assert model._meta.pk.get_internal_type() == "UUIDField"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_submits_with_one_link_store_one_response(postgres):
    # Given one invitation
    survey = ensure_library()
    org = OrganisationFactory()
    team = team_with_members(organisation=org, size=3)
    cycle = open_cycle(make_schedule(organisation=org, teams=[team], survey=survey))
    invitation = first_invitation(cycle)
    answers = valid_answers(invitation)
    barrier = threading.Barrier(50)
    outcomes: list[str] = []

    def submit() -> None:
        try:
            barrier.wait(timeout=20)
            services.checkin_submit(invitation=invitation, answers=answers, comment=None)
            outcomes.append("stored")
        except ServiceError as exc:
            outcomes.append(exc.code)
        except BaseException as exc:  # noqa: BLE001
            outcomes.append(repr(exc))
        finally:
            connection.close()

    # When fifty requests submit it at the same moment
    threads = [threading.Thread(target=submit) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # Then one is stored and 49 are told it was already received
    assert sorted(set(outcomes)) == ["already_received", "stored"], outcomes
    assert outcomes.count("stored") == 1
    assert PendingAnswer.objects.count() + Response.objects.count() == 1


def test_submit_runs_a_bounded_number_of_queries(cycle, django_assert_max_num_queries):
    invitation = first_invitation(cycle)
    answers = valid_answers(invitation)
    with django_assert_max_num_queries(10):
        services.checkin_submit(invitation=invitation, answers=answers, comment=None)


def test_submit_with_the_forms_invitation_and_questions_reads_nothing_twice(
    cycle, django_assert_max_num_queries
):
    # given the invitation and its questions as the answer form loads them
    invitation = (
        Invitation.objects.select_related("cycle", "cycle__organisation", "user")
        .filter(cycle=cycle)
        .order_by("pk")
        .first()
    )
    questions = invitation_questions(invitation=invitation)
    answers = valid_answers(invitation)
    # when submitted: savepoint, cycle read (locked), claim, insert, count, release
    with django_assert_max_num_queries(6):
        services.checkin_submit(
            invitation=invitation, answers=answers, comment=None, questions=questions
        )
    # then the answers are pending and the invitation is used up
    assert PendingAnswer.objects.get().answers == {str(q): v for q, v in answers.items()}
    assert Invitation.objects.get(pk=invitation.pk).answered


def test_a_refused_submit_leaves_the_invitation_unanswered(cycle):
    # given an invitation and answers missing a required item
    invitation = first_invitation(cycle)
    answers = valid_answers(invitation)
    answers.pop(next(iter(answers)))
    # when submitted, the answers are refused and the claim is rolled back
    with pytest.raises(ServiceError) as err:
        services.checkin_submit(invitation=invitation, answers=answers, comment=None)
    assert err.value.code == "invalid"
    assert not Invitation.objects.get(pk=invitation.pk).answered
    assert PendingAnswer.objects.count() == 0
    # and a corrected submit goes through
    services.checkin_submit(invitation=invitation, answers=valid_answers(invitation), comment=None)
    assert Invitation.objects.get(pk=invitation.pk).answered
