"""Closing: release everything, hand per-team 0-100 indices to wellbeing, alert, summarise."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from checkins import services
from checkins.models import Cycle, Invitation, PendingAnswer, Question, Response
from checkins.selectors import cycle_participation, invitation_questions
from notifications.models import Message
from notifications.services import OutgoingMessage, messages_enqueue_bulk
from tests.checkins.conftest import FIRST_OPEN
from tests.factories import UserFactory
from wellbeing import analytics
from wellbeing.analytics import FlagChange
from wellbeing.models import Organisation

DURING = FIRST_OPEN + timedelta(hours=2)


def answer_all(cycle: Cycle, n: int, value_of=lambda q: q.scale_max) -> list[Invitation]:
    invitations = list(Invitation.objects.filter(cycle=cycle).order_by("pk")[:n])
    with time_machine.travel(DURING, tick=False):
        for inv in invitations:
            answers = {
                q.pk: value_of(q) for q in invitation_questions(invitation=inv) if q.is_scale
            }
            services.checkin_submit(invitation=inv, answers=answers, comment=None)
    return invitations


@pytest.fixture
def recorded(monkeypatch):
    """Capture what close hands to wellbeing and return one flag change for the team."""
    calls: list[dict] = []

    def record(**kwargs):
        calls.append(kwargs)
        team = kwargs["teams"][0]
        return [
            FlagChange(
                flag_id=7,
                team_id=team.team_id,
                kind="empathy_risk",
                change="opened",
                severity="warning",
                recipient_ids=tuple(kwargs["recipients"]),
                context={"team": "Support Tier 1"},
                idempotency_key=f"flag:7:{kwargs['cycle_key']}",
            )
        ]

    monkeypatch.setattr(
        analytics, "cycle_results_record", lambda **kw: record(**kw, recipients=calls_recipients)
    )
    calls_recipients: list[int] = []
    return calls, calls_recipients


def test_close_releases_everything_and_passes_per_team_indices(cycle, recorded):
    calls, recipients = recorded
    lead = UserFactory(organisation=cycle.organisation)
    recipients.append(lead.pk)
    # Given five people answered the worst option everywhere (k = 5, six invited)
    answer_all(cycle, 5)
    # When the cycle closes
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    # Then nothing is pending, and every respondent scores 100 on every dimension they answered
    assert PendingAnswer.objects.count() == 0 and Response.objects.count() == 5
    (call,) = calls
    (team_input,) = call["teams"]
    assert (team_input.invited, team_input.responded) == (6, 5)
    # on PostgreSQL every team's indices come at once, beside the teams; else in each team's own
    batch = call.get("scores")
    assert (batch is not None) == (connection.vendor == "postgresql")
    if batch is not None:
        assert not team_input.scores and batch.team_ids.tolist() == [team_input.team_id]
    scores = batch.by_team()[team_input.team_id] if batch is not None else team_input.scores
    assert list(scores["stress"]) == [100.0] * 5
    # WHO-5 is scored so higher is worse: the best answers give 0
    assert set(scores) >= {"stress", "wellbeing", "client_burnout", "burnout"}
    assert all(len(v) == 5 for v in scores.values())
    assert call["cycle_key"] == cycle.public_id and call["period_start"] == cycle.period_start
    # and the flag change became an alert for its recipient
    alert = Message.objects.get(kind="flag_alert")
    assert alert.recipient_id == lead.pk and alert.context["flag_kind"] == "empathy_risk"
    cycle.refresh_from_db()
    assert cycle.state == "closed" and cycle.closed_at == cycle.closes_at


def test_wellbeing_items_are_reversed_into_higher_is_worse(cycle):
    answer_all(cycle, 5, value_of=lambda q: q.scale_max)
    services.pending_release(cycle=cycle)
    scores = services.cycle_scores(cycle=cycle)[cycle.team_ids[0]]
    assert scores["wellbeing"] == [0.0] * 5  # WHO-5 "all of the time" is the best state
    assert scores["stress"] == [100.0] * 5


def test_close_is_idempotent(cycle, recorded):
    calls, _ = recorded
    answer_all(cycle, 5)
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at + timedelta(minutes=1)) is False
    assert len(calls) == 1


def test_close_scores_and_stores_with_the_garbage_collector_paused(cycle, monkeypatch):
    """``gc_paused`` around both halves of the analytic close, and restored after it."""
    import gc

    from wellbeing import aggregation

    answer_all(cycle, 5)
    seen: dict[str, bool] = {}
    real_scores, real_store = services.cycle_scores, aggregation._aggregates_store

    def scores(**kwargs):
        seen.setdefault("inputs", gc.isenabled())
        return real_scores(**kwargs)

    def store(**kwargs):
        seen["store"] = gc.isenabled()
        return real_store(**kwargs)

    monkeypatch.setattr(aggregation, "_aggregates_store", store)
    monkeypatch.setattr(services, "cycle_scores", scores)
    monkeypatch.setattr(services, "_cycle_scores_sql", lambda **kwargs: None)  # Python scoring
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    assert seen == {"inputs": False, "store": False}
    assert gc.isenabled()


def test_close_before_the_window_ends_does_nothing(cycle):
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at - timedelta(seconds=1)) is False
    cycle.refresh_from_db()
    assert cycle.state == "open"


def test_admin_summary_hides_participation_below_k(cycle):
    admin = UserFactory(organisation=cycle.organisation, is_org_admin=True)
    answer_all(cycle, 3)  # fewer than k = 5
    services.cycle_close(cycle=cycle, now=cycle.closes_at)
    summary = Message.objects.get(kind="cycle_summary", recipient=admin)
    assert summary.context["invited"] == 6
    assert summary.context["responded"] is None and summary.context["participation_rate"] is None


def test_admin_summary_shows_participation_from_k(cycle):
    admin = UserFactory(organisation=cycle.organisation, is_org_admin=True)
    answer_all(cycle, 5)
    services.cycle_close(cycle=cycle, now=cycle.closes_at)
    summary = Message.objects.get(kind="cycle_summary", recipient=admin)
    assert (summary.context["responded"], summary.context["participation_rate"]) == (5, 0.833)
    assert cycle_participation(cycle=cycle)["responded"] == 5


def test_close_wipes_rotations_and_cancels_unsent_reminders(cycle):
    services.tick_run(now=FIRST_OPEN + timedelta(hours=25))
    assert Message.objects.filter(kind="reminder", state="pending").count() == 6
    services.cycle_close(cycle=cycle, now=cycle.closes_at)
    assert not Invitation.objects.exclude(question_ids=[]).exists()
    assert not Invitation.objects.filter(rotation_offset__isnull=False).exists()
    assert Message.objects.filter(kind="reminder", state="pending").count() == 0
    assert not Message.objects.filter(kind="reminder", sensitive_context__isnull=False).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's in-place updates")
def test_answers_and_the_close_rewrite_invitations_in_place(cycle):
    """Neither an answer nor the close's clearing changes an indexed column of an invitation,
    and the table's pages keep room for the new row versions: every update is HOT."""

    def updates() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
                " WHERE relname = 'checkins_invitation'"
            )
            row = cursor.fetchone()
        return (row[0], row[1]) if row else (0, 0)

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'checkins_invitation'")
        assert "fillfactor=50" in cursor.fetchone()[0]
    before_total, before_hot = updates()
    # Given five of six people answered
    answer_all(cycle, 5)
    # When the cycle closes (its clearing rewrites all six invitations)
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    # Then all eleven invitation updates stayed on their page and wrote no index entry
    total, hot = updates()
    assert total - before_total == 11
    assert hot - before_hot == 11


def test_participation_is_withheld_below_k(cycle):
    answer_all(cycle, 4)
    assert cycle_participation(cycle=cycle) == {"invited": 6, "responded": None, "rate": None}


def test_library_questions_score_within_zero_and_hundred(weekly_pulse):
    from wellbeing.stats.scoring import item_to_index

    for q in Question.objects.filter(kind="scale"):
        scale = q.item_scale()
        values = [item_to_index(v, scale) for v in (q.scale_min, q.scale_max)]
        assert sorted(values) == [0.0, 100.0]


@pytest.mark.parametrize("opened_fully", [True, False])
def test_invited_counts_are_read_ahead_only_once_the_opening_is_complete(
    cycle, monkeypatch, opened_fully
):
    # an opening still writing invitations could add some after a read ahead
    Cycle.objects.filter(pk=cycle.pk).update(opened_fully=opened_fully)
    firsts = []
    reads = analytics.cycle_results_reads

    def spy(**kwargs):
        firsts.append(kwargs.get("first"))
        return reads(**kwargs)

    monkeypatch.setattr(analytics, "cycle_results_reads", spy)
    answer_all(cycle, 5)
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    (first,) = firsts
    assert (first is not None) == opened_fully
    if first is not None:
        assert first["invited"]() == {cycle.team_ids[0]: 6}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_close_leaves_the_organisations_inserts_free_and_holds_it_against_imports(
    postgres, cycle, monkeypatch
):
    """While a close's transaction runs, work that only refers to the organisation (the next
    cycle's opening, its messages) goes on; an import, which locks the organisation, waits."""
    answer_all(cycle, 5)
    organisation = cycle.organisation
    admin = UserFactory(organisation=organisation)
    seen: dict[str, str] = {}

    def other_work() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                messages_enqueue_bulk(
                    [
                        OutgoingMessage(
                            organisation_id=organisation.pk,
                            kind="cycle_summary",
                            recipient_id=admin.pk,
                            template="cycle_summary",
                            context={},
                            idempotency_key="during-the-close",
                            sensitive_context={},
                            channel=None,
                            not_before=timezone.now() + timedelta(days=1),
                            jitter_seconds=0,
                        )
                    ]
                )
            seen["message"] = "written"
        except OperationalError as exc:
            seen["message"] = f"waited: {exc}"
        try:
            with transaction.atomic():
                Organisation.objects.select_for_update(nowait=True).get(pk=organisation.pk)
            seen["import"] = "locked the organisation"
        except OperationalError:
            seen["import"] = "waits"
        finally:
            connection.close()

    record = analytics.cycle_results_record

    def record_then_work_elsewhere(**kwargs):
        changes = record(**kwargs)  # inside the close's transaction
        worker = threading.Thread(target=other_work)
        worker.start()
        worker.join(timeout=30)
        return changes

    monkeypatch.setattr(analytics, "cycle_results_record", record_then_work_elsewhere)
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    assert seen == {"message": "written", "import": "waits"}
    assert Message.objects.filter(idempotency_key="during-the-close").exists()
