"""Messages wait for the recipient's working hours in their own timezone, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine

from notifications.models import NotificationPreference
from notifications.quiet_hours import next_allowed_time
from notifications.services import message_enqueue
from tests.factories import UserFactory

from .helpers import invitation

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_inside_working_hours_is_unchanged():
    moment = utc(2025, 6, 11, 10, 0)  # Wednesday 12:00 in Berlin
    assert next_allowed_time(moment, tz=BERLIN) == moment


def test_friday_evening_waits_until_monday_eight_local():
    friday_evening = utc(2025, 6, 13, 17, 0)  # Friday 19:00 CEST
    assert next_allowed_time(friday_evening, tz=BERLIN) == utc(2025, 6, 16, 6, 0)  # Mon 08:00


def test_early_morning_waits_until_eight_the_same_day():
    early = utc(2025, 6, 11, 3, 0)  # Wednesday 05:00 CEST
    assert next_allowed_time(early, tz=BERLIN) == utc(2025, 6, 11, 6, 0)


def test_autumn_dst_change_over_the_weekend_moves_eight_oclock_by_an_hour_in_utc():
    # Berlin leaves summer time on Sunday 26 October 2025: Monday 08:00 is 07:00 UTC, not 06:00
    saturday_evening = utc(2025, 10, 25, 18, 0)
    assert next_allowed_time(saturday_evening, tz=BERLIN) == utc(2025, 10, 27, 7, 0)


def test_spring_dst_change_over_the_weekend():
    # Berlin enters summer time on Sunday 30 March 2025: Monday 08:00 is 06:00 UTC
    friday_night = utc(2025, 3, 28, 19, 0)  # 20:00 CET
    assert next_allowed_time(friday_night, tz=BERLIN) == utc(2025, 3, 31, 6, 0)


def test_new_york_changes_on_another_weekend_than_europe():
    # US summer time starts Sunday 9 March 2025; Monday 08:00 EDT is 12:00 UTC
    saturday = utc(2025, 3, 8, 15, 0)
    assert next_allowed_time(saturday, tz=NEW_YORK) == utc(2025, 3, 10, 12, 0)


def test_working_hours_starting_inside_a_dst_gap_open_after_the_gap():
    # 02:30 does not exist in Berlin on 30 March 2025: the window opens at 03:30 CEST (01:30 UTC)
    sunday_night = utc(2025, 3, 29, 23, 0)
    opened = next_allowed_time(
        sunday_night, tz=BERLIN, work_start=time(2, 30), work_end=time(5, 0), work_days=[6]
    )
    assert opened == utc(2025, 3, 30, 1, 30)


def test_custom_weekend_work_days():
    friday_evening = utc(2025, 6, 13, 17, 0)
    saturday_ten = next_allowed_time(
        friday_evening, tz=BERLIN, work_start=time(10, 0), work_end=time(14, 0), work_days=[5]
    )
    assert saturday_ten == utc(2025, 6, 14, 8, 0)


def test_naive_moment_is_refused():
    with pytest.raises(ValueError):
        next_allowed_time(datetime(2025, 6, 11, 10, 0), tz=BERLIN)


@pytest.mark.django_db
def test_enqueue_on_friday_evening_is_due_monday_morning_in_the_recipients_timezone(organisation):
    # given a person in New York in a Berlin organisation
    person = UserFactory(organisation=organisation, timezone="America/New_York")
    # when an invitation is enqueued on Friday 19:00 New York time
    with time_machine.travel(utc(2025, 6, 13, 23, 0), tick=False):
        message = message_enqueue(invitation(organisation, person, "inv-ny"))
    # then it is due Monday 08:00 EDT
    assert message is not None
    assert message.next_attempt_at == utc(2025, 6, 16, 12, 0)


@pytest.mark.django_db
def test_not_before_and_jitter_then_personal_working_hours(organisation):
    # given a person who works 10:00-16:00 Berlin time
    person = UserFactory(organisation=organisation)
    NotificationPreference.objects.create(user=person, work_start=time(10), work_end=time(16))
    # when an invitation may go out from Wednesday 07:00 UTC with up to an hour of jitter
    with time_machine.travel(utc(2025, 6, 10, 12, 0), tick=False):
        message = message_enqueue(
            invitation(
                organisation,
                person,
                "inv-j",
                not_before=utc(2025, 6, 11, 7, 0),
                jitter_seconds=3600,
            )
        )
    # then it waits for 10:00 Berlin (08:00 UTC): any jitter inside 07:00-08:00 UTC is absorbed
    assert message is not None
    assert message.next_attempt_at == utc(2025, 6, 11, 8, 0)


@pytest.mark.django_db
def test_jitter_spreads_messages_inside_the_window(organisation):
    people = UserFactory.create_batch(20, organisation=organisation)
    start = utc(2025, 6, 11, 9, 0)
    with time_machine.travel(utc(2025, 6, 10, 12, 0), tick=False):
        messages = [
            message_enqueue(
                invitation(organisation, p, f"j-{i}", not_before=start, jitter_seconds=1800)
            )
            for i, p in enumerate(people)
        ]
    due = [m.next_attempt_at for m in messages if m is not None]
    assert all(start <= d <= start.replace(minute=30) for d in due)
    assert len(set(due)) > 10


def test_a_reused_finder_gives_the_same_instants_as_a_fresh_computation_across_dst():
    # given moments every 37 minutes over five weeks spanning the spring DST switch, in zones
    # with and without DST and with custom working hours
    from datetime import timedelta

    from notifications.quiet_hours import allowed_time_finder

    moments = [
        utc(2025, 3, 10) + timedelta(minutes=37 * i) for i in range(0, 5 * 7 * 24 * 60 // 37)
    ]
    for tz in (BERLIN, NEW_YORK, ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Lord_Howe")):
        for rules in ({}, {"work_start": time(6, 30), "work_end": time(9, 0), "work_days": (5, 6)}):
            finder = allowed_time_finder(tz=tz, **rules)
            # then the finder (windows cached per local day) matches a fresh one per moment
            for moment in moments:
                assert finder(moment) == allowed_time_finder(tz=tz, **rules)(moment)
