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
# The most cycles a flag rule may count: a year of weekly check-ins.
MAX_FLAG_CYCLES = 52


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("Unknown timezone: %(value)s"), params={"value": value})


def default_timezone() -> str:
    return settings.PULSE_DEFAULT_TIMEZONE


def default_anonymity_threshold() -> int:
    return settings.PULSE_DEFAULT_ANONYMITY_THRESHOLD


def default_comment_threshold() -> int:
    """8, or the default k when that is higher: comments never need fewer people than figures
    (``organisation_comment_threshold_at_least_k``)."""
    return max(8, default_anonymity_threshold())


class Organisation(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    timezone = models.CharField(
        max_length=64, default=default_timezone, validators=[validate_timezone]
    )
    locale = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        default="en",
        help_text=_("Pages and messages for people who have not chosen a language of their own."),
    )
    anonymity_threshold = models.PositiveSmallIntegerField(
        default=default_anonymity_threshold,
        validators=[MinValueValidator(MINIMUM_ANONYMITY_THRESHOLD), MaxValueValidator(50)],
        help_text=_("Minimum number of responses (k) behind any number shown. Never below 3."),
    )
    comment_threshold = models.PositiveSmallIntegerField(
        default=default_comment_threshold,
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
    language = models.CharField(
        max_length=10,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_("Empty means the organisation's language."),
    )
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
        organisation = self.organisation
        return self.effective_timezone_of(
            self.timezone,
            None if organisation is None else organisation.pk,
            None if organisation is None else organisation.timezone,
        )

    @staticmethod
    def effective_timezone_of(
        own: str, organisation_id: int | None, organisation_timezone: str | None
    ) -> str:
        """The rule of ``effective_timezone`` on plain values (bulk reads without instances)."""
        if own:
            return own
        if organisation_id is None or organisation_timezone is None:
            return "UTC"
        return organisation_timezone


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


# --- Analytics: stored per-cycle aggregates, flags and their life cycle -----------------------
# Written once per closed cycle by ``wellbeing/aggregation.py`` through the anonymity guard;
# dashboards and the API read only these tables.  A suppressed cell keeps no number at all
# (not even its n), so no later code can leak a figure from fewer than k people.


class FlagSettings(models.Model):
    """Per-organisation thresholds for flags (defaults apply when an organisation has none)."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, related_name="flag_settings"
    )
    high_stress_level = models.PositiveSmallIntegerField(
        default=60,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text=_("Stress index (0-100) above which a team counts as highly stressed."),
    )
    high_stress_consecutive = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1)],
        help_text=_("Consecutive cycles above the level before a high-stress flag opens."),
    )
    client_burnout_level = models.PositiveSmallIntegerField(
        default=50,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text=_("Client-related burnout index counted as high for the empathy-risk flag."),
    )
    resolve_after_cycles = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text=_("Cycles back in control before an open flag resolves itself."),
    )
    reopen_within_days = models.PositiveSmallIntegerField(
        default=56,
        validators=[MinValueValidator(0), MaxValueValidator(366)],
        help_text=_("A flag resolved this recently is reopened instead of opening a new one."),
    )

    class Meta:
        verbose_name_plural = "flag settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(high_stress_level__lte=100) & Q(client_burnout_level__lte=100),
                name="flagsettings_levels_0_100",
            ),
            models.CheckConstraint(
                condition=Q(high_stress_consecutive__gte=1) & Q(resolve_after_cycles__gte=1),
                name="flagsettings_cycles_at_least_1",
            ),
            models.CheckConstraint(
                condition=Q(high_stress_consecutive__lte=MAX_FLAG_CYCLES)
                & Q(resolve_after_cycles__lte=MAX_FLAG_CYCLES),
                name="flagsettings_cycles_at_most_a_year",
            ),
        ]

    def __str__(self) -> str:
        return f"Flag settings of {self.organisation_id}"

    def clean(self) -> None:
        # Checked here (one message for both fields) and by a constraint in the database.  The
        # close's flag screening holds every team's last ``high_stress_consecutive`` figures,
        # and a flag waiting longer than a year to resolve would in effect never resolve.
        errors = {
            name: ValidationError(
                _("At most %(max)d cycles (a year of weekly check-ins)."),
                params={"max": MAX_FLAG_CYCLES},
            )
            for name in ("high_stress_consecutive", "resolve_after_cycles")
            if isinstance(getattr(self, name), int) and getattr(self, name) > MAX_FLAG_CYCLES
        }
        if errors:
            raise ValidationError(errors)


class CycleResult(models.Model):
    """One closed check-in cycle's stored results (``cycle_key`` = the cycle's public id)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="cycle_results"
    )
    cycle_key = models.UUIDField(unique=True)
    period_start = models.DateField()
    closed_at = models.DateTimeField()
    computed_at = models.DateTimeField(auto_now=True)
    k = models.PositiveSmallIntegerField(help_text=_("The anonymity threshold applied."))

    class Meta:
        ordering = ["period_start", "closed_at"]
        indexes = [models.Index(fields=["organisation", "period_start"])]

    def __str__(self) -> str:
        return f"Results of {self.period_start} ({self.cycle_key})"


class Scope(models.TextChoices):
    TEAM = "team", _("Team (direct members)")
    SUBTREE = "subtree", _("Team and sub-teams")
    ORGANISATION = "organisation", _("Organisation")


class TeamAggregate(models.Model):
    """One group's figure for one dimension in one cycle; numbers only when published."""

    # No single-column indexes on these two: the unique cell index starts with the result, and
    # every index slows the close's bulk write (see Meta).  Teams are deactivated, not deleted
    # (the Django admin refuses too); deleting a whole organisation is rare enough for its
    # cascade to scan this table.
    #
    # Nor foreign-key constraints in the database, here and on ``TeamParticipation``.  A close
    # writes its rows in bulk (56,847 for 100,000 people), and PostgreSQL checks each row's
    # keys when the transaction commits, locking the referenced result and team rows: 1.6 s of
    # the database's time per close at that size (1.3 s for the result alone, whose small table
    # it scans for every row), twice the analytic phase.  The rows are written only by
    # ``aggregation``, in the transaction that creates their result, for the teams of the tree
    # it reads; they go with their result or team through Django's cascade (a recompute
    # deletes the previous result).
    result = models.ForeignKey(
        CycleResult,
        on_delete=models.CASCADE,
        related_name="aggregates",
        db_index=False,
        db_constraint=False,
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="aggregates",
        db_index=False,
        db_constraint=False,
    )
    scope = models.CharField(max_length=12, choices=Scope.choices)
    dimension = models.CharField(max_length=40)
    published = models.BooleanField(default=False)
    # May the change since the group's previous published figure be shown (over-time rule)?
    delta_published = models.BooleanField(default=False)
    n = models.PositiveIntegerField(null=True, blank=True)
    index = models.FloatField(null=True, blank=True)
    sd = models.FloatField(null=True, blank=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    # The spread: how many of the cell's scores fell in each fifth of the index, [lo, hi) with
    # the last one closed (``aggregation.BUCKETS``).  Plain integer columns rather than one
    # JSON list: the close writes tens of thousands of rows a cycle, and PostgreSQL parsing a
    # JSON value per row was a fifth of its time taking them.
    band_0_20 = models.PositiveIntegerField(null=True, blank=True)
    band_20_40 = models.PositiveIntegerField(null=True, blank=True)
    band_40_60 = models.PositiveIntegerField(null=True, blank=True)
    band_60_80 = models.PositiveIntegerField(null=True, blank=True)
    band_80_100 = models.PositiveIntegerField(null=True, blank=True)

    BANDS = ("band_0_20", "band_20_40", "band_40_60", "band_60_80", "band_80_100")

    class Meta:
        # Every index here starts with the result, so the close's bulk write of a cycle's rows
        # appends at the right edge of each.  A team's history is read through the unique cell
        # index, one probe per result of its organisation (filter on
        # ``result__organisation``): a few pages each, where an index led by the team would
        # cost the close one scattered leaf page per new row.
        constraints = [
            models.UniqueConstraint(
                fields=["result", "team", "scope", "dimension"],
                include=["published"],  # the close's look-back reads only this index
                name="teamaggregate_one_per_cell",
            ),
            models.UniqueConstraint(
                fields=["result", "dimension"],
                condition=Q(team__isnull=True),
                name="teamaggregate_one_org_cell",
            ),
            models.CheckConstraint(
                condition=Q(scope="organisation", team__isnull=True)
                | (~Q(scope="organisation") & Q(team__isnull=False)),
                name="teamaggregate_org_scope_has_no_team",
            ),
            # The promise, enforced by the database: a suppressed cell carries no number.
            models.CheckConstraint(
                condition=Q(
                    published=False,
                    delta_published=False,
                    n__isnull=True,
                    index__isnull=True,
                    sd__isnull=True,
                    ci_low__isnull=True,
                    ci_high__isnull=True,
                    band_0_20__isnull=True,
                    band_20_40__isnull=True,
                    band_40_60__isnull=True,
                    band_60_80__isnull=True,
                    band_80_100__isnull=True,
                )
                | Q(published=True, n__isnull=False, index__isnull=False),
                name="teamaggregate_suppressed_has_no_numbers",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dimension} {self.scope} {self.team_id} in {self.result_id}"

    @property
    def suppressed(self) -> bool:
        return not self.published

    @property
    def distribution(self) -> list[int] | None:
        """The counts per band, lowest first; None when the cell has none (suppressed)."""
        counts = [getattr(self, band) for band in self.BANDS]
        return None if any(c is None for c in counts) else counts


class DetectionColumns(models.Model):
    """The rows of one result that the flag step's window reads, packed (PostgreSQL only).

    The stress and client-burnout figures of every team and subtree and their participation,
    each row in the fixed-size binary layout of ``wellbeing.flags`` (``_AGGREGATE_RECORD``,
    ``_PARTICIPATION_RECORD``).  A copy of the result's rows, written in the transaction that
    stores them: the close reads a year of cycles as 52 values instead of a million rows.  A
    result without one (older data, SQLite) is read from the rows themselves."""

    result = models.OneToOneField(
        CycleResult, on_delete=models.CASCADE, primary_key=True, related_name="detection_columns"
    )
    aggregates = models.BinaryField()
    participation = models.BinaryField()

    def __str__(self) -> str:
        return f"Detection columns of {self.result_id}"


class ResultLayout(models.Model):
    """The groups behind one result's figures as its close saw them, for the over-time rule.

    One record per node of the guard's layout (``wellbeing.aggregation``: the organisation,
    each team or subtree, a parent's direct group), packed in ``aggregation._LAYOUT_RECORD``:
    its cell (team and scope), its parent's position, the team whose people it holds directly
    (0: none) and how many people were behind it (those asked in that cycle in its subtree).
    The next close places the people asked in this result's cycle in this tree, not in the tree
    as it is by then, and compares their number with the one kept here: a team moved, created or
    deleted since, or a person erased since, changes who is behind a figure.  Numbers only: no
    person.  A result without one (stored before layouts were kept) publishes no change since."""

    result = models.OneToOneField(
        CycleResult, on_delete=models.CASCADE, primary_key=True, related_name="layout"
    )
    nodes = models.BinaryField()
    # Whose people: the cycle's invitations (the check-in close's), or else the memberships on
    # its period start; the next close lists them again the same way.
    asked = models.BooleanField()

    def __str__(self) -> str:
        return f"Layout of {self.result_id}"


class TeamParticipation(models.Model):
    """Invited and responded per group and cycle; responded/rate only when published."""

    # the unique per-group index starts with the result: no single-column index besides it;
    # no foreign-key constraints in the database, as on ``TeamAggregate``
    result = models.ForeignKey(
        CycleResult,
        on_delete=models.CASCADE,
        related_name="participation",
        db_index=False,
        db_constraint=False,
    )
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="participation",
        db_constraint=False,
    )
    scope = models.CharField(max_length=12, choices=Scope.choices)
    invited = models.PositiveIntegerField()
    published = models.BooleanField(default=False)
    responded = models.PositiveIntegerField(null=True, blank=True)
    rate = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["result", "team", "scope"], name="teamparticipation_one_per_group"
            ),
            models.UniqueConstraint(
                fields=["result"],
                condition=Q(team__isnull=True),
                name="teamparticipation_one_org_row",
            ),
            models.CheckConstraint(
                condition=Q(published=False, responded__isnull=True, rate__isnull=True)
                | Q(published=True, responded__isnull=False, rate__isnull=False),
                name="teamparticipation_suppressed_has_no_numbers",
            ),
        ]

    def __str__(self) -> str:
        return f"participation {self.scope} {self.team_id} in {self.result_id}"


class TeamComments(models.Model):
    """One group's free-text comments from one closed cycle (``wellbeing.comments``).

    Written at close only for a group the anonymity guard lets out at the organisation's comment
    threshold, and only when it has comments: the texts as a list in random order, nothing else
    (no time, no order of arrival, nothing that points to a response).  Dashboards and the API
    read comments only from here; they go with their cycle's raw answers at the end of the
    retention period (``checkins.retention``)."""

    # read by team (the dashboards) through its own index; by result through the unique one
    result = models.ForeignKey(
        CycleResult, on_delete=models.CASCADE, related_name="comments", db_index=False
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="comments"
    )
    scope = models.CharField(max_length=12, choices=Scope.choices)
    comments = models.JSONField(default=list)

    class Meta:
        verbose_name_plural = "team comments"
        constraints = [
            models.UniqueConstraint(
                fields=["result", "team", "scope"], name="teamcomments_one_per_group"
            ),
            models.UniqueConstraint(
                fields=["result"],
                condition=Q(team__isnull=True),
                name="teamcomments_one_org_row",
            ),
            models.CheckConstraint(
                condition=Q(scope="organisation", team__isnull=True)
                | (~Q(scope="organisation") & Q(team__isnull=False)),
                name="teamcomments_org_scope_has_no_team",
            ),
        ]

    def __str__(self) -> str:
        return f"comments {self.scope} {self.team_id} in {self.result_id}"


class Flag(models.Model):
    """A team whose figures crossed a rule; evidence holds published figures only."""

    class Kind(models.TextChoices):
        HIGH_STRESS = "high_stress", _("High stress")
        RISING_STRESS = "rising_stress", _("Rising stress")
        EMPATHY_RISK = "empathy_risk", _("Empathy risk")
        PARTICIPATION_DROP = "participation_drop", _("Participation drop")

    class Severity(models.TextChoices):
        WATCH = "watch", _("Watch")
        WARNING = "warning", _("Warning")
        CRITICAL = "critical", _("Critical")

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")
        DISMISSED = "dismissed", _("Dismissed")

    ACTIVE_STATES = (State.OPEN, State.ACKNOWLEDGED)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="flags")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    state = models.CharField(max_length=14, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField()
    first_cycle_period = models.DateField()
    last_cycle_period = models.DateField(help_text=_("Latest cycle in which the rule fired."))
    last_evaluated_period = models.DateField(help_text=_("Latest cycle the flag was checked in."))
    evidence = models.JSONField(default=dict, blank=True)
    explanation = models.TextField(blank=True)
    suggested_actions = models.JSONField(default=list, blank=True)
    in_control_streak = models.PositiveSmallIntegerField(default=0)
    acknowledged_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    action_taken = models.TextField(blank=True)
    follow_up_on = models.DateField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # One live flag per team and kind: a recurring problem reopens, never duplicates.
            models.UniqueConstraint(
                fields=["team", "kind"],
                condition=Q(state__in=["open", "acknowledged"]),
                name="flag_one_active_per_team_kind",
            ),
            models.CheckConstraint(
                condition=~Q(state="dismissed") | ~Q(dismissed_reason=""),
                name="flag_dismissal_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "state"]),
            models.Index(fields=["team", "kind", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.severity}, {self.state}) for {self.team_id}"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def explanation_text(self) -> str:
        """The explanation in the active language (the stored English one for flags whose
        evidence predates the facts it is written from)."""
        from .flag_text import explain, facts

        return explain(facts(self.kind, self.evidence)) or self.explanation


class FlagEvent(models.Model):
    """The life-cycle log of a flag: opened, escalated, acknowledged, resolved, ..."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        ESCALATED = "escalated", _("Escalated")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")
        REOPENED = "reopened", _("Reopened")
        DISMISSED = "dismissed", _("Dismissed")

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=dj_timezone.now)
    cycle_period = models.DateField(null=True, blank=True)
    severity = models.CharField(max_length=10, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} of flag {self.flag_id}"


# --- Customer-service signals per team and week (see wellbeing/customer_metrics.py) ----------
# Team-level numbers from the helpdesk (CSAT, QA/empathy scores, complaint rate, first-contact
# resolution), never about a person: no agent, customer or ticket is stored.


class CustomerMetric(models.Model):
    """A customer-service measure an organisation tracks per team and week."""

    class Direction(models.TextChoices):
        HIGHER_IS_BETTER = "higher_is_better", _("Higher is better")
        HIGHER_IS_WORSE = "higher_is_worse", _("Higher is worse")

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="customer_metrics"
    )
    key = models.SlugField(max_length=40, help_text=_("Short code used in files, e.g. csat."))
    name = models.CharField(max_length=100)
    unit = models.CharField(max_length=20, blank=True, help_text=_("e.g. %, points, per 100"))
    direction = models.CharField(
        max_length=16, choices=Direction.choices, default=Direction.HIGHER_IS_BETTER
    )
    min_value = models.FloatField(default=0.0)
    max_value = models.FloatField(default=100.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "key"], name="customermetric_unique_key"
            ),
            models.CheckConstraint(
                condition=Q(max_value__gt=models.F("min_value")),
                name="customermetric_range_not_empty",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def higher_is_better(self) -> bool:
        return self.direction == self.Direction.HIGHER_IS_BETTER


class CustomerMetricValue(models.Model):
    """One team's value of one metric in the week starting ``week_start`` (a Monday)."""

    metric = models.ForeignKey(CustomerMetric, on_delete=models.CASCADE, related_name="values")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="customer_metric_values")
    week_start = models.DateField()
    value = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["week_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "team", "week_start"], name="customermetricvalue_one_per_week"
            ),
        ]
        indexes = [models.Index(fields=["team", "metric", "week_start"])]

    def __str__(self) -> str:
        return f"{self.metric_id} {self.team_id} {self.week_start}: {self.value}"
