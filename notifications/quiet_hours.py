"""When may a message reach a person?  Pure functions, no Django import.

A message waits until the recipient's next working-hours window (default 08:00–18:00,
Monday–Friday, in the recipient's own timezone).  Windows are built on local calendar days
with ``zoneinfo`` and compared in UTC, so daylight-saving changes move them correctly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _local_instant(day, at: time, tz: ZoneInfo) -> datetime:
    """``day`` at wall time ``at`` in ``tz`` as a UTC instant.  A wall time skipped by a DST
    jump (e.g. 02:30 on a spring-forward night) resolves, per PEP 495 (fold=0), to the instant
    one gap later (03:30); an ambiguous one to its first occurrence."""
    return datetime.combine(day, at).replace(tzinfo=tz).astimezone(UTC)


def next_allowed_time(
    moment: datetime,
    *,
    tz: ZoneInfo,
    work_start: time = time(8, 0),
    work_end: time = time(18, 0),
    work_days: Iterable[int] = (0, 1, 2, 3, 4),
) -> datetime:
    """The first instant at or after ``moment`` (aware) inside the working hours.  Returns UTC.

    With no working day configured the message is not held back.
    """
    return allowed_time_finder(
        tz=tz, work_start=work_start, work_end=work_end, work_days=work_days
    )(moment)


def allowed_time_finder(
    *,
    tz: ZoneInfo,
    work_start: time = time(8, 0),
    work_end: time = time(18, 0),
    work_days: Iterable[int] = (0, 1, 2, 3, 4),
) -> Callable[[datetime], datetime]:
    """``next_allowed_time`` with these rules, for many moments: each local day's window is
    converted to UTC once and reused (bulk enqueue groups messages by timezone and rules)."""
    days = frozenset(work_days)
    if not days or work_end <= work_start:
        return _not_held_back
    windows: dict[date, tuple[datetime, datetime]] = {}

    def find(moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        moment_utc = moment.astimezone(UTC)
        local_day = moment_utc.astimezone(tz).date()
        for offset in range(0, 8):
            day = local_day + timedelta(days=offset)
            if day.weekday() not in days:
                continue
            window = windows.get(day)
            if window is None:
                window = windows[day] = (
                    _local_instant(day, work_start, tz),
                    _local_instant(day, work_end, tz),
                )
            opens, closes = window
            if moment_utc < opens:
                return opens
            if moment_utc < closes:
                return moment_utc
        return moment_utc  # unreachable with at least one working day

    return find


def _not_held_back(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(UTC)
