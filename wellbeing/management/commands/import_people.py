"""``manage.py import_people FILE [--apply] [--organisation SLUG]``

Without ``--apply`` it is a dry run: it prints the errors (with row numbers) and the planned
changes, and writes nothing.  With ``--apply`` it writes everything in one transaction, or
nothing when the file has errors.  Ends with a one-line summary either way.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, no_translations

from wellbeing.errors import ServiceError
from wellbeing.models import Organisation
from wellbeing.people_import import (
    MAX_BYTES,
    ImportFileError,
    import_file_read,
    import_plan,
    people_import_apply,
)

SHOW_CHANGES = 50


class Command(BaseCommand):
    help = "Import people and teams from a CSV or XLSX file (dry run unless --apply)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("file", help="CSV or XLSX: email, name, team path, lead, start, end")
        parser.add_argument("--apply", action="store_true", help="write the changes")
        parser.add_argument(
            "--organisation", default="", help="organisation slug (needed if there are several)"
        )

    def _organisation(self, slug: str) -> Organisation:
        if slug:
            found = Organisation.objects.filter(slug=slug).first()
            if found is None:
                raise CommandError(f"No organisation with slug {slug!r}.")
            return found
        organisations = list(Organisation.objects.all()[:2])
        if len(organisations) != 1:
            raise CommandError("Name the organisation with --organisation SLUG.")
        return organisations[0]

    # The operator's console speaks English, whatever language the thread last served.
    @no_translations
    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        organisation = self._organisation(options["organisation"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if path.stat().st_size > MAX_BYTES:
            raise CommandError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
        self.stdout.write(f"Reading {path.name}…")
        try:
            parsed = import_file_read(data=path.read_bytes(), filename=path.name)
        except ImportFileError as exc:
            raise CommandError(str(exc))
        encoding = f", encoding {parsed.encoding}" if parsed.encoding else ""
        self.stdout.write(f"  · {parsed.row_count} rows ({parsed.file_format}{encoding})")
        today = datetime.now(organisation.tz).date()
        self.stdout.write("Planning…")
        plan = import_plan(
            organisation=organisation,
            rows=parsed.rows,
            today=today,
            present_emails=parsed.seen_emails,
        )
        issues = sorted(parsed.issues + plan.issues, key=lambda i: (i.row or 0, i.column))
        for issue in issues:
            where = f"row {issue.row}" if issue.row else "file"
            self.stderr.write(f"  ✗ {where}, {issue.column}: {issue.message}")
        for change in plan.changes[:SHOW_CHANGES]:
            row = f"row {change.row}: " if change.row else ""
            self.stdout.write(f"  · {row}{change.kind} {change.subject}")
        if len(plan.changes) > SHOW_CHANGES:
            self.stdout.write(f"  · … and {len(plan.changes) - SHOW_CHANGES} more changes")
        elapsed = time.monotonic() - started
        if issues:
            self.stdout.write(
                f"Nothing imported: {len(issues)} errors in {parsed.row_count} rows "
                f"({elapsed:.1f}s)."
            )
            raise CommandError(f"{len(issues)} errors; fix the file and run again.")
        if not options["apply"]:
            self.stdout.write(f"Dry run: {plan.summary()} ({elapsed:.1f}s). Use --apply to write.")
            return
        self.stdout.write("Applying…")
        try:
            result = people_import_apply(
                organisation=organisation,
                rows=parsed.rows,
                actor=None,
                today=today,
                expected_digest=plan.digest,
                source=f"{path.name} (command line)",
            )
        except ServiceError as exc:
            raise CommandError(exc.message)
        elapsed = time.monotonic() - started
        self.stdout.write(f"Applied: {result.plan.summary()} ({elapsed:.1f}s).")
