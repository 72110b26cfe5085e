"""Recompute a closed cycle's stored aggregates from its released responses.  Idempotent.

Rebuilds exactly what the close job hands to wellbeing
(``checkins.services.cycle_results_hand_over``: invited and responded per team, and the
per-respondent indices; who each cycle asked, ``invited_rosters``; and, when comments are
on, ``cycle_comments_hand_over``) and stores it again under the same cycle key, replacing that
cycle's rows in one transaction.  Flags are not re-run for a cycle they have already seen, so
no alert is sent twice.  Prints counts only, never answers.
"""

from __future__ import annotations

import time
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from checkins.models import Cycle
from checkins.services import cycle_comments_hand_over, cycle_results_hand_over, invited_rosters
from wellbeing.analytics import cycle_comments_record, cycle_results_record


class Command(BaseCommand):
    help = "Recompute the stored aggregates of a closed check-in cycle (idempotent)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--cycle-key", required=True, help="the cycle's public id (uuid)")

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        try:
            key = uuid.UUID(str(options["cycle_key"]))
        except ValueError:
            raise CommandError("--cycle-key must be a UUID")
        cycle = Cycle.objects.select_related("organisation").filter(public_id=key).first()
        if cycle is None:
            raise CommandError("No cycle with that key.")
        if cycle.state != Cycle.State.CLOSED or cycle.closed_at is None:
            raise CommandError(f"The cycle is {cycle.state}; only closed cycles are recomputed.")
        teams, scores = cycle_results_hand_over(cycle=cycle)
        self.stdout.write(f"Recomputing cycle {key} ({len(teams)} teams)…")
        organisation = cycle.organisation
        with transaction.atomic():
            changes = cycle_results_record(
                organisation=organisation,
                cycle_key=cycle.public_id,
                period_start=cycle.period_start,
                closed_at=cycle.closed_at,
                teams=teams,
                scores=scores,
                rosters=invited_rosters,
            )
            comment_groups = cycle_comments_record(
                organisation=organisation,
                cycle_key=cycle.public_id,
                teams=teams,
                comments=(
                    cycle_comments_hand_over(cycle=cycle) if organisation.comments_enabled else {}
                ),
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Recomputed cycle={key} teams={len(teams)} "
                f"flag_changes={len(changes)} comment_groups={comment_groups} "
                f"in {time.monotonic() - started:.1f}s"
            )
        )
