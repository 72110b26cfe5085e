"""The organisation: people, teams (a tree), memberships with history, and roles.

Invariants live here: the team tree never has a cycle and never crosses organisations, the
anonymity threshold k is never below 3, a membership never ends before it starts.
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import date

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

MINIMUM_ANONYMITY_THRESHOLD = 3


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("Unknown timezone: %(value)s"), params={"value": value})


def default_timezone() -> str:
    return settings.PULSE_DEFAULT_TIMEZONE


def default_anonymity_threshold() -> int:
    return settings.PULSE_DEFAULT_ANONYMITY_THRESHOLD


class Organisation(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    timezone = models.CharField(
        max_length=64, default=default_timezone, validators=[validate_timezone]
    )
    locale = models.CharField(max_length=10, default="en")
    anonymity_threshold = models.PositiveSmallIntegerField(
        default=default_anonymity_threshold,
        validators=[MinValueValidator(MINIMUM_ANONYMITY_THRESHOLD), MaxValueValidator(50)],
        help_text=_("Minimum number of responses (k) behind any number shown. Never below 3."),
    )
    comment_threshold = models.PositiveSmallIntegerField(
        default=8,
        validators=[MinValueValidator(MINIMUM_ANONYMITY_THRESHOLD), MaxValueValidator(100)],
        help_text=_("Minimum group size before free-text comments are shown."),
    )
    comments_enabled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(anonymity_threshold__gte=MINIMUM_ANONYMITY_THRESHOLD),
                name="organisation_k_at_least_3",
            ),
            models.CheckConstraint(
                condition=Q(comment_threshold__gte=models.F("anonymity_threshold")),
                name="organisation_comment_threshold_at_least_k",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def clean(self) -> None:
        if (
            self.comment_threshold is not None
            and self.anonymity_threshold is not None
            and self.comment_threshold < self.anonymity_threshold
        ):
            raise ValidationError(
                {"comment_threshold": _("Must be at least the anonymity threshold.")}
            )


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields["is_staff"] = True
        fields["is_superuser"] = True
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person.  Logs in with e-mail.  Roles: org admin (flag), team lead (TeamLead rows)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="people"
    )
    is_org_admin = models.BooleanField(default=False)
    timezone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        help_text=_("Empty means the organisation's timezone."),
    )
    language = models.CharField(max_length=10, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=dj_timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        indexes = [models.Index(fields=["organisation", "is_active"])]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name or self.email).split(" ")[0]

    @property
    def effective_timezone(self) -> str:
        if self.timezone:
            return self.timezone
        return self.organisation.timezone if self.organisation is not None else "UTC"


class Team(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    customer_facing = models.BooleanField(
        default=False, help_text=_("Serves customers directly: watched for empathy risk.")
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "parent", "name"], name="team_unique_name_under_parent"
            ),
            models.UniqueConstraint(
                fields=["organisation", "name"],
                condition=Q(parent__isnull=True),
                name="team_unique_root_name",
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="team_not_own_parent"),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.parent_id is None or self.parent is None:
            return
        parent = self.parent
        if parent.organisation_id != self.organisation_id:
            raise ValidationError({"parent": _("The parent team belongs to another organisation.")})
        if self.pk is None:
            return
        seen: set[int] = set()
        node: Team | None = parent
        while node is not None:
            if node.pk == self.pk:
                raise ValidationError(
                    {"parent": _("A team cannot be moved under itself or one of its sub-teams.")}
                )
            if node.pk in seen:  # a pre-existing cycle: refuse rather than loop
                raise ValidationError({"parent": _("The team tree is inconsistent.")})
            seen.add(node.pk)
            node = node.parent


class Membership(models.Model):
    """A person in a team from ``started_on`` until ``ended_on`` (inclusive; open if null)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    started_on = models.DateField(default=date.today)
    ended_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True) | Q(ended_on__gte=models.F("started_on")),
                name="membership_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["team", "started_on", "ended_on"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.team_id} from {self.started_on}"

    def clean(self) -> None:
        if self.ended_on and self.started_on and self.ended_on < self.started_on:
            raise ValidationError({"ended_on": _("A membership cannot end before it starts.")})

    @classmethod
    def active_on(cls, day: date) -> Q:
        """Filter for memberships active on ``day``."""
        return Q(started_on__lte=day) & (Q(ended_on__isnull=True) | Q(ended_on__gte=day))


class TeamLead(models.Model):
    """A lead sees aggregates for this team and its whole subtree."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="led_teams")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="leads")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="teamlead_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} leads {self.team_id}"


# --- Audit log (admin and lead actions; see wellbeing/audit.py) -------------------------------


class AuditEntry(models.Model):
    """Who changed which configuration, when, from what to what.

    Never holds answers, comments or tokens: ``wellbeing.audit.audit_record`` refuses them."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="audit_entries"
    )
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    action = models.CharField(max_length=60)
    target_type = models.CharField(max_length=60, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(default=dj_timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "-at"], name="audit_org_at"),
            models.Index(fields=["organisation", "action"], name="audit_org_action"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.target_type} at {self.at:%Y-%m-%d %H:%M}"
