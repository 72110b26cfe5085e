"""Delete raw check-in answers past the retention period (aggregates are kept)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from checkins.retention import (
    MAXIMUM_RETENTION_DAYS,
    MINIMUM_RETENTION_DAYS,
    responses_purge_expired,
)


class Command(BaseCommand):
    help = (
        "Delete raw answers and comments (stored per group too) of cycles closed longer ago than "
        "PULSE_RESPONSE_RETENTION_DAYS (team aggregates are kept). Safe to repeat."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=(
                f"Override the retention period "
                f"({MINIMUM_RETENTION_DAYS} to {MAXIMUM_RETENTION_DAYS} days)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is not None and days < MINIMUM_RETENTION_DAYS:
            raise CommandError(f"--days must be at least {MINIMUM_RETENTION_DAYS}, got {days}")
        if days is not None and days > MAXIMUM_RETENTION_DAYS:
            raise CommandError(f"--days must be at most {MAXIMUM_RETENTION_DAYS}, got {days}")
        report = responses_purge_expired(retention_days=days)
        self.stdout.write(
            f"Purged {report.responses} responses, {report.pending} pending answers and "
            f"{report.comments} groups' stored comments from {report.cycles} cycles closed "
            f"before {report.cutoff.date().isoformat()}."
        )
