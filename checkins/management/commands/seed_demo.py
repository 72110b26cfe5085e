"""Seed the demo organisation and, where available, its check-in history.  Idempotent."""

from __future__ import annotations

import argparse
import time
from importlib import import_module

from django.core.management.base import BaseCommand

from wellbeing.demo import organisation_seed

# Ten years of weekly cycles; every week invites the whole organisation once.
MAX_HISTORY_WEEKS = 520


def history_weeks(text: str) -> int:
    weeks = int(text)  # argparse reports a ValueError as an invalid value
    if not 0 <= weeks <= MAX_HISTORY_WEEKS:
        raise argparse.ArgumentTypeError(
            f"must be 0 (no history) to {MAX_HISTORY_WEEKS}, got {weeks}"
        )
    return weeks


class Command(BaseCommand):
    help = "Create the demo organisation (teams, people, leads, admin) and its check-in history."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument(
            "--weeks",
            type=history_weeks,
            default=26,
            help=f"weeks of check-in history, 0 (none) to {MAX_HISTORY_WEEKS}",
        )
        parser.add_argument(
            "--no-history", action="store_true", help="only the organisation, no check-ins"
        )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()

        def progress(message: str) -> None:
            self.stdout.write(f"  · {message}")

        self.stdout.write("Seeding the demo organisation…")
        organisation, logins = organisation_seed(progress=progress)
        history: dict = {}
        if not options["no_history"] and options["weeks"]:
            try:
                checkins_demo = import_module("checkins.demo")
            except ModuleNotFoundError:
                checkins_demo = None
            if checkins_demo is not None:
                self.stdout.write(f"Seeding {options['weeks']} weeks of check-in history…")
                history = checkins_demo.history_seed(
                    organisation=organisation, weeks=options["weeks"], progress=progress
                )
        elapsed = time.monotonic() - started
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password for all: {logins.password}):")
        self.stdout.write(f"  admin     {logins.admin}")
        self.stdout.write(f"  team lead {logins.lead}")
        self.stdout.write(f"  employee  {logins.employee}")
        summary = ", ".join(f"{key}={value}" for key, value in history.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: organisation={organisation.slug} people="
                f"{organisation.people.count()} teams={organisation.teams.count()}"
                + (f" {summary}" if summary else "")
                + f" in {elapsed:.1f}s"
            )
        )
