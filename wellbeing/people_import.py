"""People import: a CSV or XLSX of people and teams becomes a plan, a preview, then one atomic
write.

Three steps, each usable alone (the upload page and ``manage.py import_people`` share them):

1. ``import_file_read(data=..., filename=...) -> ImportFile`` — pure: size and row limits,
   encoding (UTF-8 with or without BOM, then Windows-1252, and it says which), columns, and
   row-by-row validation into ``ImportRow``s and ``ImportIssue``s.  No database.  The file
   handling shared with the customer-metric import is in ``wellbeing.tabular_import``.
2. ``import_plan(*, organisation, rows, today) -> ImportPlan`` — reads the organisation and
   lists the changes the file implies: teams to create from paths, people to create or update,
   moves between teams, leads, and leavers to deactivate; plus the issues only the database can
   reveal (an e-mail used by another organisation, a path that would make a team its own
   ancestor).  Writes nothing.
3. ``people_import_apply(*, organisation, rows, actor, today, expected_digest=None)`` — plans
   again under a lock (the confirm step re-validates), refuses if there are issues or if the plan
   differs from the one previewed, then applies everything in one transaction and audits it.

Rules: the file is the list of the organisation's people.  Running the same file twice changes
nothing.  Leavers — an end date today or earlier, or absent from the file — get their open
memberships ended and are deactivated, never deleted.  Organisation admins and staff absent from
the file are kept, and the admin running the import cannot end their own account (an import must
not lock out the people running it).  Team paths are matched from the root, case-insensitively:
"Customer Experience / Support Tier 1"; a path that could name more than one team is refused.

Never logs e-mail addresses.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from .audit import audit_record
from .errors import ServiceError
from .models import AuditEntry, Membership, Organisation, Team, TeamLead, User
from .tabular_import import MAX_BYTES as MAX_BYTES
from .tabular_import import (
    MAX_CELL_CHARS,
    ImportIssue,
    TabularFile,
    TabularPlan,
    cell_text,
    issues_error,
    parse_date,
    tabular_file_read,
)
from .tabular_import import ImportFileError as ImportFileError
from .tabular_import import rows_dump as rows_dump
from .tabular_import import rows_load as tabular_rows_load

MAX_ROWS = 50_000
MAX_PATH_DEPTH = 20
# The columns' lengths (Team.name, User.full_name, User.email): a longer value passes the
# checks of its kind (Django's e-mail validator allows 320 characters) but not the database.
TEAM_NAME_MAX = 200
NAME_MAX = 200
EMAIL_MAX = 254

COLUMN_ALIASES = {
    "email": "email",
    "e_mail": "email",
    "mail": "email",
    "name": "name",
    "full_name": "name",
    "team_path": "team_path",
    "team": "team_path",
    "path": "team_path",
    "lead": "lead",
    "is_lead": "lead",
    "team_lead": "lead",
    "start": "start",
    "start_date": "start",
    "started_on": "start",
    "end": "end",
    "end_date": "end",
    "ended_on": "end",
}
REQUIRED_COLUMNS = ("email", "team_path")
YES = {"yes", "y", "true", "1", "x", "ja", "j"}
NO = {"no", "n", "false", "0", "", "nein"}


@dataclass(frozen=True)
class ImportRow:
    row: int
    email: str
    name: str
    team_path: tuple[str, ...]
    lead: bool
    start: date | None
    end: date | None

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "email": self.email,
            "name": self.name,
            "team_path": list(self.team_path),
            "lead": self.lead,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportRow:
        return cls(
            row=int(data["row"]),
            email=str(data["email"]),
            name=str(data["name"]),
            team_path=tuple(data["team_path"]),
            lead=bool(data["lead"]),
            start=date.fromisoformat(data["start"]) if data["start"] else None,
            end=date.fromisoformat(data["end"]) if data["end"] else None,
        )


@dataclass
class ImportFile(TabularFile[ImportRow]):
    # Every e-mail seen, valid row or not: someone on a row with a typo is not a leaver.
    seen_emails: set[str] = field(default_factory=set)


# --- 1. Reading (pure) ------------------------------------------------------------------------


def _unknown_column(key: str, raw: Any) -> ImportIssue:
    return ImportIssue(1, cell_text(raw), _("Unknown column “%(name)s”.") % {"name": raw})


def import_file_read(*, data: bytes, filename: str = "") -> ImportFile:
    """Parse and validate an upload.  Raises ``ImportFileError`` when the file as a whole is
    unusable; row problems are collected in ``.issues`` with their row numbers."""
    seen_emails: set[str] = set()
    first_row_of: dict[str, int] = {}

    def row_validate(
        index: int, cells: dict[str, Any]
    ) -> tuple[ImportRow | None, list[ImportIssue]]:
        seen_emails.add(cell_text(cells.get("email", "")).lower())
        return _row_validate(index, cells, first_row_of)

    result = tabular_file_read(
        data=data,
        filename=filename,
        file_type=ImportFile,
        too_large=_("The file is larger than %(mb)d MB; split it or remove unused columns."),
        aliases=COLUMN_ALIASES,
        required=REQUIRED_COLUMNS,
        unknown_column=_unknown_column,
        max_rows=MAX_ROWS,
        row_validate=row_validate,
    )
    result.seen_emails = seen_emails
    return result


def _row_validate(
    index: int, cells: dict[str, Any], first_row_of: dict[str, int]
) -> tuple[ImportRow | None, list[ImportIssue]]:
    issues: list[ImportIssue] = []
    too_long = [k for k, v in cells.items() if len(cell_text(v)) > MAX_CELL_CHARS]
    for column in too_long:
        issues.append(ImportIssue(index, column, _("The value is too long.")))
    email = cell_text(cells.get("email", "")).lower()
    try:
        validate_email(email)
    except ValidationError:
        issues.append(ImportIssue(index, "email", _("Not a valid e-mail address.")))
    else:
        if len(email) > EMAIL_MAX:
            issues.append(
                ImportIssue(
                    index,
                    "email",
                    _("The e-mail address is longer than %(max)d characters.") % {"max": EMAIL_MAX},
                )
            )
        elif email in first_row_of:
            issues.append(
                ImportIssue(
                    index,
                    "email",
                    _("Duplicate e-mail: already on row %(row)d.") % {"row": first_row_of[email]},
                )
            )
        else:
            first_row_of[email] = index
    name = cell_text(cells.get("name", ""))
    if len(name) > NAME_MAX:
        issues.append(ImportIssue(index, "name", _("The name is too long.")))
    raw_path = cell_text(cells.get("team_path", ""))
    parts = tuple(part.strip() for part in raw_path.split("/"))
    if not raw_path:
        issues.append(ImportIssue(index, "team_path", _("The team path is empty.")))
    elif any(not part for part in parts):
        issues.append(ImportIssue(index, "team_path", _("The team path has an empty part.")))
    elif len(parts) > MAX_PATH_DEPTH or any(len(p) > TEAM_NAME_MAX for p in parts):
        issues.append(ImportIssue(index, "team_path", _("The team path is too deep or too long.")))
    else:
        folded = [p.casefold() for p in parts]
        repeated = next((p for i, p in enumerate(parts) if folded[i] in folded[:i]), None)
        if repeated is not None:
            issues.append(
                ImportIssue(
                    index,
                    "team_path",
                    _("Cycle: the team “%(team)s” would become its own ancestor.")
                    % {"team": repeated},
                )
            )
    lead_text = cell_text(cells.get("lead", "")).lower()
    if lead_text not in YES and lead_text not in NO:
        issues.append(ImportIssue(index, "lead", _("Write yes or no.")))
    dates: dict[str, date | None] = {"start": None, "end": None}
    for column in ("start", "end"):
        value = cells.get(column, "")
        if cell_text(value) == "":
            continue
        try:
            dates[column] = parse_date(value)
        except ValueError:
            issues.append(ImportIssue(index, column, _("Not a date; write it as YYYY-MM-DD.")))
    start, end = dates["start"], dates["end"]
    if start and end and end < start:
        issues.append(ImportIssue(index, "end", _("The end date is before the start date.")))
    if issues:
        return None, issues
    return (
        ImportRow(
            row=index,
            email=email,
            name=name,
            team_path=parts,
            lead=lead_text in YES,
            start=start,
            end=end,
        ),
        [],
    )


# --- 2. Planning (reads the database) ---------------------------------------------------------


@dataclass(frozen=True)
class PlannedChange:
    kind: str  # see CHANGE_KINDS
    row: int | None
    subject: str  # the person's e-mail or the team path, for the preview
    detail: dict[str, Any]


CREATES = ("team_create", "person_create")
DEACTIVATIONS = ("person_deactivate",)
CHANGE_KINDS = (
    "team_create",
    "person_create",
    "person_rename",
    "person_reactivate",
    "person_deactivate",
    "membership_start",
    "membership_change",
    "membership_end",
    "lead_add",
    "lead_remove",
)


@dataclass
class ImportPlan(TabularPlan[PlannedChange]):
    @property
    def creates(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.kind in CREATES]

    @property
    def deactivations(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.kind in DEACTIVATIONS]

    @property
    def updates(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.kind not in CREATES + DEACTIVATIONS]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CHANGE_KINDS, 0)
        for change in self.changes:
            counts[change.kind] += 1
        return counts

    def summary(self) -> str:
        c = self.counts()
        return _(
            "%(create)d people to create, %(update)d updates, %(deactivate)d to deactivate, "
            "%(teams)d teams to create, %(errors)d errors"
        ) % {
            "create": c["person_create"],
            "update": len(self.updates),
            "deactivate": c["person_deactivate"],
            "teams": c["team_create"],
            "errors": len(self.issues),
        }


def _path_key(path: Sequence[str]) -> tuple[str, ...]:
    return tuple(p.casefold() for p in path)


class _TeamIndex:
    """The organisation's teams by folded path; grows as the plan creates teams.

    Some paths cannot name one team: two teams under one parent whose names differ only in
    case (the database tells them apart, a folded path does not), and a team with "/" in its
    name, which a path splits into two names.  ``unreachable`` keeps those paths with the
    reason, so that a row naming one is refused instead of matched to a team at random."""

    def __init__(self, organisation: Organisation) -> None:
        rows = list(
            Team.objects.filter(organisation=organisation).values("id", "name", "parent_id")
        )
        by_id: dict[int, dict[str, Any]] = {r["id"]: dict(r) for r in rows}
        self.path_of: dict[int, tuple[str, ...]] = {}
        for r in rows:
            self.path_of[r["id"]] = self._path(r["id"], by_id)
        self.id_of: dict[tuple[str, ...], int] = {}
        self.unreachable: dict[tuple[str, ...], str] = {}
        for team_id, path in self.path_of.items():
            if not path:
                continue
            key = _path_key(path)
            if key in self.id_of:
                self.unreachable[key] = _(
                    "“%(path)s” names more than one team (their names differ only in case); "
                    "rename one of them first."
                ) % {"path": " / ".join(path)}
            self.id_of.setdefault(key, team_id)
            if "/" in path[-1]:
                as_read = tuple(part.strip() for name in path for part in name.split("/"))
                self.unreachable.setdefault(
                    _path_key(as_read),
                    _(
                        "“%(path)s” could mean the team “%(team)s”, whose name contains “/”, "
                        "which separates the teams of a path; rename that team first."
                    )
                    % {"path": " / ".join(as_read), "team": path[-1]},
                )

    def unreachable_reason(self, path: Sequence[str]) -> str | None:
        """Why ``path`` (or a team above it) cannot be told apart from another; None if it can."""
        key = _path_key(path)
        for depth in range(1, len(key) + 1):
            reason = self.unreachable.get(key[:depth])
            if reason is not None:
                return reason
        return None

    @staticmethod
    def _path(team_id: int, by_id: dict[int, dict[str, Any]]) -> tuple[str, ...]:
        parts: list[str] = []
        seen: set[int] = set()
        node: int | None = team_id
        while node is not None:
            if node in seen:  # the model forbids this; never loop on a corrupt tree
                return ()
            seen.add(node)
            parts.append(by_id[node]["name"])
            node = by_id[node]["parent_id"]
        return tuple(reversed(parts))


def _ancestry_pairs(paths: Iterable[Sequence[str]]) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for path in paths:
        folded = _path_key(path)
        for i, upper in enumerate(folded):
            for lower in folded[i + 1 :]:
                pairs.add((upper, lower))
    return pairs


def _email_owner_other_orgs(organisation: Organisation, emails: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        taken.update(
            e.lower()
            for e in User.objects.filter(email__in=chunk)
            .exclude(organisation=organisation)
            .values_list("email", flat=True)
        )
    return taken


def import_plan(
    *,
    organisation: Organisation,
    rows: Sequence[ImportRow],
    today: date,
    present_emails: Iterable[str] = (),
    actor: User | None = None,
) -> ImportPlan:
    """The changes ``rows`` imply for ``organisation`` on ``today``.  Reads only.
    ``present_emails`` are people on rows that failed validation: not treated as leavers.
    ``actor``, the admin running the import, may not end their own account (as on the people
    page): it could leave the organisation without an active admin."""
    plan = ImportPlan()
    teams = _TeamIndex(organisation)

    # Cycles across paths: a name above another in one place and below it elsewhere.
    existing_pairs = _ancestry_pairs(teams.path_of.values())
    file_pairs = _ancestry_pairs(r.team_path for r in rows)
    all_pairs = existing_pairs | file_pairs
    cyclic_rows: set[int] = set()
    for r in rows:
        folded = _path_key(r.team_path)
        for i, upper in enumerate(folded):
            for lower in folded[i + 1 :]:
                if (lower, upper) in all_pairs:
                    cyclic_rows.add(r.row)
                    plan.issues.append(
                        ImportIssue(
                            r.row,
                            "team_path",
                            _(
                                "Cycle: “%(a)s” is above “%(b)s” here but below it elsewhere; "
                                "a team would become its own ancestor."
                            )
                            % {"a": r.team_path[i], "b": r.team_path[folded.index(lower)]},
                        )
                    )
                    break
            if r.row in cyclic_rows:
                break

    unreachable_rows: set[int] = set()
    for r in rows:
        reason = teams.unreachable_reason(r.team_path)
        if reason is not None and r.row not in cyclic_rows:
            unreachable_rows.add(r.row)
            plan.issues.append(ImportIssue(r.row, "team_path", reason))

    taken = _email_owner_other_orgs(organisation, [r.email for r in rows])
    for r in rows:
        if r.email in taken:
            plan.issues.append(
                ImportIssue(r.row, "email", _("This e-mail address belongs to another account."))
            )
    valid_rows = [
        r
        for r in rows
        if r.row not in cyclic_rows and r.row not in unreachable_rows and r.email not in taken
    ]

    # Teams to create, parents first.
    planned_paths: set[tuple[str, ...]] = set()
    for r in sorted(valid_rows, key=lambda r: len(r.team_path)):
        for depth in range(1, len(r.team_path) + 1):
            prefix = r.team_path[:depth]
            key = _path_key(prefix)
            if key in teams.id_of or key in planned_paths:
                continue
            planned_paths.add(key)
            plan.changes.append(
                PlannedChange("team_create", r.row, " / ".join(prefix), {"path": list(prefix)})
            )

    people = {
        u.email.lower(): u
        for u in User.objects.filter(organisation=organisation).only(
            "id", "email", "full_name", "is_active", "is_org_admin", "is_staff", "is_superuser"
        )
    }
    memberships: dict[int, list[Membership]] = defaultdict(list)
    for m in Membership.objects.filter(user__organisation=organisation).order_by(
        "started_on", "id"
    ):
        memberships[m.user_id].append(m)
    leads: dict[tuple[int, int], int] = {
        (lead.user_id, lead.team_id): lead.pk
        for lead in TeamLead.objects.filter(team__organisation=organisation)
    }

    def team_label(path: Sequence[str]) -> str:
        team_id = teams.id_of.get(_path_key(path))
        return " / ".join(teams.path_of[team_id] if team_id else path)

    for r in valid_rows:
        leaver = r.end is not None and r.end <= today
        start = r.start or (min(today, r.end) if r.end else today)
        user = people.get(r.email)
        path = list(r.team_path)
        if user is None:
            plan.changes.append(
                PlannedChange(
                    "person_create",
                    r.row,
                    r.email,
                    {
                        "email": r.email,
                        "name": r.name,
                        "team_path": path,
                        "team": team_label(path),
                        "start": start,
                        "end": r.end,
                        "active": not leaver,
                        "lead": r.lead,
                    },
                )
            )
            continue
        subject = r.email
        if leaver and user.is_active and actor is not None and user.pk == actor.pk:
            plan.issues.append(
                ImportIssue(
                    r.row,
                    "end",
                    _("You cannot deactivate yourself; remove the end date from your own row."),
                )
            )
            continue
        if r.name and r.name != user.full_name:
            plan.changes.append(
                PlannedChange(
                    "person_rename",
                    r.row,
                    subject,
                    {"user_id": user.pk, "before": user.full_name, "after": r.name},
                )
            )
        if leaver and user.is_active:
            plan.changes.append(
                PlannedChange("person_deactivate", r.row, subject, {"user_id": user.pk})
            )
        elif not leaver and not user.is_active:
            plan.changes.append(
                PlannedChange("person_reactivate", r.row, subject, {"user_id": user.pk})
            )
        team_id = teams.id_of.get(_path_key(r.team_path))
        in_team = [m for m in memberships[user.pk] if team_id is not None and m.team_id == team_id]
        target = in_team[-1] if in_team else None
        for m in memberships[user.pk]:
            if m.ended_on is None and m is not target:
                ended_on = max(m.started_on, start - timedelta(days=1))
                plan.changes.append(
                    PlannedChange(
                        "membership_end",
                        r.row,
                        subject,
                        {
                            "membership_id": m.pk,
                            "team": " / ".join(teams.path_of.get(m.team_id, ())),
                            "ended_on": ended_on,
                        },
                    )
                )
        if target is not None and (target.ended_on is None or r.end is not None):
            wanted_start = r.start or target.started_on
            if r.end is not None and r.end < wanted_start:
                plan.issues.append(
                    ImportIssue(
                        r.row,
                        "end",
                        _("The end date is before the membership started (%(start)s).")
                        % {"start": wanted_start.isoformat()},
                    )
                )
                continue
            if (wanted_start, r.end) != (target.started_on, target.ended_on):
                plan.changes.append(
                    PlannedChange(
                        "membership_change",
                        r.row,
                        subject,
                        {
                            "membership_id": target.pk,
                            "team": team_label(path),
                            "before": [target.started_on, target.ended_on],
                            "after": [wanted_start, r.end],
                        },
                    )
                )
        else:
            if target is not None and target.ended_on is not None and start <= target.ended_on:
                start = target.ended_on + timedelta(days=1)
            plan.changes.append(
                PlannedChange(
                    "membership_start",
                    r.row,
                    subject,
                    {
                        "user_id": user.pk,
                        "team_path": path,
                        "team": team_label(path),
                        "start": start,
                        "end": r.end if r.end is None or r.end >= start else start,
                    },
                )
            )
        is_lead = team_id is not None and (user.pk, team_id) in leads
        if r.lead and not is_lead:
            plan.changes.append(
                PlannedChange(
                    "lead_add",
                    r.row,
                    subject,
                    {"user_id": user.pk, "team_path": path, "team": team_label(path)},
                )
            )
        elif not r.lead and is_lead:
            assert team_id is not None
            plan.changes.append(
                PlannedChange(
                    "lead_remove",
                    r.row,
                    subject,
                    {"lead_id": leads[(user.pk, team_id)], "team": team_label(path)},
                )
            )

    # Leavers by absence.  Rows with errors count as present: a typo must not deactivate anyone.
    listed = {r.email for r in rows} | set(present_emails)
    for email, user in sorted(people.items()):
        if email in listed or not user.is_active:
            continue
        if user.is_org_admin or user.is_staff or user.is_superuser:
            continue
        plan.changes.append(PlannedChange("person_deactivate", None, email, {"user_id": user.pk}))
        for m in memberships[user.pk]:
            if m.ended_on is None:
                plan.changes.append(
                    PlannedChange(
                        "membership_end",
                        None,
                        email,
                        {
                            "membership_id": m.pk,
                            "team": " / ".join(teams.path_of.get(m.team_id, ())),
                            "ended_on": max(m.started_on, today),
                        },
                    )
                )
    return plan


# --- 3. Applying --------------------------------------------------------------------------------


@dataclass
class ImportResult:
    plan: ImportPlan
    counts: dict[str, int]


def people_import_apply(
    *,
    organisation: Organisation,
    rows: Sequence[ImportRow],
    actor: User | None,
    today: date,
    expected_digest: str | None = None,
    source: str = "",
) -> ImportResult:
    """Apply the plan for ``rows`` in one transaction.  Raises ``ServiceError`` ("invalid")
    when the rows have errors and ("stale", 409) when the organisation changed since the plan
    with ``expected_digest`` was previewed; nothing is written then."""
    with transaction.atomic():
        # One import per organisation at a time: the plan is computed under this lock.
        Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
        plan = import_plan(organisation=organisation, rows=rows, today=today, actor=actor)
        if plan.issues:
            raise issues_error(plan.issues, _("The file has errors; nothing was imported."))
        if expected_digest is not None and plan.digest != expected_digest:
            raise ServiceError(
                "stale",
                _("People or teams changed since the preview; review the new preview."),
                status=409,
            )
        _apply(organisation=organisation, plan=plan, actor=actor)
        counts = plan.counts()
        if plan.changes:
            audit_record(
                organisation=organisation,
                actor=actor,
                action="people.import",
                target=source or "people import",
                after={k: v for k, v in counts.items() if v},
            )
    return ImportResult(plan=plan, counts=counts)


def _apply(*, organisation: Organisation, plan: ImportPlan, actor: User | None) -> None:
    from .services import team_create

    teams = _TeamIndex(organisation)
    audit: list[AuditEntry] = []

    def log(action: str, target_type: str, target_repr: str, before: Any, after: Any) -> None:
        audit.append(
            AuditEntry(
                organisation=organisation,
                actor=actor,
                action=action,
                target_type=target_type,
                target_repr=target_repr[:300],
                before=json.loads(json.dumps(before, default=str)) if before is not None else None,
                after=json.loads(json.dumps(after, default=str)) if after is not None else None,
            )
        )

    def team_id_for(path: Sequence[str]) -> int:
        return teams.id_of[_path_key(path)]

    for change in plan.changes:
        if change.kind != "team_create":
            continue
        path = change.detail["path"]
        parent_id = teams.id_of[_path_key(path[:-1])] if len(path) > 1 else None
        parent = Team.objects.get(pk=parent_id) if parent_id else None
        # team_create audits the new team itself, as it does for every other edge
        team = team_create(organisation=organisation, name=path[-1], parent=parent, actor=actor)
        teams.id_of[_path_key(path)] = team.pk

    by_kind: dict[str, list[PlannedChange]] = defaultdict(list)
    for change in plan.changes:
        by_kind[change.kind].append(change)

    new_users = [
        User(
            email=c.detail["email"],
            full_name=c.detail["name"],
            organisation=organisation,
            is_active=c.detail["active"],
            # Unusable ("!" prefix), like make_password(None) but without its slow generator.
            password=UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30),
        )
        for c in by_kind["person_create"]
    ]
    User.objects.bulk_create(new_users, batch_size=1000)
    created_ids = {u.email: u.pk for u in new_users}
    if any(pk is None for pk in created_ids.values()):  # a backend that returns no ids
        created_ids = dict(
            User.objects.filter(organisation=organisation).values_list("email", "id")
        )
    new_memberships: list[Membership] = []
    new_leads: list[TeamLead] = []
    for c in by_kind["person_create"]:
        user_id = created_ids[c.detail["email"]]
        team_id = team_id_for(c.detail["team_path"])
        new_memberships.append(
            Membership(
                user_id=user_id,
                team_id=team_id,
                started_on=c.detail["start"],
                ended_on=c.detail["end"],
            )
        )
        if c.detail["lead"]:
            new_leads.append(TeamLead(user_id=user_id, team_id=team_id))
        log(
            "person.create",
            "wellbeing.user",
            c.detail["name"] or c.subject,
            None,
            {"team": c.detail["team"], "active": c.detail["active"], "lead": c.detail["lead"]},
        )
    for c in by_kind["person_rename"]:
        User.objects.filter(pk=c.detail["user_id"]).update(full_name=c.detail["after"])
        log(
            "person.rename",
            "wellbeing.user",
            c.detail["after"],
            {"name": c.detail["before"]},
            {"name": c.detail["after"]},
        )
    for kind, active in (("person_deactivate", False), ("person_reactivate", True)):
        ids = [c.detail["user_id"] for c in by_kind[kind]]
        User.objects.filter(pk__in=ids).update(is_active=active)
        for c in by_kind[kind]:
            log(
                "person.deactivate" if not active else "person.reactivate",
                "wellbeing.user",
                c.subject,
                {"active": not active},
                {"active": active},
            )
    for c in by_kind["membership_end"]:
        Membership.objects.filter(pk=c.detail["membership_id"]).update(
            ended_on=c.detail["ended_on"]
        )
        log(
            "membership.end",
            "wellbeing.membership",
            c.subject,
            {"team": c.detail["team"], "ended_on": None},
            {"ended_on": c.detail["ended_on"]},
        )
    for c in by_kind["membership_change"]:
        started_on, ended_on = c.detail["after"]
        Membership.objects.filter(pk=c.detail["membership_id"]).update(
            started_on=started_on, ended_on=ended_on
        )
        log(
            "membership.change",
            "wellbeing.membership",
            c.subject,
            {"dates": c.detail["before"]},
            {"dates": c.detail["after"]},
        )
    for c in by_kind["membership_start"]:
        new_memberships.append(
            Membership(
                user_id=c.detail["user_id"],
                team_id=team_id_for(c.detail["team_path"]),
                started_on=c.detail["start"],
                ended_on=c.detail["end"],
            )
        )
        log(
            "membership.start",
            "wellbeing.membership",
            c.subject,
            None,
            {"team": c.detail["team"], "start": c.detail["start"]},
        )
    for c in by_kind["lead_add"]:
        new_leads.append(
            TeamLead(user_id=c.detail["user_id"], team_id=team_id_for(c.detail["team_path"]))
        )
        log("lead.add", "wellbeing.teamlead", c.subject, None, {"team": c.detail["team"]})
    TeamLead.objects.filter(pk__in=[c.detail["lead_id"] for c in by_kind["lead_remove"]]).delete()
    for c in by_kind["lead_remove"]:
        log("lead.remove", "wellbeing.teamlead", c.subject, {"team": c.detail["team"]}, None)
    Membership.objects.bulk_create(new_memberships, batch_size=1000)
    TeamLead.objects.bulk_create(new_leads, batch_size=1000, ignore_conflicts=True)
    AuditEntry.objects.bulk_create(audit, batch_size=1000)


# --- Carrying rows between the preview and the confirm step ----------------------------------


def rows_load(text: str) -> list[ImportRow]:
    return tabular_rows_load(text, row_type=ImportRow)
