"""The audit log: who changed configuration, thresholds, people or teams, and how.

Call it from the same transaction as the change it records, after the change::

    from wellbeing.audit import audit_record

    audit_record(
        organisation=org,            # whose log it goes to
        actor=request.user,          # a User, or None for the system / a management command
        action="team.rename",        # "<entity>.<verb>", short and stable (used as a filter)
        target=team,                 # a model instance (type + str are kept) or a plain string
        before={"name": "Support"},  # JSON-able dicts of the fields that changed, or None
        after={"name": "Care"},
    )

People's actions on flags (acknowledge, dismiss; from the dashboard or the API) record
``action="flag.<verb>"`` the same way; a flag's own history (``FlagEvent``) also keeps the
automatic openings, escalations and resolutions.

What it must never do: record answers, comments, tokens or passwords.  ``before``/``after``
keys naming those are refused with ``ValueError`` — a programming error, not user input.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import QuerySet

from .models import AuditEntry, Organisation, User

FORBIDDEN_KEYS = frozenset(
    {"answers", "answer", "comment", "comments", "token", "token_hash", "password", "responses"}
)
TARGET_REPR_MAX = 300


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return str(value)
    json.dumps(value)  # raises TypeError for anything else that cannot be stored
    return value


def _checked(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    bad = FORBIDDEN_KEYS.intersection(k.lower() for k in snapshot)
    if bad:
        raise ValueError(f"the audit log never records {', '.join(sorted(bad))}")
    return _jsonable(snapshot)


def audit_record(
    *,
    organisation: Organisation,
    actor: User | Any | None,
    action: str,
    target: models.Model | str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to ``organisation``'s audit log and return it."""
    if isinstance(target, models.Model):
        target_type = target._meta.label_lower
        target_repr = str(target)
    else:
        target_type = ""
        target_repr = target or ""
    actor_user = actor if isinstance(actor, User) else None
    return AuditEntry.objects.create(
        organisation=organisation,
        actor=actor_user,
        action=action[:60],
        target_type=target_type[:60],
        target_repr=target_repr[:TARGET_REPR_MAX],
        before=_checked(before),
        after=_checked(after),
    )


def audit_changes(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys whose values differ, as (before, after) — keeps entries short."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def audit_entries(*, organisation: Organisation, action: str = "") -> QuerySet[AuditEntry]:
    """The organisation's log, newest first, optionally one action (or prefix ending in '.')."""
    entries = AuditEntry.objects.filter(organisation=organisation).select_related("actor")
    if action.endswith("."):
        entries = entries.filter(action__startswith=action)
    elif action:
        entries = entries.filter(action=action)
    return entries


def audit_actions(*, organisation: Organisation) -> list[str]:
    return list(
        AuditEntry.objects.filter(organisation=organisation)
        .values_list("action", flat=True)
        .distinct()
        .order_by("action")
    )
