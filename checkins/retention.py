"""Retention: raw answers are deleted once their cycle has been closed for long enough.

``Response`` rows (answers and comments) of cycles closed more than
``PULSE_RESPONSE_RETENTION_DAYS`` ago (default 730, never below 30 nor above 36500) are deleted,
together with any ``PendingAnswer`` such a cycle still holds and the comments its close stored
per group (``wellbeing.TeamComments``: raw text, so they go with the raw answers).  The per-team
aggregates computed at close live in ``wellbeing`` and are kept: dashboards and trends read only
those.

Safe to run any number of times (a second run finds nothing) and concurrently (a delete of rows
already deleted is a no-op).  Logs counts only — never answers, comments or people.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from wellbeing.comments import team_comments_purge
from wellbeing.models import TeamComments

from .models import Cycle, PendingAnswer, Response

logger = logging.getLogger("pulse.retention")

MINIMUM_RETENTION_DAYS = 30
# A century keeps everything Pulse has; a bigger period would put the cutoff before year 1.
MAXIMUM_RETENTION_DAYS = 36500
DELETE_BATCH = 5000


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    cycles: int
    responses: int
    pending: int
    comments: int = 0  # groups' stored comments


def response_retention_days() -> int:
    days = int(getattr(settings, "PULSE_RESPONSE_RETENTION_DAYS", 730))
    # The setting is validated at start; this guards a value set in code or a test override.
    return min(max(days, MINIMUM_RETENTION_DAYS), MAXIMUM_RETENTION_DAYS)


def responses_purge_expired(
    *, now: datetime | None = None, retention_days: int | None = None
) -> PurgeReport:
    """Delete raw answers of cycles closed before ``now - retention_days``; return the counts."""
    now = now or timezone.now()
    days = response_retention_days() if retention_days is None else retention_days
    if days < MINIMUM_RETENTION_DAYS:
        raise ValueError(f"retention must be at least {MINIMUM_RETENTION_DAYS} days, got {days}")
    if days > MAXIMUM_RETENTION_DAYS:
        raise ValueError(f"retention must be at most {MAXIMUM_RETENTION_DAYS} days, got {days}")
    cutoff = now - timedelta(days=days)
    expired = list(
        Cycle.objects.filter(state=Cycle.State.CLOSED, closed_at__lt=cutoff).values_list(
            "pk", "public_id"
        )
    )
    cycle_ids = [pk for pk, _ in expired]
    responses = pending = comments = 0
    # Batches keep each transaction (and its lock footprint) small on a big history.
    for start in range(0, len(cycle_ids), 200):
        chunk = cycle_ids[start : start + 200]
        comments += team_comments_purge(
            cycle_keys=[key for _, key in expired[start : start + 200]], batch_size=DELETE_BATCH
        )
        while True:
            with transaction.atomic():
                ids = list(
                    Response.objects.filter(cycle_id__in=chunk).values_list("pk", flat=True)[
                        :DELETE_BATCH
                    ]
                )
                if not ids:
                    break
                deleted, _ = Response.objects.filter(pk__in=ids).delete()
                responses += deleted
        with transaction.atomic():
            deleted, _ = PendingAnswer.objects.filter(cycle_id__in=chunk).delete()
            pending += deleted
    if responses or pending or comments:
        _vacuum_answers()
    logger.info(
        "event=responses_purged cutoff=%s cycles=%d responses=%d pending=%d comments=%d",
        cutoff.date().isoformat(),
        len(cycle_ids),
        responses,
        pending,
        comments,
    )
    return PurgeReport(
        cutoff=cutoff,
        cycles=len(cycle_ids),
        responses=responses,
        pending=pending,
        comments=comments,
    )


def _vacuum_answers() -> None:
    """Deleted rows stay readable as dead tuples until vacuum: reclaim them now (PostgreSQL)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    for model in (Response, PendingAnswer, TeamComments):
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {connection.ops.quote_name(model._meta.db_table)}")


@shared_task(name="checkins.retention.purge_expired_responses", ignore_result=True)
def purge_expired_responses() -> dict[str, int]:
    report = responses_purge_expired()
    return {
        "cycles": report.cycles,
        "responses": report.responses,
        "pending": report.pending,
        "comments": report.comments,
    }
