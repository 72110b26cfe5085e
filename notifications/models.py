"""The notification outbox, per-organisation channel settings and per-person preferences.

A ``Message`` row is written in the same transaction as the event that causes it and is
delivered later by a Celery task.  ``sensitive_context`` (e.g. a one-time check-in link) is
erased as soon as the message is sent, fails for good or is cancelled; it is never logged and
never shown in the admin.  Webhook URLs are secrets (anyone holding one can post): they are
never logged and shown masked in the admin.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from wellbeing.ids import ordered_uuid

from .webhooks import validate_slack_webhook_url, validate_teams_webhook_url

DEFAULT_WORK_DAYS = [0, 1, 2, 3, 4]  # Monday..Friday (datetime.weekday())


def default_work_days() -> list[int]:
    return list(DEFAULT_WORK_DAYS)


class Kind(models.TextChoices):
    INVITATION = "invitation", _("Check-in invitation")
    REMINDER = "reminder", _("Check-in reminder")
    FLAG_ALERT = "flag_alert", _("Flag alert")
    DIGEST = "digest", _("Digest")
    CYCLE_SUMMARY = "cycle_summary", _("Cycle summary")
    ACCOUNT = "account", _("Sign-in link")


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SLACK = "slack", _("Slack")
    TEAMS = "teams", _("Microsoft Teams")


class State(models.TextChoices):
    PENDING = "pending", _("Pending")
    CLAIMED = "claimed", _("Claimed")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


#: Kinds a person may mute.  Invitations cannot be muted (they are the product).
MUTABLE_KINDS = {Kind.REMINDER: "mute_reminders", Kind.DIGEST: "mute_digests"}

#: Kinds a person is waiting for at the screen (a link to set their password): sent at once,
#: outside working hours too, by e-mail only, and without an unsubscribe link.
ACCOUNT_KINDS = frozenset({Kind.ACCOUNT})


class Message(models.Model):
    """One outgoing message, delivered at most once per idempotency key (see ``services``)."""

    # In the order messages are written (``wellbeing.ids``), so an opening's 100,000 add to the
    # right edge of the index; so does their key, made from their invitation's ordered id.
    public_id = models.UUIDField(default=ordered_uuid, unique=True, editable=False)
    # indexed first in (organisation, state), not on its own
    organisation = models.ForeignKey(
        "wellbeing.Organisation",
        on_delete=models.CASCADE,
        related_name="outbox_messages",
        db_index=False,
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    # Keep this key checked in the database: check-in invitations and tokens point to their
    # person without a constraint, and rely on the message written with them failing to
    # commit if the person was erased meanwhile (``checkins.models.Invitation.user``).
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="outbox_messages",
        help_text=_("Empty for channel messages (e.g. an organisation's Slack channel)."),
    )
    template = models.CharField(max_length=100)
    context = models.JSONField(default=dict, blank=True)
    # Erased (set to NULL) when the message reaches a final state.
    sensitive_context = models.JSONField(null=True, blank=True, editable=False)
    had_sensitive_context = models.BooleanField(default=False, editable=False)
    idempotency_key = models.CharField(max_length=200)  # unique: see Meta
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Which delivery run holds the claim; marking sent checks it so a run whose claim was
    # taken over (it looked stuck) cannot overwrite the new owner's outcome.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_state_due_idx"),
            models.Index(fields=["organisation", "state"], name="outbox_org_state_idx"),
            # message_cancel_pending filters by key prefix (LIKE 'prefix%') on pending rows.
            models.Index(
                fields=["idempotency_key"],
                name="outbox_pending_key_prefix_idx",
                opclasses=["varchar_pattern_ops"],
                condition=Q(state="pending"),
            ),
        ]
        constraints = [
            # In Meta rather than on the field, which would add an index for every pattern
            # match: the only one there is (above) reads pending rows.
            models.UniqueConstraint(fields=["idempotency_key"], name="outbox_one_per_key"),
            models.CheckConstraint(
                condition=~Q(state="claimed") | Q(claimed_at__isnull=False),
                name="outbox_claimed_has_claimed_at",
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.public_id}"


class ChannelSettings(models.Model):
    """Which channels an organisation uses, and its channel webhooks (secrets)."""

    organisation = models.OneToOneField(
        "wellbeing.Organisation", on_delete=models.CASCADE, related_name="channel_settings"
    )
    slack_enabled = models.BooleanField(default=False)
    teams_enabled = models.BooleanField(default=False)
    slack_webhook_url = models.URLField(
        max_length=500, blank=True, validators=[validate_slack_webhook_url]
    )
    teams_webhook_url = models.URLField(
        max_length=500, blank=True, validators=[validate_teams_webhook_url]
    )
    default_channel = models.CharField(
        max_length=10,
        choices=Channel.choices,
        default=Channel.EMAIL,
        help_text=_("Used for people who have not chosen a channel."),
    )

    class Meta:
        verbose_name_plural = "channel settings"

    def __str__(self) -> str:
        return f"channels of organisation {self.organisation_id}"

    def save(self, *args, **kwargs) -> None:
        if self.slack_webhook_url:
            validate_slack_webhook_url(self.slack_webhook_url)
        if self.teams_webhook_url:
            validate_teams_webhook_url(self.teams_webhook_url)
        super().save(*args, **kwargs)

    def allows(self, channel: str) -> bool:
        if channel == Channel.EMAIL:
            return True
        if channel == Channel.SLACK:
            return self.slack_enabled
        if channel == Channel.TEAMS:
            return self.teams_enabled
        return False


class NotificationPreference(models.Model):
    """A person's channel, mutes and working hours (messages wait for working hours)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    slack_webhook_url = models.URLField(
        max_length=500,
        blank=True,
        validators=[validate_slack_webhook_url],
        help_text=_("A personal Slack incoming webhook (e.g. to your own DM channel)."),
    )
    teams_webhook_url = models.URLField(
        max_length=500, blank=True, validators=[validate_teams_webhook_url]
    )
    mute_reminders = models.BooleanField(default=False)
    mute_digests = models.BooleanField(default=False)
    work_start = models.TimeField(default=time(8, 0))
    work_end = models.TimeField(default=time(18, 0))
    work_days = models.JSONField(default=default_work_days)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(work_end__gt=models.F("work_start")),
                name="preference_work_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"

    def save(self, *args, **kwargs) -> None:
        if self.slack_webhook_url:
            validate_slack_webhook_url(self.slack_webhook_url)
        if self.teams_webhook_url:
            validate_teams_webhook_url(self.teams_webhook_url)
        super().save(*args, **kwargs)
