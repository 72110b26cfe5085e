"""When may a message reach a person?  Pure functions, no Django import.

A message waits until the recipient's next working-hours window (default 08:00–18:00,
Monday–Friday, in the recipient's own timezone).  Windows are built on local calendar days
with ``zoneinfo`` and compared in UTC, so daylight-saving changes move them correctly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
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
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    days = set(work_days)
    moment_utc = moment.astimezone(UTC)
    if not days or work_end <= work_start:
        return moment_utc
    local_day = moment_utc.astimezone(tz).date()
    for offset in range(0, 8):
        day = local_day + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens = _local_instant(day, work_start, tz)
        closes = _local_instant(day, work_end, tz)
        if moment_utc < opens:
            return opens
        if moment_utc < closes:
            return moment_utc
    return moment_utc  # unreachable with at least one working day
