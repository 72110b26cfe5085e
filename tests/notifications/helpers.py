"""Small builders for notification tests."""

from __future__ import annotations

from datetime import UTC, datetime, time

from notifications.models import NotificationPreference
from notifications.services import OutgoingMessage

#: A Wednesday, 12:00 in Berlin: inside default working hours everywhere in Europe.
WORKING_HOURS = datetime(2025, 6, 11, 10, 0, tzinfo=UTC)


def invitation(organisation, user, key: str, **overrides) -> OutgoingMessage:
    fields = {
        "organisation_id": organisation.pk,
        "kind": "invitation",
        "recipient_id": user.pk if user is not None else None,
        "template": "invitation",
        "context": {"closes_on": "Friday"},
        "idempotency_key": key,
        "sensitive_context": {"url": f"https://pulse.example/checkin/t/secret-{key}"},
    }
    fields.update(overrides)
    return OutgoingMessage(**fields)


def always_available(users) -> None:
    """Preferences that never hold a message back (every day, all day)."""
    NotificationPreference.objects.bulk_create(
        [
            NotificationPreference(
                user=user,
                work_start=time(0, 0),
                work_end=time(23, 59, 59, 999999),
                work_days=[0, 1, 2, 3, 4, 5, 6],
            )
            for user in users
        ]
    )
