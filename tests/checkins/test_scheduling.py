"""Opening times: local wall time in the schedule's zone, correct across DST changes."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time

from checkins.scheduling import Rule, periods, schedule_next_open_times
from tests.checkins.conftest import make_schedule

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def rule(**kw) -> Rule:
    base = {
        "cadence": "weekly",
        "weekday": 0,
        "local_time": time(9, 0),
        "tz": BERLIN,
        "open_hours": 96,
        "start_date": date(2026, 1, 1),
        "end_date": None,
    }
    base.update(kw)
    return Rule(**base)


def opens(r: Rule, after: datetime, n: int) -> list[datetime]:
    return [p.opens_at for p in periods(r, opening_after=after, limit=n)]


def test_berlin_march_change_keeps_nine_local():
    # DST starts Sunday 2026-03-29 in Europe/Berlin
    got = opens(rule(), datetime(2026, 3, 20, tzinfo=UTC), 2)
    assert got == [datetime(2026, 3, 23, 8, 0, tzinfo=UTC), datetime(2026, 3, 30, 7, 0, tzinfo=UTC)]
    assert all(t.astimezone(BERLIN).time() == time(9, 0) for t in got)


def test_berlin_october_change_keeps_nine_local():
    # DST ends Sunday 2026-10-25 in Europe/Berlin
    got = opens(rule(), datetime(2026, 10, 15, tzinfo=UTC), 2)
    assert got == [
        datetime(2026, 10, 19, 7, 0, tzinfo=UTC),
        datetime(2026, 10, 26, 8, 0, tzinfo=UTC),
    ]


def test_a_time_in_the_spring_gap_opens_one_hour_later_on_the_wall_clock():
    r = rule(weekday=6, local_time=time(2, 30))
    (got,) = opens(r, datetime(2026, 3, 28, tzinfo=UTC), 1)
    assert got.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 30)


def test_new_york_march_and_november_changes():
    r = rule(tz=NEW_YORK, weekday=4)  # Fridays 09:00
    march = opens(r, datetime(2026, 3, 1, tzinfo=UTC), 2)  # DST starts 2026-03-08
    assert march == [
        datetime(2026, 3, 6, 14, 0, tzinfo=UTC),
        datetime(2026, 3, 13, 13, 0, tzinfo=UTC),
    ]
    november = opens(r, datetime(2026, 10, 28, tzinfo=UTC), 2)  # DST ends 2026-11-01
    assert november == [
        datetime(2026, 10, 30, 13, 0, tzinfo=UTC),
        datetime(2026, 11, 6, 14, 0, tzinfo=UTC),
    ]


def test_biweekly_and_monthly_cadences():
    biweekly = opens(
        rule(cadence="biweekly", start_date=date(2026, 3, 2)), datetime(2026, 3, 1, tzinfo=UTC), 3
    )
    assert [t.date() for t in biweekly] == [date(2026, 3, 2), date(2026, 3, 16), date(2026, 3, 30)]
    monthly = periods(
        rule(cadence="monthly", start_date=date(2026, 3, 10)),
        opening_after=datetime(2026, 3, 1, tzinfo=UTC),
        limit=3,
    )
    assert [(p.period_start, p.index) for p in monthly] == [
        (date(2026, 4, 6), 0),
        (date(2026, 5, 4), 1),
        (date(2026, 6, 1), 2),
    ]


def test_the_end_date_stops_the_schedule():
    r = rule(start_date=date(2026, 3, 1), end_date=date(2026, 3, 10))
    got = list(periods(r, opening_after=datetime(2026, 2, 1, tzinfo=UTC)))
    assert [p.period_start for p in got] == [date(2026, 3, 2), date(2026, 3, 9)]
    assert [p.index for p in got] == [0, 1]


def test_periods_end_with_the_calendar_instead_of_overflowing():
    # a first day the tick would have to count past 9999-12-31 from (stored before it was refused)
    for cadence in ("weekly", "biweekly", "monthly"):
        for tz in (BERLIN, NEW_YORK):
            for first_day in (date(9999, 12, 31), date(9999, 11, 20)):
                r = rule(cadence=cadence, tz=tz, start_date=first_day, local_time=time(23, 30))
                got = list(periods(r, opening_after=datetime(2026, 3, 1, tzinfo=UTC), limit=10))
                assert all(p.closes_at.year == 9999 for p in got), (cadence, tz, first_day)
                assert len(got) < 10


def test_preview_lists_the_next_openings_in_local_time(org, team, weekly_pulse):
    schedule = make_schedule(
        organisation=org, teams=[team], survey=weekly_pulse, timezone="America/New_York"
    )
    got = schedule_next_open_times(schedule, 3, after=datetime(2026, 3, 1, tzinfo=UTC))
    assert [t.isoformat() for t in got] == [
        "2026-03-02T09:00:00-05:00",
        "2026-03-09T09:00:00-04:00",
        "2026-03-16T09:00:00-04:00",
    ]
