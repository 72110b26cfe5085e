"""Raw answers are deleted once their cycle has been closed longer than the retention period;
the stored aggregates stay, and the purge can run any number of times."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from checkins.models import Cycle, PendingAnswer, Response
from checkins.retention import purge_expired_responses, responses_purge_expired
from tests.factories import OrganisationFactory, UserFactory
from tests.reliability.helpers import answered_cycle
from wellbeing.models import CycleResult, TeamAggregate, TeamComments, TeamParticipation


def aggregate_rows() -> list[tuple]:
    return sorted(
        [("agg", *row) for row in TeamAggregate.objects.values_list()]
        + [("part", *row) for row in TeamParticipation.objects.values_list()]
        + [("res", *row) for row in CycleResult.objects.values_list()],
        key=repr,
    )


@pytest.fixture
def closed_cycle(db) -> Cycle:
    cycle = answered_cycle(size=6)
    assert Response.objects.filter(cycle=cycle).count() == 6
    return cycle


def test_answers_of_a_cycle_closed_beyond_retention_are_purged(closed_cycle):
    aggregates_before = aggregate_rows()
    assert aggregates_before, "closing should have stored aggregates"
    # when the purge runs 731 days after the close with the default retention of 730 days
    report = responses_purge_expired(now=closed_cycle.closed_at + timedelta(days=731))
    # then the raw answers are gone and the aggregates are untouched
    assert report.responses == 6
    assert Response.objects.filter(cycle=closed_cycle).count() == 0
    assert aggregate_rows() == aggregates_before
    assert Cycle.objects.filter(pk=closed_cycle.pk, state=Cycle.State.CLOSED).exists()


@pytest.fixture
def commented_cycle(db) -> Cycle:
    """A closed cycle of eight people who each wrote a comment, stored for the team and the
    organisation (comment threshold 8)."""
    organisation = OrganisationFactory(
        anonymity_threshold=5, comment_threshold=8, comments_enabled=True
    )
    cycle = answered_cycle(size=8, organisation=organisation, comment="Busy week")
    assert TeamComments.objects.filter(result__cycle_key=cycle.public_id).count() == 2
    return cycle


def test_stored_comments_are_purged_with_the_answers(commented_cycle):
    aggregates_before = aggregate_rows()
    # when the purge runs after the retention period
    report = responses_purge_expired(now=commented_cycle.closed_at + timedelta(days=731))
    # then the groups' stored comments are gone with the raw answers; the figures stay
    assert (report.responses, report.comments) == (8, 2)
    assert not TeamComments.objects.exists()
    assert aggregate_rows() == aggregates_before


def test_stored_comments_within_retention_are_kept(commented_cycle):
    report = responses_purge_expired(now=commented_cycle.closed_at + timedelta(days=729))
    assert report.comments == 0
    assert TeamComments.objects.count() == 2


def test_stored_comments_are_purged_in_batches(commented_cycle, monkeypatch):
    monkeypatch.setattr("checkins.retention.DELETE_BATCH", 1)
    report = responses_purge_expired(now=commented_cycle.closed_at + timedelta(days=731))
    assert report.comments == 2 and not TeamComments.objects.exists()


def test_answers_within_retention_are_kept(closed_cycle):
    report = responses_purge_expired(now=closed_cycle.closed_at + timedelta(days=729))
    assert report.responses == 0
    assert Response.objects.filter(cycle=closed_cycle).count() == 6


def test_open_cycle_answers_are_never_purged(db):
    cycle = answered_cycle(size=6, close=False)
    assert cycle.state == Cycle.State.OPEN
    responses_purge_expired(now=cycle.closes_at + timedelta(days=5000))
    assert Response.objects.filter(cycle=cycle).count() == 6


def test_purge_is_idempotent(closed_cycle):
    later = closed_cycle.closed_at + timedelta(days=800)
    first = responses_purge_expired(now=later)
    second = responses_purge_expired(now=later)
    assert (first.responses, second.responses) == (6, 0)
    assert second.pending == 0


def test_leftover_pending_answers_of_an_expired_cycle_are_purged(closed_cycle):
    PendingAnswer.objects.create(cycle=closed_cycle, team_id=closed_cycle.team_ids[0], answers={})
    report = responses_purge_expired(now=closed_cycle.closed_at + timedelta(days=731))
    assert report.pending == 1
    assert not PendingAnswer.objects.filter(cycle=closed_cycle).exists()


@override_settings(PULSE_RESPONSE_RETENTION_DAYS=30)
def test_retention_period_comes_from_the_setting(closed_cycle):
    assert responses_purge_expired(now=closed_cycle.closed_at + timedelta(days=31)).responses == 6


def test_retention_below_thirty_days_is_refused(closed_cycle):
    with pytest.raises(ValueError, match="at least 30"):
        responses_purge_expired(retention_days=7)
    with pytest.raises(CommandError):
        call_command("purge_responses", "--days", "7")
    assert Response.objects.filter(cycle=closed_cycle).count() == 6


def test_retention_beyond_a_century_is_refused(closed_cycle):
    with pytest.raises(ValueError, match="at most 36500"):
        responses_purge_expired(retention_days=3_000_000)
    with pytest.raises(CommandError, match="at most 36500"):
        call_command("purge_responses", "--days", "3000000")
    assert Response.objects.filter(cycle=closed_cycle).count() == 6


@override_settings(PULSE_RESPONSE_RETENTION_DAYS=3_000_000)
def test_a_retention_setting_beyond_a_century_keeps_everything(closed_cycle):
    # the daily task must not fail on it: no answer is a century old
    assert purge_expired_responses.apply().get() == {
        "cycles": 0,
        "responses": 0,
        "pending": 0,
        "comments": 0,
    }
    assert Response.objects.filter(cycle=closed_cycle).count() == 6


def test_management_command_purges_and_reports(closed_cycle):
    Cycle.objects.filter(pk=closed_cycle.pk).update(
        closed_at=closed_cycle.closed_at - timedelta(days=1000)
    )
    out = StringIO()
    call_command("purge_responses", stdout=out)
    assert "Purged 6 responses" in out.getvalue()
    assert Response.objects.count() == 0


def test_celery_task_purges_when_called(closed_cycle):
    Cycle.objects.filter(pk=closed_cycle.pk).update(
        closed_at=closed_cycle.closed_at - timedelta(days=1000)
    )
    assert purge_expired_responses.apply().get() == {
        "cycles": 1,
        "responses": 6,
        "pending": 0,
        "comments": 0,
    }
    assert Response.objects.count() == 0


def test_retention_task_is_scheduled_daily_and_registered():
    from django.conf import settings

    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["checkins-retention"]
    assert entry["task"] == "checkins.retention.purge_expired_responses"
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


def test_setting_below_thirty_days_is_refused_at_start():
    from tests.wellbeing.test_settings import assert_refused, start

    result = start(
        {"DJANGO_SETTINGS_MODULE": "config.settings.local", "PULSE_RESPONSE_RETENTION_DAYS": "7"}
    )
    assert_refused(result, "PULSE_RESPONSE_RETENTION_DAYS")


def test_the_privacy_page_says_stored_comments_go_with_the_answers(client, db):
    html = client.get("/checkin/privacy/").content.decode()
    assert "kept once per group when a check-in closes, are deleted at the same time" in html
    client.force_login(UserFactory(language="de"))
    html = client.get("/checkin/privacy/").content.decode()
    assert "einmal je Gruppe gespeichert werden, werden zur selben Zeit" in html
