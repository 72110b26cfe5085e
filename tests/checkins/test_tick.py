"""The tick: opens each due period exactly once, catches up after gaps, records fully missed
windows, invites the members of that day, chunks big openings and sends due reminders."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta
from functools import partial

import pytest
import time_machine
from django.db import connection, transaction

from checkins import services, tasks
from checkins.models import Cycle, Invitation, InvitationToken, Schedule
from notifications.models import Message
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule, open_cycle
from tests.factories import MembershipFactory, OrganisationFactory, TeamFactory, team_with_members


def test_tick_before_the_opening_time_opens_nothing(schedule):
    report = services.tick_run(now=FIRST_OPEN - timedelta(minutes=1))
    assert report.opened == [] and Cycle.objects.count() == 0


def test_tick_opens_the_due_cycle_once_even_when_repeated(schedule):
    first = services.tick_run(now=FIRST_OPEN)
    second = services.tick_run(now=FIRST_OPEN + timedelta(minutes=1))
    assert len(first.opened) == 1 and second.opened == []
    cycle = Cycle.objects.get()
    assert (cycle.state, cycle.period_start, cycle.index) == ("open", date(2026, 3, 2), 0)
    assert cycle.opens_at == FIRST_OPEN
    assert cycle.closes_at == FIRST_OPEN + timedelta(hours=96)


def test_tick_after_a_three_hour_gap_opens_the_cycle_late_and_once(schedule):
    # Given beat was down from before the opening time until three hours after
    report = services.tick_run(now=FIRST_OPEN + timedelta(hours=3))
    # Then the period is opened (its window is still running), with its nominal times
    assert len(report.opened) == 1 and report.missed == []
    assert Cycle.objects.get().opens_at == FIRST_OPEN
    assert services.tick_run(now=FIRST_OPEN + timedelta(hours=3, minutes=1)).opened == []


def test_a_fully_missed_window_is_recorded_as_missed_not_opened(schedule):
    # Given beat was down for more than a week
    report = services.tick_run(now=FIRST_OPEN + timedelta(days=7, hours=1))
    # Then the first period (window closed) is missed and the current one is open
    states = dict(Cycle.objects.values_list("period_start", "state"))
    assert states == {date(2026, 3, 2): "missed", date(2026, 3, 9): "open"}
    assert len(report.missed) == 1 and len(report.opened) == 1
    assert not Invitation.objects.filter(cycle__state="missed").exists()


def test_dst_week_opens_at_nine_local(org, team, weekly_pulse):
    make_schedule(
        organisation=org,
        teams=[team],
        survey=weekly_pulse,
        start_date=date(2026, 3, 23),
        created_at=datetime(2026, 3, 20, tzinfo=UTC),
    )
    services.tick_run(now=datetime(2026, 3, 23, 8, 0, tzinfo=UTC))  # 09:00 CET
    # 2026-03-30 is the first Monday of summer time: 09:00 CEST = 07:00 UTC
    assert services.tick_run(now=datetime(2026, 3, 30, 6, 59, tzinfo=UTC)).opened == []
    assert len(services.tick_run(now=datetime(2026, 3, 30, 7, 0, tzinfo=UTC)).opened) == 1
    assert Cycle.objects.get(period_start=date(2026, 3, 30)).opens_at == datetime(
        2026, 3, 30, 7, 0, tzinfo=UTC
    )


def test_paused_schedules_do_not_open(schedule):
    services.schedule_update(schedule=schedule, paused=True)
    assert services.tick_run(now=FIRST_OPEN).opened == []


def test_a_schedule_that_fails_is_rolled_back_and_the_others_still_open(
    org, team, weekly_pulse, monkeypatch, caplog
):
    # Given one organisation's schedule that fails half-way through its catch-up (created
    # first, so the tick reaches it first) and another organisation's healthy schedule
    broken = make_schedule(organisation=org, teams=[team], survey=weekly_pulse)
    other = OrganisationFactory(timezone="Europe/Berlin")
    healthy = make_schedule(
        organisation=other,
        teams=[team_with_members(organisation=other, size=3)],
        survey=weekly_pulse,
    )
    team_ids = services._schedule_team_ids

    def failing_for_broken(schedule):
        if schedule.pk == broken.pk:
            raise RuntimeError("bad data")
        return team_ids(schedule)

    monkeypatch.setattr(services, "_schedule_team_ids", failing_for_broken)
    # When the tick runs a week late: each schedule has a missed period, then one to open
    with caplog.at_level(logging.ERROR, logger="pulse.checkins"):
        report = services.tick_run(now=FIRST_OPEN + timedelta(days=7, hours=1))
    # Then the healthy schedule is caught up; the broken one's missed period is rolled back
    # along with the failure, and the failure is logged with the schedule's id
    assert not Cycle.objects.filter(schedule=broken).exists()
    assert sorted(Cycle.objects.filter(schedule=healthy).values_list("state", flat=True)) == [
        "missed",
        "open",
    ]
    assert len(report.missed) == 1 and len(report.opened) == 1
    assert f"event=schedule_catch_up_failed schedule={broken.pk}" in caplog.text


def test_a_schedule_stored_with_a_first_day_in_9999_does_not_stop_the_tick(org, team, weekly_pulse):
    # Given a schedule stored (when that was still accepted) to start on the calendar's last day
    far = make_schedule(organisation=org, teams=[team], survey=weekly_pulse)
    Schedule.objects.filter(pk=far.pk).update(start_date=date(9999, 12, 31))
    other = OrganisationFactory(timezone="Europe/Berlin")
    healthy = make_schedule(
        organisation=other,
        teams=[team_with_members(organisation=other, size=3)],
        survey=weekly_pulse,
    )
    # When the tick runs, Then it opens the other organisation's cycle and nothing for it
    report = services.tick_run(now=FIRST_OPEN)
    assert list(Cycle.objects.values_list("schedule_id", flat=True)) == [healthy.pk]
    assert len(report.opened) == 1


def test_invitations_go_to_members_on_the_opening_day_only(org, weekly_pulse):
    team = TeamFactory(organisation=org)
    stays = MembershipFactory(team=team, started_on=date(2020, 1, 1))
    joins_after = MembershipFactory(team=team, started_on=date(2026, 3, 3))
    left_before = MembershipFactory(
        team=team, started_on=date(2020, 1, 1), ended_on=date(2026, 3, 1)
    )
    leaves_that_day = MembershipFactory(
        team=team, started_on=date(2020, 1, 1), ended_on=date(2026, 3, 2)
    )
    joins_that_day = MembershipFactory(team=team, started_on=date(2026, 3, 2))
    schedule = make_schedule(organisation=org, teams=[team], survey=weekly_pulse)
    cycle = open_cycle(schedule)
    invited = set(Invitation.objects.filter(cycle=cycle).values_list("user_id", flat=True))
    assert invited == {stays.user_id, leaves_that_day.user_id, joins_that_day.user_id}
    assert joins_after.user_id not in invited and left_before.user_id not in invited
    assert cycle.invited_count == 3


def test_a_person_in_two_targeted_teams_is_invited_once_for_the_latest_membership(
    org, weekly_pulse
):
    # given a person in two targeted teams (the second membership started later), and an
    # inactive member
    first, second = TeamFactory(organisation=org), TeamFactory(organisation=org)
    both = MembershipFactory(team=first, started_on=date(2020, 1, 1))
    MembershipFactory(team=second, user=both.user, started_on=date(2025, 6, 1))
    only_first = MembershipFactory(team=first, started_on=date(2020, 1, 1))
    inactive = MembershipFactory(team=second, started_on=date(2020, 1, 1))
    inactive.user.is_active = False
    inactive.user.save(update_fields=["is_active"])
    schedule = make_schedule(organisation=org, teams=[first, second], survey=weekly_pulse)
    # when the cycle opens
    cycle = open_cycle(schedule)
    # then each active person has one invitation, in the team they joined last, and a token
    invited = dict(Invitation.objects.filter(cycle=cycle).values_list("user_id", "team_id"))
    assert invited == {both.user_id: second.pk, only_first.user_id: first.pk}
    assert InvitationToken.objects.filter(invitation__cycle=cycle).count() == 2


def test_subteams_are_included_and_each_invitation_records_its_team(org, weekly_pulse):
    parent = team_with_members(organisation=org, size=2, name="Service")
    child = team_with_members(organisation=org, size=3, name="Tier 2", parent=parent)
    schedule = make_schedule(organisation=org, teams=[parent], survey=weekly_pulse)
    cycle = open_cycle(schedule)
    per_team = sorted(Invitation.objects.filter(cycle=cycle).values_list("team_id", flat=True))
    assert per_team == sorted([parent.pk] * 2 + [child.pk] * 3)
    assert sorted(cycle.team_ids) == sorted([parent.pk, child.pk])


def test_a_last_chunk_that_is_exactly_full_marks_the_cycle_opened(org, weekly_pulse):
    # given six members and chunks of three
    team = team_with_members(organisation=org, size=6)
    make_schedule(organisation=org, teams=[team], survey=weekly_pulse)
    cycle = Cycle.objects.get(pk=services.tick_run(now=FIRST_OPEN).opened[0])
    # when opened chunk by chunk, then the second (full) chunk already reports no more
    assert services.cycle_open_chunk(cycle=cycle, chunk_size=3)
    assert not services.cycle_open_chunk(cycle=cycle, chunk_size=3)
    cycle.refresh_from_db()
    assert cycle.opened_fully and cycle.invited_count == 6


def test_opening_is_chunked_and_writes_one_message_per_invitation(org, weekly_pulse):
    team = team_with_members(organisation=org, size=7)
    make_schedule(organisation=org, teams=[team], survey=weekly_pulse)
    cycle = Cycle.objects.get(pk=services.tick_run(now=FIRST_OPEN).opened[0])
    calls = 0
    while services.cycle_open_chunk(cycle=cycle, chunk_size=3):
        calls += 1
    cycle.refresh_from_db()
    assert calls == 2 and cycle.opened_fully and cycle.invited_count == 7
    keys = set(Message.objects.filter(kind="invitation").values_list("idempotency_key", flat=True))
    assert keys == {f"inv:{p}" for p in Invitation.objects.values_list("public_id", flat=True)}
    # running the chunk again invites nobody twice
    assert services.cycle_open_chunk(cycle=cycle, chunk_size=3) is False
    assert Invitation.objects.count() == 7


def test_the_opening_task_rests_between_chunks_and_not_after_the_last(
    org, weekly_pulse, monkeypatch
):
    # given five members, chunks of three, and a rest recorder in place of the sleep
    team = team_with_members(organisation=org, size=5)
    make_schedule(organisation=org, teams=[team], survey=weekly_pulse)
    cycle = Cycle.objects.get(pk=services.tick_run(now=FIRST_OPEN).opened[0])
    open_chunk = services.cycle_open_chunk
    monkeypatch.setattr(services, "cycle_open_chunk", partial(open_chunk, chunk_size=3))
    rests: list[float] = []
    monkeypatch.setattr(tasks, "opening_rest", rests.append)
    # when the task runs twice (its re-queued run is taken off the broker's hands here)
    tasks.cycle_open_chunk_task(cycle.pk)
    assert len(rests) == 1 and rests[0] > 0  # the first chunk's time
    tasks.cycle_open_chunk_task(cycle.pk)
    # then the last chunk ended the opening without a rest
    cycle.refresh_from_db()
    assert cycle.opened_fully and cycle.invited_count == 5 and len(rests) == 1


@pytest.mark.parametrize(
    ("percent", "chunk", "expected"), [(50, 0.4, 0.2), (0, 0.4, 0.0), (100, 9.0, 5.0)]
)
def test_an_opening_rests_its_share_of_each_chunk_at_most_five_seconds(
    settings, percent, chunk, expected
):
    settings.PULSE_OPENING_REST_PERCENT = percent
    slept: list[float] = []
    assert tasks.opening_rest(chunk, sleep=slept.append) == pytest.approx(expected)
    assert slept == ([pytest.approx(expected)] if expected else [])


def test_invitations_and_their_messages_get_ids_in_the_order_they_are_written(org, weekly_pulse):
    """Time-ordered public ids (``wellbeing.ids``): an opening adds to the right edge of each
    id index, so do the message keys made from them; each chunk's ids follow the last's."""
    make_schedule(organisation=org, teams=[team_with_members(organisation=org, size=7)],
                  survey=weekly_pulse)  # fmt: skip
    cycle = Cycle.objects.get(pk=services.tick_run(now=FIRST_OPEN).opened[0])
    while services.cycle_open_chunk(cycle=cycle, chunk_size=3):
        pass
    invitations = list(Invitation.objects.order_by("pk").values_list("public_id", flat=True))
    messages = Message.objects.filter(kind="invitation").order_by("pk")
    message_ids = list(messages.values_list("public_id", flat=True))
    keys = list(messages.values_list("idempotency_key", flat=True))
    assert len(invitations) == len(message_ids) == 7
    assert {i.version for i in invitations + message_ids} == {7}
    assert invitations == sorted(invitations) and message_ids == sorted(message_ids)
    assert keys == sorted(keys) == [f"inv:{p}" for p in invitations]


def test_invitation_messages_carry_the_link_only_in_sensitive_context(cycle):
    message = Message.objects.filter(kind="invitation").first()
    assert message.sensitive_context["url"].startswith("http")
    assert "/checkin/t/" in message.sensitive_context["url"]
    assert "url" not in message.context and "token" not in str(message.context)


def test_due_reminders_go_once_to_people_who_have_not_answered(cycle):
    # Given one person answered
    answered = Invitation.objects.filter(cycle=cycle).first()
    Invitation.objects.filter(pk=answered.pk).update(answered=True)
    # When the tick runs after the 24 h offset, twice
    services.tick_run(now=FIRST_OPEN + timedelta(hours=24, minutes=1))
    services.tick_run(now=FIRST_OPEN + timedelta(hours=24, minutes=2))
    # Then each of the other five got exactly one reminder, with its own fresh link
    reminders = Message.objects.filter(kind="reminder")
    assert reminders.count() == 5
    assert answered.user_id not in set(reminders.values_list("recipient_id", flat=True))
    assert {m.sensitive_context["url"] for m in reminders}.isdisjoint(
        set(
            Message.objects.filter(kind="invitation").values_list(
                "sensitive_context__url", flat=True
            )
        )
    )


def test_cancelling_a_cycles_waiting_messages_keeps_its_invitations_and_other_cycles(
    cycle, weekly_pulse
):
    # given reminders waiting for this cycle and another organisation's
    other = OrganisationFactory(timezone="Europe/Berlin")
    other_cycle = open_cycle(
        make_schedule(
            organisation=other,
            teams=[team_with_members(organisation=other, size=3)],
            survey=weekly_pulse,
        )
    )
    services.tick_run(now=FIRST_OPEN + timedelta(hours=24, minutes=1))
    # when this cycle's waiting messages are cancelled
    cancelled = services.cycle_messages_cancel_pending(cycles=[cycle], reason="a test's reason")
    # then its six reminders are, saying why; its invitations and the other cycle's are not
    mine = Message.objects.filter(organisation=cycle.organisation)
    assert cancelled == 6
    assert set(mine.filter(kind="reminder").values_list("state", "last_error")) == {
        ("cancelled", "a test's reason")
    }
    assert set(mine.filter(kind="invitation").values_list("state", flat=True)) == {"pending"}
    theirs = Message.objects.filter(organisation=other_cycle.organisation)
    assert set(theirs.values_list("state", flat=True)) == {"pending"}
    assert theirs.filter(kind="reminder").count() == 3


def test_reminders_missed_during_an_outage_are_sent_once(cycle):
    services.tick_run(now=FIRST_OPEN + timedelta(hours=80))  # 24 h and 72 h both due
    assert Message.objects.filter(kind="reminder").count() == 6
    cycle.refresh_from_db()
    assert cycle.reminders_sent == [24, 72]


def test_a_cycle_whose_reminders_fail_does_not_hold_back_the_others(
    cycle, weekly_pulse, monkeypatch, caplog
):
    # Given another organisation's cycle open at the same time
    other = OrganisationFactory(timezone="Europe/Berlin")
    other_team = team_with_members(organisation=other, size=3)
    other_cycle = open_cycle(
        make_schedule(organisation=other, teams=[other_team], survey=weekly_pulse)
    )
    broken = cycle
    reminders_enqueue_due = services.reminders_enqueue_due

    def failing_for_cycle(*, cycle: Cycle, now: datetime) -> int:
        if cycle.pk == broken.pk:
            raise RuntimeError("bad data")
        return reminders_enqueue_due(cycle=cycle, now=now)

    monkeypatch.setattr(services, "reminders_enqueue_due", failing_for_cycle)
    # When reminders fall due and the first cycle's fail
    with caplog.at_level(logging.ERROR, logger="pulse.checkins"):
        report = services.tick_run(now=FIRST_OPEN + timedelta(hours=24, minutes=1))
    # Then the other organisation's people are reminded all the same
    assert report.reminders == 3
    assert set(
        Message.objects.filter(kind="reminder").values_list("recipient_id", flat=True)
    ) == set(Invitation.objects.filter(cycle=other_cycle).values_list("user_id", flat=True))
    assert f"event=reminders_failed cycle={broken.public_id} error=RuntimeError" in caplog.text


def test_tick_hands_ended_cycles_to_the_close_task(cycle, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        report = services.tick_run(now=cycle.closes_at)
    assert report.closing == [cycle.pk]
    assert callbacks  # the close task is queued after commit


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_ticks_open_exactly_one_cycle(postgres):
    # Given a schedule due now
    survey = ensure_library()
    org = OrganisationFactory()
    team = team_with_members(organisation=org, size=3)
    make_schedule(organisation=org, teams=[team], survey=survey)
    barrier = threading.Barrier(8)
    opened: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            opened.extend(services.tick_run(now=FIRST_OPEN).opened)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    # When eight ticks run at the same moment, each on its own connection
    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    # Then exactly one of them opened the cycle
    assert errors == []
    assert len(opened) == 1
    assert Cycle.objects.count() == 1


def test_the_beat_task_catches_up_after_three_hours_without_ticks(schedule):
    from checkins.tasks import tick

    # Given beat was down from before the opening until three hours after it
    with time_machine.travel(FIRST_OPEN + timedelta(hours=3), tick=False):
        first = tick()
        second = tick()
    # Then the task opened the period once
    assert tick.name == "checkins.tasks.tick"
    assert (first["opened"], second["opened"]) == (1, 0)
    assert Cycle.objects.get().state == "open"


def test_opening_a_chunk_costs_the_same_queries_for_many_members(
    org, weekly_pulse, django_assert_max_num_queries
):
    team = team_with_members(organisation=org, size=40)
    make_schedule(organisation=org, teams=[team], survey=weekly_pulse)
    cycle = Cycle.objects.get(pk=services.tick_run(now=FIRST_OPEN).opened[0])
    with django_assert_max_num_queries(20):
        services.cycle_open_chunk(cycle=cycle)
    assert Invitation.objects.count() == 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_opening_chunk_is_not_stopped_by_locks_on_other_rows_or_a_busy_cycle(postgres):
    """A chunk claims only the cycle row: an insert elsewhere in the organisation (key-share lock
    on its row, e.g. a close writing alerts) does not make it skip, and a cycle held for a
    moment (a submit's share lock) keeps the opening going instead of ending the chain."""
    from wellbeing.models import Organisation, Team

    survey = ensure_library()
    org = OrganisationFactory()
    team = team_with_members(organisation=org, size=5)
    make_schedule(organisation=org, teams=[team], survey=survey)
    cycle = Cycle.objects.get(pk=services.tick_run(now=FIRST_OPEN).opened[0])
    holding, release = threading.Event(), threading.Event()

    def hold(lock) -> None:
        try:
            with transaction.atomic():
                lock()
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def run_holding(lock, step):
        holding.clear()
        release.clear()
        thread = threading.Thread(target=hold, args=(lock,))
        thread.start()
        assert holding.wait(timeout=10)
        try:
            return step()
        finally:
            release.set()
            thread.join(timeout=30)

    # an insert referencing the organisation is in flight: the chunk still invites
    more = run_holding(
        lambda: Team.objects.create(organisation=Organisation.objects.get(pk=org.pk), name="New"),
        lambda: services.cycle_open_chunk(cycle=cycle, chunk_size=2),
    )
    assert more is True and Invitation.objects.filter(cycle=cycle).count() == 2
    # the cycle row itself is held (another chunk, or a submit in flight): nothing is invited, but the
    # answer is "more to do", so the task re-queues the opening
    more = run_holding(
        lambda: list(Cycle.objects.select_for_update(no_key=True).filter(pk=cycle.pk)),
        lambda: services.cycle_open_chunk(cycle=cycle, chunk_size=2),
    )
    assert more is True and Invitation.objects.filter(cycle=cycle).count() == 2
    # once free, the opening finishes
    while services.cycle_open_chunk(cycle=cycle, chunk_size=2):
        pass
    cycle.refresh_from_db()
    assert cycle.opened_fully and Invitation.objects.filter(cycle=cycle).count() == 5


def test_deleting_a_team_takes_its_invitations_and_their_links_along(cycle, team):
    """Invitations are not indexed by team (nothing reads them so); the rare deletion of a
    team in the Django admin still removes them, by its cascade."""
    assert Invitation.objects.filter(team=team).count() == 6
    team.delete()
    assert not Invitation.objects.exists() and not InvitationToken.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("erased_after", ["members_read", "outbox_written"])
def test_a_person_erased_while_a_chunk_invites_them_is_left_with_no_invitation(
    postgres, monkeypatch, erased_after
):
    """Invitations point to their person without a database constraint; the e-mail written with
    each one does, so a chunk that read a person the erasure then deleted fails as a whole
    (found missing by the outbox, or by the recipient's key at commit), and the next attempt
    invites everyone else."""
    from django.db import IntegrityError

    import notifications.services
    from wellbeing.errors import ServiceError
    from wellbeing.person_deletion import person_erase

    survey = ensure_library()
    org = OrganisationFactory()
    team = team_with_members(organisation=org, size=5)
    make_schedule(organisation=org, teams=[team], survey=survey)
    cycle = Cycle.objects.get(pk=services.tick_run(now=FIRST_OPEN).opened[0])
    members = sorted(team.memberships.values_list("user_id", flat=True))
    erased = members[2]
    reached, erasure_done = threading.Event(), threading.Event()
    module, name = {
        "members_read": (services, "opening_members"),
        "outbox_written": (notifications.services, "messages_enqueue_bulk"),
    }[erased_after]
    step = getattr(module, name)

    def step_then_wait(*args, **kwargs):
        done = step(*args, **kwargs)
        reached.set()
        assert erasure_done.wait(timeout=30)
        return done

    monkeypatch.setattr(module, name, step_then_wait)
    errors: list[BaseException] = []

    def chunk() -> None:
        try:
            services.cycle_open_chunk(cycle=Cycle.objects.get(pk=cycle.pk))
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)
        finally:
            connection.close()

    # Given a chunk has read who to invite (or written their invitations and e-mails)
    thread = threading.Thread(target=chunk)
    thread.start()
    assert reached.wait(timeout=10)
    # When one of them is erased before the chunk commits
    person_erase(user=team.memberships.get(user_id=erased).user)
    erasure_done.set()
    thread.join(timeout=30)
    # Then the chunk failed and wrote nothing
    expected = ServiceError if erased_after == "members_read" else IntegrityError
    assert len(errors) == 1 and isinstance(errors[0], expected), errors
    assert not Invitation.objects.exists() and not Message.objects.exists()
    # and the next attempt invites the four others only
    monkeypatch.setattr(module, name, step)
    services.cycle_open_all(cycle=Cycle.objects.get(pk=cycle.pk))
    invited = sorted(Invitation.objects.filter(cycle=cycle).values_list("user_id", flat=True))
    assert invited == [m for m in members if m != erased]
    assert InvitationToken.objects.count() == 4


def test_a_team_moved_under_another_schedules_team_stays_with_its_own_schedule(db):
    # given a department with its schedule, and a team with a schedule of its own
    organisation = OrganisationFactory(timezone="Europe/Berlin")
    survey = ensure_library()
    department = TeamFactory(organisation=organisation, name="Department")
    stays = team_with_members(organisation=organisation, size=6, name="Stays", parent=department)
    moved = team_with_members(organisation=organisation, size=6, name="Moved")
    whole = make_schedule(organisation=organisation, teams=[department], survey=survey)
    own = make_schedule(organisation=organisation, teams=[moved], survey=survey, name="Own")
    # when the team is moved into the department after both were set up
    from wellbeing.services import team_move

    team_move(team=moved, new_parent=department, actor=None)
    report = services.tick_run(now=FIRST_OPEN)
    # then each person is checked in once that week: the team by its own schedule only
    cycles = {c.schedule_id: c for c in Cycle.objects.filter(pk__in=report.opened)}
    assert set(cycles[whole.pk].team_ids) == {department.pk, stays.pk}
    assert set(cycles[own.pk].team_ids) == {moved.pk}
