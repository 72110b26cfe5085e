"""DRF serializers for the check-in API: output shapes and input validation only.

Writes go through ``checkins.services``; these classes never save.  Questions and support
resources are addressed by id (question ids are already part of every submitted answer set),
surveys by their random ``key``, schedules and cycles by ``public_id``.
"""

from __future__ import annotations

from datetime import datetime, time

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from wellbeing.api_errors import ErrorBodySerializer, ErrorSerializer  # noqa: F401  (re-exported)

from .models import (
    COMMENT_MAX_LENGTH,
    DIMENSION_CHOICES,
    SCALE_LIMIT,
    Cycle,
    Question,
    Schedule,
    Survey,
)
from .models import SupportResource as SupportResourceModel
from .scheduling import schedule_next_open_times
from .selectors import cycle_participation

NEXT_OPEN_TIMES_PREVIEW = 5
# The largest id a BigAutoField holds: a bigger one in a lookup is a database error, not a 400.
MAX_ID = 2**63 - 1


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
        "example": "09:00",
    }
)
class LocalTimeField(serializers.TimeField):
    """A wall-clock time in the schedule's timezone, "09:00" or "09:00:00".  It has no UTC offset,
    so it is not an RFC 3339 ``time`` (the format drf-spectacular would document)."""


# --- questions --------------------------------------------------------------------------------


class QuestionSerializer(serializers.ModelSerializer):
    replaces: serializers.PrimaryKeyRelatedField = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The question this version replaces, if any."
    )
    # Blank for questions without a dimension (free text); ModelSerializer drops allow_blank
    # from read-only fields, which would leave "" out of the documented choices.
    dimension = serializers.ChoiceField(choices=DIMENSION_CHOICES, allow_blank=True, read_only=True)
    is_library = serializers.SerializerMethodField()

    class Meta:
        model = Question
        fields = [
            "id",
            "key",
            "version",
            "replaces",
            "is_current",
            "is_library",
            "kind",
            "audience",
            "text",
            "dimension",
            "scale_min",
            "scale_max",
            "scale_labels",
            "reverse",
            "higher_is_worse",
            "required",
            "translations",
            "source",
            "licence",
        ]
        read_only_fields = fields

    def get_is_library(self, obj: Question) -> bool:
        return obj.organisation_id is None


class QuestionWriteSerializer(serializers.Serializer):
    """The editable fields of a question (a new version is made when it has answers)."""

    text = serializers.CharField(max_length=1000)
    kind = serializers.ChoiceField(choices=Question.Kind.choices, default=Question.Kind.SCALE)
    dimension = serializers.ChoiceField(
        choices=DIMENSION_CHOICES, required=False, allow_blank=True, default=""
    )
    scale_min = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=-SCALE_LIMIT, max_value=SCALE_LIMIT
    )
    scale_max = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=-SCALE_LIMIT, max_value=SCALE_LIMIT
    )
    scale_labels = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list, max_length=21
    )
    reverse = serializers.BooleanField(default=False)
    higher_is_worse = serializers.BooleanField(default=True)
    required = serializers.BooleanField(default=False)  # type: ignore[assignment]
    audience = serializers.ChoiceField(
        choices=Question.Audience.choices, default=Question.Audience.ALL
    )
    translations = serializers.DictField(
        child=serializers.DictField(), required=False, default=dict
    )
    source = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, default="", max_length=2000
    )
    licence = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class QuestionCreateSerializer(QuestionWriteSerializer):
    key = serializers.SlugField(max_length=80)


# --- surveys ----------------------------------------------------------------------------------


class SurveySerializer(serializers.ModelSerializer):
    is_library = serializers.SerializerMethodField()
    question_ids = serializers.SerializerMethodField()

    class Meta:
        model = Survey
        fields = [
            "key",
            "version",
            "name",
            "description",
            "items_per_person",
            "is_published",
            "is_current",
            "is_library",
            "question_ids",
        ]
        read_only_fields = fields

    def get_is_library(self, obj: Survey) -> bool:
        return obj.organisation_id is None

    def get_question_ids(self, obj: Survey) -> list[int]:
        return [item.question_id for item in obj.items.all()]


class SurveyWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    question_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        max_length=200,
        allow_empty=False,
    )
    items_per_person = serializers.IntegerField(min_value=1, max_value=50, default=8)


# --- schedules --------------------------------------------------------------------------------


class ScheduleSerializer(serializers.ModelSerializer):
    survey: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    survey_version = serializers.IntegerField(source="survey.version", read_only=True)
    team_ids = serializers.SerializerMethodField()
    next_open_times = serializers.SerializerMethodField()
    local_time = LocalTimeField(read_only=True)

    class Meta:
        model = Schedule
        fields = [
            "public_id",
            "name",
            "survey",
            "survey_version",
            "team_ids",
            "cadence",
            "weekday",
            "local_time",
            "timezone",
            "open_hours",
            "reminder_offsets",
            "start_date",
            "end_date",
            "paused",
            "next_open_times",
        ]
        read_only_fields = fields

    def get_team_ids(self, obj: Schedule) -> list[str]:
        return [str(team.public_id) for team in obj.teams.all()]

    def get_next_open_times(self, obj: Schedule) -> list[datetime]:
        if obj.paused:
            return []
        return schedule_next_open_times(obj, NEXT_OPEN_TIMES_PREVIEW)


class ScheduleWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    survey = serializers.SlugField(max_length=80, help_text="The survey's key.")
    team_ids = serializers.ListField(
        child=serializers.UUIDField(), allow_empty=False, max_length=500, help_text="Team ids."
    )
    start_date = serializers.DateField()
    cadence = serializers.ChoiceField(
        choices=Schedule.Cadence.choices, default=Schedule.Cadence.WEEKLY
    )
    weekday = serializers.IntegerField(min_value=0, max_value=6, default=0)
    local_time = LocalTimeField(default=time(9, 0))
    timezone = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    open_hours = serializers.IntegerField(min_value=1, max_value=24 * 27, default=96)
    reminder_offsets = serializers.ListField(
        child=serializers.IntegerField(min_value=1), default=[24, 72], max_length=10
    )
    end_date = serializers.DateField(required=False, allow_null=True, default=None)
    paused = serializers.BooleanField(required=False, default=False)


# --- support resources ------------------------------------------------------------------------


class SupportResourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = SupportResourceModel
        fields = ["id", "title", "description", "url", "phone", "order"]
        read_only_fields = ["id"]


# --- cycles -----------------------------------------------------------------------------------


class ParticipationSerializer(serializers.Serializer):
    invited = serializers.IntegerField()
    responded = serializers.IntegerField(
        allow_null=True,
        help_text=(
            "Withheld (null) when the anonymity guard would not publish it: fewer than k"
            " people, a total beside which a hidden team's count is the difference, or, for a"
            " team lead, while the cycle is open.  A lead's figures cover their own teams."
        ),
    )
    rate = serializers.FloatField(allow_null=True)


class CycleSerializer(serializers.ModelSerializer):
    schedule: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="public_id", read_only=True
    )
    survey: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="key", read_only=True
    )
    survey_version = serializers.IntegerField(source="survey.version", read_only=True)
    participation = serializers.SerializerMethodField()

    class Meta:
        model = Cycle
        fields = [
            "public_id",
            "schedule",
            "survey",
            "survey_version",
            "period_start",
            "opens_at",
            "closes_at",
            "state",
            "participation",
        ]
        read_only_fields = fields

    @extend_schema_field(ParticipationSerializer)
    def get_participation(self, obj: Cycle) -> dict:
        # the teams a lead may see (``CycleViewSet.get_serializer_context``); None for admins
        return cycle_participation(cycle=obj, team_ids=self.context.get("participation_teams"))


# --- anonymous submit -------------------------------------------------------------------------


class CheckinSubmitSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200, help_text="The token of the one-time link.")
    answers = serializers.DictField(
        allow_empty=True,
        help_text="Question id -> chosen value, or null to skip an optional item.",
    )
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        trim_whitespace=False,
        help_text=f"Optional free text (at most {COMMENT_MAX_LENGTH} characters), when enabled.",
    )


class CheckinReceivedSerializer(serializers.Serializer):
    status = serializers.CharField()
