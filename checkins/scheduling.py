"""When a schedule's cycles open and close (no database access).

A period is identified by the *local* date it opens on.  Local wall time is turned into UTC with
zoneinfo, so a 09:00 Europe/Berlin check-in opens at 08:00 UTC in winter and 07:00 UTC in
summer.  A local time that does not exist (the spring-forward gap) resolves with ``fold=0``, i.e.
one hour later on the wall clock; an ambiguous one (autumn) takes the first occurrence.

Cadences: weekly and biweekly count weeks from the first matching weekday on or after
``start_date``; monthly opens on the first matching weekday of each month.

The calendar ends on 9999-12-31: a period whose dates would run past it does not exist, so a
schedule stored with a first day near that end has no periods instead of failing every tick.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Schedule


@dataclass(frozen=True)
class Period:
    period_start: date  # local date
    index: int  # person-independent cycle number, 0 for the first period of the schedule
    opens_at: datetime  # UTC
    closes_at: datetime  # UTC


@dataclass(frozen=True)
class Rule:
    cadence: str
    weekday: int
    local_time: time
    tz: zoneinfo.ZoneInfo
    open_hours: int
    start_date: date
    end_date: date | None

    @classmethod
    def of(cls, schedule: Schedule) -> Rule:
        return cls(
            cadence=schedule.cadence,
            weekday=schedule.weekday,
            local_time=schedule.local_time,
            tz=schedule.tz,
            open_hours=schedule.open_hours,
            start_date=schedule.start_date,
            end_date=schedule.end_date,
        )


def local_to_utc(day: date, at: time, tz: zoneinfo.ZoneInfo) -> datetime:
    local = datetime.combine(day, at).replace(tzinfo=tz, fold=0)
    # A wall time in the spring-forward gap round-trips to a different wall time; zoneinfo
    # with fold=0 maps it using the offset before the change (02:30 CET -> 03:30 CEST).
    return local.astimezone(UTC)


def _first_weekday_on_or_after(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _first_weekday_of_month(year: int, month: int, weekday: int) -> date:
    return _first_weekday_on_or_after(date(year, month, 1), weekday)


def _period_dates_from(rule: Rule, index_from: int) -> Iterator[tuple[int, date]]:
    anchor = _first_weekday_on_or_after(rule.start_date, rule.weekday)
    if rule.cadence == "monthly":
        first = _first_weekday_of_month(rule.start_date.year, rule.start_date.month, rule.weekday)
        month0 = rule.start_date.year * 12 + rule.start_date.month - 1
        if first < rule.start_date:
            month0 += 1
        i = max(index_from, 0)
        while True:
            y, m = divmod(month0 + i, 12)
            if y > MAXYEAR:
                return
            yield i, _first_weekday_of_month(y, m + 1, rule.weekday)
            i += 1
    step = 14 if rule.cadence == "biweekly" else 7
    i = max(index_from, 0)
    while True:
        yield i, anchor + timedelta(days=step * i)
        i += 1


def _index_near(rule: Rule, day: date) -> int:
    """A period index at or a little before ``day`` (cheap lower bound for scanning)."""
    if rule.cadence == "monthly":
        months = (day.year * 12 + day.month) - (rule.start_date.year * 12 + rule.start_date.month)
        return max(months - 1, 0)
    step = 14 if rule.cadence == "biweekly" else 7
    anchor = _first_weekday_on_or_after(rule.start_date, rule.weekday)
    return max((day - anchor).days // step - 1, 0)


def periods(
    rule: Rule,
    *,
    opening_after: datetime,
    opening_until: datetime | None = None,
    limit: int | None = None,
) -> Iterator[Period]:
    """Periods whose opening instant is > ``opening_after`` (and <= ``opening_until``)."""
    produced = 0
    try:
        start_day = (opening_after.astimezone(rule.tz) - timedelta(days=2)).date()
        for index, day in _period_dates_from(rule, _index_near(rule, start_day)):
            if rule.end_date is not None and day > rule.end_date:
                return
            opens_at = local_to_utc(day, rule.local_time, rule.tz)
            if opens_at <= opening_after:
                continue
            if opening_until is not None and opens_at > opening_until:
                return
            yield Period(
                period_start=day,
                index=index,
                opens_at=opens_at,
                closes_at=opens_at + timedelta(hours=rule.open_hours),
            )
            produced += 1
            if limit is not None and produced >= limit:
                return
    except OverflowError:  # a date or instant past 9999-12-31: the periods end there
        return


def schedule_next_open_times(
    schedule: Schedule, count: int, *, after: datetime | None = None
) -> list[datetime]:
    """The next ``count`` opening times, as aware datetimes in the schedule's timezone."""
    from django.utils import timezone

    rule = Rule.of(schedule)
    after = after or timezone.now()
    return [p.opens_at.astimezone(rule.tz) for p in periods(rule, opening_after=after, limit=count)]
