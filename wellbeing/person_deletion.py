"""Erasing a person (right to erasure): their account and everything that points to them.

What goes: the account, memberships, team-lead roles, check-in invitations and their tokens,
outbox messages addressed to them, notification preferences, API tokens, sessions, Django admin
log entries they wrote or that are about them, and failed-login records naming their e-mail.
The rows that point to the person go with the account (``on_delete=CASCADE``), so this module
does not need to know the other apps' models, which keeps ``wellbeing`` free of imports from
them; sessions, admin log entries about them and failed logins are found by id or e-mail.

What stays, by design: released answers and pending answers (they never pointed to anyone, so
there is nothing to erase and nothing here may touch them), and team aggregates (numbers over at
least k people).  Audit entries and flag events they authored keep the action with the actor
set to empty; the organisation's audit entries about them keep the action too, with their name
and e-mail address (as the entry's target, or as a value it recorded) replaced by
``ERASED_PERSON``.

Never: log or audit the person's e-mail address or name.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.contrib.sessions.models import Session
from django.db import transaction

from .audit import audit_record
from .models import AuditEntry, Organisation, User
from .services import person_last_admin_refuse

logger = logging.getLogger("pulse.erasure")


def _sessions_delete(user_pk: int) -> int:
    """Database sessions of this person (decoded one by one; sessions are few and short)."""
    doomed = [
        session.pk
        for session in Session.objects.iterator(chunk_size=500)
        if str(session.get_decoded().get("_auth_user_id")) == str(user_pk)
    ]
    Session.objects.filter(pk__in=doomed).delete()
    return len(doomed)


def _admin_log_about_delete(user_pk: int) -> int:
    """Django admin history about the person (its entries keep their name or e-mail in
    ``object_repr``); the entries they wrote as an operator go with the account (cascade)."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    deleted, _ = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(User), object_id=str(user_pk)
    ).delete()
    return deleted


def _failed_logins_delete(email: str) -> int:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    deleted = 0
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        count, _ = model.objects.filter(username__iexact=email).delete()
        deleted += count
    return deleted


ERASED_PERSON = "an erased person"


def _erased(value: Any, marks: frozenset[str]) -> Any:
    """``value`` (an entry's target or recorded JSON) with every string that is one of
    ``marks`` (compared ignoring case) replaced by ``ERASED_PERSON``."""
    if isinstance(value, str):
        return ERASED_PERSON if value.casefold() in marks else value
    if isinstance(value, list):
        return [_erased(v, marks) for v in value]
    if isinstance(value, dict):
        return {k: _erased(v, marks) for k, v in value.items()}
    return value


def _audit_entries_scrub(organisation: Organisation, user: User) -> int:
    """Replace the person's name and e-mail address in the organisation's audit entries.

    Whole values only (a name inside a sentence someone typed is not looked for).  Every entry
    of the organisation is read: erasures are rare, and a text search of the JSON would miss
    values the database stores escaped."""
    marks = frozenset(m.casefold() for m in (user.email, user.full_name, str(user)) if m)
    changed: list[AuditEntry] = []
    fields = ("target_repr", "before", "after")
    entries = AuditEntry.objects.filter(organisation=organisation).only("pk", *fields)
    for entry in entries.iterator(chunk_size=2000):
        scrubbed = {f: _erased(getattr(entry, f), marks) for f in fields}
        if any(scrubbed[f] != getattr(entry, f) for f in fields):
            for field, value in scrubbed.items():
                setattr(entry, field, value)
            changed.append(entry)
    AuditEntry.objects.bulk_update(changed, fields, batch_size=500)
    return len(changed)


def person_erase(*, user: User, actor: User | None = None) -> dict[str, int]:
    """Delete ``user`` and every row pointing to them; return the number of rows per model.

    Refuses (``last_admin``, 409) to erase an organisation's only active admin — promote
    someone else first — so an organisation is never left with nobody to run it.  The Django
    admin's delete page for a person calls this too."""
    organisation = user.organisation
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        person_last_admin_refuse(user)
        user_pk, email = user.pk, user.email
        scrubbed = _audit_entries_scrub(organisation, user) if organisation is not None else 0
        _, per_model = user.delete()
        counts: Counter[str] = Counter(per_model)
        counts["wellbeing.AuditEntry (name replaced)"] += scrubbed
        counts["sessions.Session"] += _sessions_delete(user_pk)
        counts["axes.failed_logins"] += _failed_logins_delete(email)
        counts["admin.LogEntry"] += _admin_log_about_delete(user_pk)
        summary = {label: n for label, n in sorted(counts.items()) if n}
        if organisation is not None:
            audit_record(
                organisation=organisation,
                actor=actor if actor is not None and actor.pk != user_pk else None,
                action="person.erase",
                target=ERASED_PERSON,
                after={"rows_deleted": summary},
            )
    logger.info("event=person_erased rows=%d", sum(summary.values()))
    return summary
