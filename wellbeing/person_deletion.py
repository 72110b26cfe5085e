"""Erasing a person (right to erasure): their account and everything that points to them.

What goes: the account, memberships, team-lead roles, check-in invitations and their tokens,
outbox messages addressed to them, notification preferences, API tokens, sessions, admin log
entries and failed-login records naming their e-mail.  Every one of those rows points to the
person, so deleting the account cascades to them (``on_delete=CASCADE``); this module does not
need to know the other apps' models, which keeps ``wellbeing`` free of imports from them.

What stays, by design: released answers and pending answers (they never pointed to anyone, so
there is nothing to erase and nothing here may touch them), and team aggregates (numbers over at
least k people).  Audit entries and flag events they authored keep the action with the actor
set to empty.

Never: log or audit the person's e-mail address or name.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.contrib.sessions.models import Session
from django.db import transaction

from .audit import audit_record
from .errors import ServiceError
from .models import User

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


def _failed_logins_delete(email: str) -> int:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    deleted = 0
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        count, _ = model.objects.filter(username__iexact=email).delete()
        deleted += count
    return deleted


def person_erase(*, user: User, actor: User | None = None) -> dict[str, int]:
    """Delete ``user`` and every row pointing to them; return the number of rows per model.

    Refuses (``last_admin``, 409) to erase an organisation's only active admin — promote
    someone else first — so an organisation is never left with nobody to run it."""
    organisation = user.organisation
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if (
            organisation is not None
            and user.is_org_admin
            and not User.objects.filter(
                organisation=organisation, is_org_admin=True, is_active=True
            )
            .exclude(pk=user.pk)
            .exists()
        ):
            raise ServiceError(
                "last_admin",
                "This person is the organisation's only admin. Make someone else an admin first.",
                status=409,
            )
        user_pk, email = user.pk, user.email
        _, per_model = user.delete()
        counts: Counter[str] = Counter(per_model)
        counts["sessions.Session"] += _sessions_delete(user_pk)
        counts["axes.failed_logins"] += _failed_logins_delete(email)
        summary = {label: n for label, n in sorted(counts.items()) if n}
        if organisation is not None:
            audit_record(
                organisation=organisation,
                actor=actor if actor is not None and actor.pk != user_pk else None,
                action="person.erase",
                target="an erased person",
                after={"rows_deleted": summary},
            )
    logger.info("event=person_erased rows=%d", sum(summary.values()))
    return summary
