"""Check-ins: the question library, surveys, schedules, cycles, invitations and answers.

Anonymity invariants that live here (DESIGN.md §4):

- ``Response`` and ``PendingAnswer`` hold only the cycle, the team the respondent belonged to
  when invited, the answers and the optional comment (and a released response, its answers'
  indices, derived from them alone).  Random UUID primary keys, no user, no
  invitation, no token, no timestamps of any kind.  Never add a column that points to a person.
- ``Invitation`` records participation as a boolean only (``answered``): reminders need no more,
  and a time would help line a person up with a released batch.
- Tokens are never stored in clear: ``InvitationToken.token_hash`` is an HMAC (see ``tokens.py``).
- A question or survey that has answers is never edited in place; services create a new
  version (same ``key``, ``version + 1``, ``replaces`` pointing back).
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import date, time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import localdate
from django.utils.translation import gettext_lazy as _

from wellbeing.analytics import DIMENSIONS
from wellbeing.ids import ordered_uuid
from wellbeing.models import Organisation, Team, User, validate_timezone

if TYPE_CHECKING:
    from wellbeing.stats.scoring import ItemScale

COMMENT_MAX_LENGTH = 1000
# A rating scale's ends lie within ±SCALE_LIMIT: every point is a radio button on the check-in.
SCALE_LIMIT = 100
DIMENSION_CHOICES = [(d, d.replace("_", " ")) for d in DIMENSIONS]


def validate_reminder_offsets(value: object) -> None:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ValidationError(_("Reminder offsets must be a list of positive whole hours."))


TRANSLATION_TEXT_MAX_LENGTH = 1000
TRANSLATION_LABEL_MAX_LENGTH = 200


def _is_text(value: object, max_length: int) -> bool:
    # PostgreSQL cannot store NUL in jsonb text: refused here rather than as a database error.
    return isinstance(value, str) and 0 < len(value) <= max_length and "\x00" not in value


def translation_problems(value: object, *, scale_points: int | None) -> list[str]:
    """What is wrong with a question's ``translations`` (empty when nothing): a language Pulse
    speaks -> ``{"text": str, "labels": [str, ...]}``, both optional, the labels one per scale
    point (``scale_points``; None for a free-text question, which has none)."""
    languages = sorted(code for code, _name in settings.LANGUAGES)
    if not isinstance(value, dict):
        return [str(_('Translations map a language to {"text": ..., "labels": [...]}.'))]
    problems: list[str] = []
    for language, entry in value.items():
        if language not in languages:
            problems.append(
                _("%(language)s: not a language Pulse speaks (%(languages)s).")
                % {"language": str(language)[:20], "languages": ", ".join(languages)}
            )
        elif not isinstance(entry, dict) or not set(entry) <= {"text", "labels"}:
            problems.append(
                _('%(language)s: give {"text": ..., "labels": [...]}, nothing else.')
                % {"language": language}
            )
        else:
            if "text" in entry and not _is_text(entry["text"], TRANSLATION_TEXT_MAX_LENGTH):
                problems.append(
                    _("%(language)s: the text must be 1 to %(max)d characters.")
                    % {"language": language, "max": TRANSLATION_TEXT_MAX_LENGTH}
                )
            labels = entry.get("labels", [])
            if not (
                isinstance(labels, list)
                and all(_is_text(label, TRANSLATION_LABEL_MAX_LENGTH) for label in labels)
                and len(labels) in {0, scale_points or 0}
            ):
                problems.append(
                    _("%(language)s: the labels must be a list of texts, one per scale point.")
                    % {"language": language}
                )
    return problems


# --- Question library -------------------------------------------------------------------------


class Question(models.Model):
    """One item.  Library items have no organisation; admins add their own.

    ``text``/``scale_labels`` are English; ``translations`` maps a language code to
    ``{"text": str, "labels": [str, ...]}``.  ``reverse`` marks an item worded against its
    instrument (reverse-keyed); ``higher_is_worse`` says whether a high (keyed) value means
    worse on the dimension.  Scoring to 0-100 is ``wellbeing.stats.scoring``."""

    class Kind(models.TextChoices):
        SCALE = "scale", _("Rating scale")
        TEXT = "text", _("Free-text comment")

    class Audience(models.TextChoices):
        ALL = "all", _("Everyone")
        CUSTOMER_FACING = "customer_facing", _("Customer-facing teams only")

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="questions"
    )
    key = models.SlugField(max_length=80)
    version = models.PositiveIntegerField(default=1)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SCALE)
    audience = models.CharField(max_length=20, choices=Audience.choices, default=Audience.ALL)
    text = models.TextField()
    dimension = models.CharField(max_length=30, choices=DIMENSION_CHOICES, blank=True)
    scale_min = models.SmallIntegerField(null=True, blank=True)
    scale_max = models.SmallIntegerField(null=True, blank=True)
    scale_labels = models.JSONField(default=list, blank=True)
    reverse = models.BooleanField(default=False)
    higher_is_worse = models.BooleanField(default=True)
    required = models.BooleanField(default=False)
    source = models.TextField(blank=True)
    licence = models.CharField(max_length=300, blank=True)
    translations = models.JSONField(default=dict, blank=True)
    library_version = models.PositiveIntegerField(null=True, blank=True)
    is_current = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "version"],
                condition=Q(organisation__isnull=True),
                name="question_library_key_version_unique",
            ),
            models.UniqueConstraint(
                fields=["organisation", "key", "version"],
                condition=Q(organisation__isnull=False),
                name="question_org_key_version_unique",
            ),
            models.CheckConstraint(
                condition=Q(kind="text")
                | (
                    Q(scale_min__isnull=False, scale_max__isnull=False)
                    & Q(scale_max__gt=models.F("scale_min"))
                    & ~Q(dimension="")
                ),
                name="question_scale_has_range_and_dimension",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"

    @property
    def is_scale(self) -> bool:
        return self.kind == self.Kind.SCALE

    def _translation(self, language: str) -> dict:
        # A translation of another shape (stored before they were checked) is ignored.
        translations = self.translations if isinstance(self.translations, dict) else {}
        entry = translations.get(language)
        return entry if isinstance(entry, dict) else {}

    def text_in(self, language: str) -> str:
        text = self._translation(language).get("text")
        return text if isinstance(text, str) and text else self.text

    def labels_in(self, language: str) -> list[str]:
        labels = self._translation(language).get("labels")
        if isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
            return list(labels)
        return list(self.scale_labels)

    def item_scale(self) -> ItemScale:
        from wellbeing.stats.scoring import ItemScale

        assert self.scale_min is not None and self.scale_max is not None
        return ItemScale(
            minimum=self.scale_min,
            maximum=self.scale_max,
            reverse=self.reverse,
            higher_is_worse=self.higher_is_worse,
        )

    def clean(self) -> None:
        if self.kind == self.Kind.SCALE:
            if self.scale_min is None or self.scale_max is None:
                raise ValidationError(_("A rating question needs a scale minimum and maximum."))
            for name in ("scale_min", "scale_max"):
                if abs(getattr(self, name)) > SCALE_LIMIT:
                    raise ValidationError(
                        {name: _("Between -%(limit)d and %(limit)d.") % {"limit": SCALE_LIMIT}}
                    )
            if self.scale_max <= self.scale_min:
                raise ValidationError(_("The scale maximum must be above its minimum."))
            if not self.dimension:
                raise ValidationError({"dimension": _("A rating question needs a dimension.")})
            if self.scale_labels and len(self.scale_labels) != self.scale_max - self.scale_min + 1:
                raise ValidationError({"scale_labels": _("One label per scale point, or none.")})
        points = (
            self.scale_max - self.scale_min + 1
            if self.is_scale and self.scale_min is not None and self.scale_max is not None
            else None
        )
        problems = translation_problems(self.translations, scale_points=points)
        if problems:
            raise ValidationError({"translations": problems})


# --- Surveys ----------------------------------------------------------------------------------


class Survey(models.Model):
    """An ordered set of questions.  Once published it is immutable: edits make a new version."""

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="surveys"
    )
    key = models.SlugField(max_length=80)
    version = models.PositiveIntegerField(default=1)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    translations = models.JSONField(default=dict, blank=True)
    items_per_person = models.PositiveSmallIntegerField(
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text=_("At most this many rating items per person per cycle (rotation)."),
    )
    is_published = models.BooleanField(default=False)
    is_current = models.BooleanField(default=True)
    questions = models.ManyToManyField(Question, through="SurveyItem", related_name="surveys")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "version"],
                condition=Q(organisation__isnull=True),
                name="survey_library_key_version_unique",
            ),
            models.UniqueConstraint(
                fields=["organisation", "key", "version"],
                condition=Q(organisation__isnull=False),
                name="survey_org_key_version_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class SurveyItem(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="items")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="survey_items")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["survey", "position"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "position"], name="surveyitem_position"),
            models.UniqueConstraint(fields=["survey", "question"], name="surveyitem_question"),
        ]

    def __str__(self) -> str:
        return f"{self.survey_id}#{self.position}: {self.question_id}"


# --- Schedules and cycles ---------------------------------------------------------------------

# A first day decades away is a typo, and one near 9999-12-31 leaves the scheduler's date
# arithmetic nowhere to go.  The earliest day is fixed (not "n years ago") so that a schedule
# running for years can still be edited; the latest moves on with today.
SCHEDULE_EARLIEST_START = date(2000, 1, 1)
SCHEDULE_START_YEARS_AHEAD = 5


def schedule_start_range() -> tuple[date, date]:
    """The first days a schedule may be given: (earliest, latest), inclusive."""
    latest = date(localdate().year + SCHEDULE_START_YEARS_AHEAD, 12, 31)
    return SCHEDULE_EARLIEST_START, latest


class Schedule(models.Model):
    class Cadence(models.TextChoices):
        WEEKLY = "weekly", _("Weekly")
        BIWEEKLY = "biweekly", _("Every two weeks")
        MONTHLY = "monthly", _("Monthly (first given weekday)")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="schedules"
    )
    name = models.CharField(max_length=200)
    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="schedules")
    teams = models.ManyToManyField(
        Team, related_name="schedules", help_text=_("Sub-teams are included when a cycle opens.")
    )
    cadence = models.CharField(max_length=10, choices=Cadence.choices, default=Cadence.WEEKLY)
    weekday = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(6)], help_text=_("0 = Monday … 6 = Sunday")
    )
    local_time = models.TimeField(default=time(9, 0))
    timezone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_timezone],
        help_text=_("Empty means the organisation's timezone."),
    )
    open_hours = models.PositiveIntegerField(
        default=96, validators=[MinValueValidator(1), MaxValueValidator(24 * 27)]
    )
    reminder_offsets = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_reminder_offsets],
        help_text=_("Hours after opening at which people who have not answered are reminded."),
    )
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    paused = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(weekday__lte=6), name="schedule_weekday_range"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="schedule_ends_after_start",
            ),
            models.CheckConstraint(condition=Q(open_hours__gte=1), name="schedule_open_hours"),
        ]
        indexes = [models.Index(fields=["paused", "organisation"])]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone or self.organisation.timezone)

    def clean(self) -> None:
        validate_reminder_offsets(self.reminder_offsets)
        errors: dict[str, Any] = {}
        if any(h >= self.open_hours for h in self.reminder_offsets):
            errors["reminder_offsets"] = _("Reminders must fall inside the open window.")
        if self.start_date is not None:
            earliest, latest = schedule_start_range()
            if not earliest <= self.start_date <= latest:
                errors["start_date"] = _("Choose a first day from %(earliest)s to %(latest)s.") % {
                    "earliest": earliest.isoformat(),
                    "latest": latest.isoformat(),
                }
        # The check constraint says the same, but only as a database error (a 500).
        if self.start_date and self.end_date and self.end_date < self.start_date:
            errors["end_date"] = _("The last day is before the first day.")
        if errors:
            raise ValidationError(errors)


class Cycle(models.Model):
    """One period of one schedule.  ``(schedule, period_start)`` is unique: a repeated or
    concurrent tick can never open the same period twice."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")
        MISSED = "missed", _("Missed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="cycles")
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="cycles")
    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="cycles")
    period_start = models.DateField(help_text=_("Local date the cycle opens."))
    index = models.PositiveIntegerField(help_text=_("Person-independent cycle number."))
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.SCHEDULED)
    # Team ids targeted (subtrees resolved) when the cycle opened.
    team_ids = models.JSONField(default=list, blank=True)
    # Chunked opening: members are invited in user-id order; the cursor is the last user id done.
    open_cursor = models.BigIntegerField(default=0)
    opened_fully = models.BooleanField(default=False)
    invited_count = models.PositiveIntegerField(default=0)
    reminders_sent = models.JSONField(default=list, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opens_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "period_start"], name="cycle_one_per_period"
            ),
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="cycle_closes_after_open"
            ),
        ]
        indexes = [models.Index(fields=["state", "closes_at"])]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.period_start} ({self.state})"


class Invitation(models.Model):
    """One person asked to answer one cycle.  Holds who was asked and whether they answered;
    never what they answered."""

    # In the order invitations are minted (``wellbeing.ids``): an opening adds to the right
    # edge of its index instead of to most of its pages.
    public_id = models.UUIDField(default=ordered_uuid, unique=True, editable=False)
    # No index of its own: the (cycle, user) index starts with it, and every index is one more
    # write per invitation opened.
    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="invitations", db_index=False
    )
    # No foreign-key constraints in the database on the person and the team (nor on a token's
    # invitation): PostgreSQL checks each inserted row's keys by locking the row it points to,
    # and that lock is written to the log, so an opening of 100,000 people locked and logged
    # 100,000 people, about as many teams and its own 100,000 new invitations again (a quarter
    # of the database's time for the opening, measured).  Django's cascade still deletes
    # invitations and tokens with their person, team or invitation.  A person erased while a
    # chunk invites them cannot be left with an invitation: the chunk writes each invitation
    # together with its e-mail to that person in the outbox, whose key on the person stays
    # checked (at commit), so either the chunk commits first and the erasure's cascade sees
    # its rows, or it fails as a whole and the next attempt no longer finds the person.  Teams
    # have no such guard: they are deactivated, never deleted (the Django admin refuses too),
    # and only an organisation deleted as a whole during the seconds a chunk invites its
    # members could leave those invitations pointing nowhere.
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="checkin_invitations", db_constraint=False
    )
    # Nor an index on the team: nothing reads invitations by team, and an opening's members
    # sit in thousands of teams, so each of its inserts would land on a page of its own.
    # Teams are deactivated, not deleted (the Django admin refuses too); deleting a whole
    # organisation is rare enough for its cascade to scan this table.
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        related_name="checkin_invitations",
        db_index=False,
        db_constraint=False,
    )
    # The rotation shown to this person; cleared when they answer and at close, so the subset
    # of keys in a response cannot be matched back to an invitation afterwards.
    question_ids = models.JSONField(default=list, blank=True)
    rotation_offset = models.PositiveIntegerField(null=True, blank=True)
    # Not indexed, nor are the two fields above: an answer and the close's clearing of every
    # invitation then change no indexed column, and on PostgreSQL the table keeps half of each
    # page free (migration 0005), so both write the new row version beside the old one (a HOT
    # update) instead of adding an entry to each of the table's indexes.  "Unanswered in this
    # cycle" reads the cycle's rows through the (cycle, user) index.
    answered = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cycle", "user"], name="invitation_one_per_person"),
        ]

    def __str__(self) -> str:
        return f"invitation {self.public_id}"


class InvitationToken(models.Model):
    """A one-time link sent to an invited person: the invitation e-mail and each reminder carry
    their own token (the plain token is not kept, so a reminder cannot repeat the first link).
    Found by its selector, checked against a keyed hash (``tokens.py``); single use; dies with
    the cycle."""

    # Time-ordered: an opening's tokens land at the right edge of this index.  Empty only on
    # rows minted before selectors existed, which are found by their hash instead.
    selector = models.UUIDField(unique=True, null=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    # No constraint in the database (see ``Invitation.user``): a token is written with its
    # invitation or, for a reminder, with the reminder to the same person.
    invitation = models.ForeignKey(
        Invitation, on_delete=models.CASCADE, related_name="tokens", db_constraint=False
    )
    used = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # Only the rows without a selector: a random hash would land on any page of the
            # index, and at every opening most of its pages would be written again.
            models.UniqueConstraint(
                fields=["token_hash"],
                condition=Q(selector__isnull=True),
                name="invitationtoken_one_per_hash_without_selector",
            ),
        ]

    def __str__(self) -> str:
        return f"token for {self.invitation_id}"


# --- Answers (anonymous) ----------------------------------------------------------------------


class PendingAnswer(models.Model):
    """Answers waiting to be released in a shuffled batch.  No person, no time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Read by (cycle, team): the submit counts a team's waiting answers, the release takes them.
    cycle = models.ForeignKey(
        Cycle, on_delete=models.CASCADE, related_name="pending_answers", db_index=False
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    answers = models.JSONField(default=dict)
    comment = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["cycle", "team"])]

    def __str__(self) -> str:
        return "pending answer"


class Response(models.Model):
    """A released, anonymous response.  Only cycle, team, answers, comment and the indices
    derived from the answers — see module doc.

    ``answers`` maps question id (as a string) to the chosen value; skipped items are absent.
    ``scores``: the answers' index per dimension, packed as the close reads them, computed by
    PostgreSQL when the response is released (``services.response_scores_store``); NULL
    until then, elsewhere, or when the answers need the close's own handling."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="responses")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    answers = models.JSONField(default=dict)
    comment = models.TextField(blank=True)
    scores = models.BinaryField(null=True, editable=False)

    class Meta:
        indexes = [
            # the released responses still to score: a handful at a time, found without
            # reading the cycle's others
            models.Index(
                fields=["cycle"], condition=Q(scores__isnull=True), name="response_unscored"
            ),
        ]

    def __str__(self) -> str:
        return "response"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The stored indices follow from the answers: a response saved again (answers edited
        # by hand; the product never does) is scored afresh at its cycle's close.
        self.scores = None
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "scores"}
        super().save(*args, **kwargs)


# --- Support --------------------------------------------------------------------------------


class SupportResource(models.Model):
    """Where to get help; shown after a check-in (e.g. an employee assistance programme)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="support_resources"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    url = models.URLField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["organisation", "order", "title"]

    def __str__(self) -> str:
        return self.title
