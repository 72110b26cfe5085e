"""The check-in API (DRF): configuration for organisation admins, cycles and participation for
admins and the leads of targeted teams, and an anonymous token-based submit for other clients.

Thin: validate input with a serializer, call a service or selector, serialise the result.  Every
queryset is scoped to the caller's organisation; participation numbers come from
``cycle_participation``, which withholds counts below k.  Nothing here logs a token or answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, cast

import django_filters
from django import forms
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wellbeing import policy
from wellbeing.api import IsOrganisationAdmin
from wellbeing.audit import audit_changes, audit_record
from wellbeing.errors import ServiceError
from wellbeing.models import Organisation, Team, User

from . import ratelimit, services
from .models import Cycle, Question, Schedule, SupportResource, Survey
from .selectors import questions_available, schedule_snapshot, support_resources_for
from .serializers import (
    CheckinReceivedSerializer,
    CheckinSubmitSerializer,
    CycleSerializer,
    ErrorSerializer,
    QuestionCreateSerializer,
    QuestionSerializer,
    QuestionWriteSerializer,
    ScheduleSerializer,
    ScheduleWriteSerializer,
    SupportResourceSerializer,
    SurveySerializer,
    SurveyWriteSerializer,
)

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input, per field."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed."),
    404: OpenApiResponse(ErrorSerializer, description="Not found."),
}


def _organisation(request: Request) -> Organisation:
    user = request.user
    assert isinstance(user, User) and user.organisation is not None
    return user.organisation


def _audit(request: Request, action: str, target: Any, **changes: Any) -> None:
    """Configuration changed through the API goes into the audit log as on the manage pages."""
    audit_record(
        organisation=_organisation(request), actor=request.user, action=action, target=target,
        **changes,
    )  # fmt: skip


def _survey_snapshot(survey: Survey) -> dict[str, Any]:
    return {
        "name": survey.name,
        "questions": list(survey.items.order_by("position").values_list("question_id", flat=True)),
        "version": survey.version,
    }


class IsAdminOrLead(permissions.BasePermission):
    message = "Only organisation admins and team leads may do this."

    def has_permission(self, request, view) -> bool:  # noqa: ANN001
        return policy.is_org_admin(request.user) or policy.is_team_lead(request.user)


# --- questions --------------------------------------------------------------------------------


class QuestionFilter(django_filters.FilterSet):
    is_library = django_filters.BooleanFilter(field_name="organisation", lookup_expr="isnull")

    class Meta:
        model = Question
        fields = ["dimension", "kind", "audience", "is_current"]


@extend_schema_view(
    create=extend_schema(request=QuestionCreateSerializer, responses={201: QuestionSerializer}),
    update=extend_schema(
        request=QuestionWriteSerializer,
        responses={200: QuestionSerializer, **ERRORS},
        description="Returns the question as stored: a new version when the old one has answers.",
    ),
    partial_update=extend_schema(
        request=QuestionWriteSerializer,
        responses={200: QuestionSerializer, **ERRORS},
        description="Returns the question as stored: a new version when the old one has answers.",
    ),
)
class QuestionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The question library and the organisation's own questions.  Editing a question that
    has answers (or is in a published survey) creates a new version: trends stay comparable."""

    queryset = Question.objects.none()  # for the schema; requests use get_queryset
    serializer_class = QuestionSerializer
    permission_classes = [IsOrganisationAdmin]
    filterset_class = QuestionFilter
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Question]:
        organisation = _organisation(self.request)
        if self.action == "list":
            return questions_available(organisation=organisation).order_by("dimension", "key", "pk")
        return Question.objects.filter(
            Q(organisation=organisation) | Q(organisation__isnull=True)
        ).order_by("pk")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = QuestionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            question = services.question_create(
                organisation=_organisation(request), **serializer.validated_data
            )
            _audit(
                request,
                "question.create",
                question,
                after={"key": question.key, "text": question.text, "version": question.version},
            )
        return Response(QuestionSerializer(question).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        question = self.get_object()
        partial = kwargs.pop("partial", False)
        serializer = QuestionWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        changes = serializer.validated_data
        before = {name: getattr(question, name) for name in changes}
        with transaction.atomic():
            stored = services.question_update(question=question, **changes)
            old, new = audit_changes(before, {name: getattr(stored, name) for name in changes})
            _audit(
                request,
                "question.new_version" if stored.pk != question.pk else "question.update",
                stored,
                before={**old, "version": question.version},
                after={**new, "version": stored.version},
            )
        return Response(QuestionSerializer(stored).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)


# --- surveys ----------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(request=SurveyWriteSerializer, responses={201: SurveySerializer}),
    update=extend_schema(
        request=SurveyWriteSerializer, responses={200: SurveySerializer, **ERRORS}
    ),
    partial_update=extend_schema(
        request=SurveyWriteSerializer, responses={200: SurveySerializer, **ERRORS}
    ),
    publish=extend_schema(request=None, responses={200: SurveySerializer, **ERRORS}),
)
class SurveyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Surveys: the library's and the organisation's own (drafts until published).  Editing a
    published survey creates a new published version and moves its schedules to it."""

    queryset = Survey.objects.none()  # for the schema; requests use get_queryset
    serializer_class = SurveySerializer
    permission_classes = [IsOrganisationAdmin]
    filterset_fields = ["is_published"]
    lookup_field = "key"
    # A key is a slug: anything else matches no route (a NUL would be a database error on
    # PostgreSQL, which refuses it in text).
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Survey]:
        organisation = _organisation(self.request)
        return (
            Survey.objects.filter(
                Q(organisation=organisation) | Q(organisation__isnull=True, is_published=True),
                is_current=True,
            )
            .prefetch_related("items")
            .order_by("name", "key")
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SurveyWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            survey = services.survey_create(
                organisation=_organisation(request), **serializer.validated_data
            )
            _audit(
                request,
                "survey.create",
                survey,
                after={"name": survey.name, "questions": survey.items.count()},
            )
        return Response(SurveySerializer(survey).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        survey = self.get_object()
        partial = kwargs.pop("partial", False)
        serializer = SurveyWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        before = _survey_snapshot(survey)
        with transaction.atomic():
            stored = services.survey_update(survey=survey, **serializer.validated_data)
            _audit(
                request,
                "survey.new_version" if stored.pk != survey.pk else "survey.update",
                stored,
                before=before,
                after=_survey_snapshot(stored),
            )
        return Response(SurveySerializer(stored).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)

    @action(detail=True, methods=["post"])
    def publish(self, request: Request, key: str | None = None) -> Response:
        survey = self.get_object()
        if survey.organisation_id is None:
            raise ServiceError("read_only", "Library surveys are already published.", status=403)
        with transaction.atomic():
            published = services.survey_publish(survey=survey)
            _audit(
                request,
                "survey.publish",
                published,
                before={"published": survey.is_published},
                after={"published": True},
            )
        return Response(SurveySerializer(published).data)


# --- schedules --------------------------------------------------------------------------------


def _team_pks(organisation: Organisation, public_ids: list) -> list[int]:
    found = dict(
        Team.objects.filter(organisation=organisation, public_id__in=public_ids).values_list(
            "public_id", "pk"
        )
    )
    missing = [str(p) for p in public_ids if p not in found]
    if missing:
        raise ServiceError(
            "invalid",
            "Choose teams of this organisation.",
            fields={"team_ids": [f"unknown: {', '.join(missing)}"]},
        )
    return [found[p] for p in public_ids]


def _survey_by_key(organisation: Organisation, key: str) -> Survey:
    survey = (
        Survey.objects.filter(
            Q(organisation=organisation) | Q(organisation__isnull=True), key=key, is_current=True
        )
        .order_by("-version")
        .first()
    )
    if survey is None:
        raise ServiceError("invalid", "Unknown survey.", fields={"survey": ["unknown"]})
    return survey


@extend_schema_view(
    create=extend_schema(request=ScheduleWriteSerializer, responses={201: ScheduleSerializer}),
    update=extend_schema(
        request=ScheduleWriteSerializer, responses={200: ScheduleSerializer, **ERRORS}
    ),
    partial_update=extend_schema(
        request=ScheduleWriteSerializer, responses={200: ScheduleSerializer, **ERRORS}
    ),
)
class ScheduleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """When check-ins open, for whom.  ``next_open_times`` previews the next openings; pause a
    schedule with ``{"paused": true}`` rather than deleting it (its cycles stay history)."""

    queryset = Schedule.objects.none()  # for the schema; requests use get_queryset
    serializer_class = ScheduleSerializer
    permission_classes = [IsOrganisationAdmin]
    filterset_fields = ["paused", "cadence"]
    lookup_field = "public_id"
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Schedule]:
        return (
            Schedule.objects.filter(organisation=_organisation(self.request))
            .select_related("survey", "organisation")
            .prefetch_related("teams")
            .order_by("name", "pk")
        )

    def _arguments(self, organisation: Organisation, data: dict) -> dict:
        arguments = dict(data)
        if "survey" in arguments:
            arguments["survey"] = _survey_by_key(organisation, arguments["survey"])
        if "team_ids" in arguments:
            arguments["team_ids"] = _team_pks(organisation, arguments["team_ids"])
        return arguments

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        organisation = _organisation(request)
        serializer = ScheduleWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        arguments = self._arguments(organisation, serializer.validated_data)
        with transaction.atomic():
            schedule = services.schedule_create(organisation=organisation, **arguments)
            schedule = self.get_queryset().get(pk=schedule.pk)
            _audit(request, "schedule.create", schedule, after=schedule_snapshot(schedule))
        return Response(ScheduleSerializer(schedule).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        schedule = self.get_object()
        partial = kwargs.pop("partial", False)
        serializer = ScheduleWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        arguments = self._arguments(_organisation(request), serializer.validated_data)
        before = schedule_snapshot(schedule)
        with transaction.atomic():
            services.schedule_update(schedule=schedule, **arguments)
            stored = self.get_queryset().get(pk=schedule.pk)
            old, new = audit_changes(before, schedule_snapshot(stored))
            _audit(request, "schedule.update", stored, before=old, after=new)
        return Response(ScheduleSerializer(stored).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, partial=True, **kwargs)


# --- support resources ------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(
        request=SupportResourceSerializer, responses={201: SupportResourceSerializer, **ERRORS}
    ),
)
class SupportResourceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Where people can get help; shown on the thank-you page after every check-in."""

    queryset = SupportResource.objects.none()  # for the schema; requests use get_queryset
    serializer_class = SupportResourceSerializer
    permission_classes = [IsOrganisationAdmin]
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self) -> QuerySet[SupportResource]:
        return support_resources_for(organisation=_organisation(self.request))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = SupportResourceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            resource = services.support_resource_create(
                organisation=_organisation(request), **serializer.validated_data
            )
            _audit(request, "support.create", resource, after=dict(serializer.validated_data))
        return Response(SupportResourceSerializer(resource).data, status=status.HTTP_201_CREATED)


# --- cycles -----------------------------------------------------------------------------------


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """ISO 8601 allows UTC offsets up to 24 hours, PostgreSQL only up to 15:59 (a bigger one is
    a database error): compare in UTC, and refuse an instant outside the calendar with a 400."""

    def clean(self, value: Any) -> datetime | None:
        cleaned = super().clean(value)
        if cleaned is None:
            return None
        try:
            return cleaned.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a date and time within years 1 to 9999.")


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class CycleFilter(django_filters.FilterSet):
    schedule = django_filters.UUIDFilter(field_name="schedule__public_id")
    opens_after = UtcIsoDateTimeFilter(field_name="opens_at", lookup_expr="gte")
    opens_before = UtcIsoDateTimeFilter(field_name="opens_at", lookup_expr="lt")

    class Meta:
        model = Cycle
        fields = ["state", "schedule", "opens_after", "opens_before"]


class CycleViewSet(viewsets.ReadOnlyModelViewSet):
    """Cycles and their participation: admins see the whole organisation, team leads the
    cycles that targeted a team they may see, with participation of their own teams once the
    cycle has closed.  Counts the anonymity guard would not publish are withheld (null)."""

    queryset = Cycle.objects.none()  # for the schema; requests use get_queryset
    serializer_class = CycleSerializer
    permission_classes = [IsAdminOrLead]
    filterset_class = CycleFilter
    lookup_field = "public_id"

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if not policy.is_org_admin(self.request.user):
            context["participation_teams"] = self._visible_team_ids
        return context

    @cached_property
    def _visible_team_ids(self) -> set[int]:
        return policy.visible_team_ids(self.request.user)

    def get_queryset(self) -> QuerySet[Cycle]:
        organisation = _organisation(self.request)
        cycles = Cycle.objects.filter(organisation=organisation)
        if not policy.is_org_admin(self.request.user):
            visible = self._visible_team_ids
            # team_ids is a JSON list (subtrees resolved at opening); filtered here so it
            # works the same on SQLite and PostgreSQL.  An organisation has few cycles.
            ids = [
                pk
                for pk, team_ids in cycles.values_list("pk", "team_ids")
                if visible.intersection(team_ids or [])
            ]
            cycles = cycles.filter(pk__in=ids)
        return cycles.select_related("schedule", "survey", "organisation").order_by(
            "-opens_at", "pk"
        )


# --- anonymous submit -------------------------------------------------------------------------


class StrictJSONParser(JSONParser):
    """JSON that refuses duplicate keys (``{"5": 1, "5": 2}`` would otherwise keep the last
    silently) and non-finite numbers."""

    def parse(self, stream, media_type=None, parser_context=None):  # noqa: ANN001, ANN201
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            return json.loads(
                text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _error(code: str, message: str, http_status: int) -> Response:
    return Response({"error": {"code": code, "message": message, "fields": {}}}, status=http_status)


class CheckinSubmitView(APIView):
    """Submit a check-in with a one-time link's token, for clients other than the web form.

    No sign-in and no CSRF (nothing is authenticated by cookie); failed token lookups are
    rate-limited per client address.  The link is *checked* here, not used up, so a request
    refused as invalid can be corrected and sent again; the answer itself is accepted once."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    parser_classes = [StrictJSONParser]

    @extend_schema(
        request=CheckinSubmitSerializer,
        responses={
            201: CheckinReceivedSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Invalid answers, per item."),
            404: OpenApiResponse(ErrorSerializer, description="Unknown link."),
            409: OpenApiResponse(ErrorSerializer, description="Already received / link used."),
            410: OpenApiResponse(ErrorSerializer, description="The check-in has closed."),
            413: OpenApiResponse(ErrorSerializer, description="The body is too large."),
            429: OpenApiResponse(ErrorSerializer, description="Too many failed link guesses."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.PULSE_CHECKIN_MAX_BODY_BYTES:
            return _error(
                "too_large",
                f"The request body is larger than {settings.PULSE_CHECKIN_MAX_BODY_BYTES} bytes.",
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        if ratelimit.token_guesses_exhausted(request):
            response = _error(
                "rate_limited",
                "Too many attempts with unknown links. Please wait a minute.",
                status.HTTP_429_TOO_MANY_REQUESTS,
            )
            response["Retry-After"] = "60"
            return response
        serializer = CheckinSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            invitation = services.invitation_from_token(token=data["token"], consume=False)
        except ServiceError as exc:
            if exc.code == "unknown":
                ratelimit.token_guess_failed(request)
            raise
        services.checkin_submit(
            invitation=invitation,
            answers=cast(dict[int, int | None], data["answers"]),
            comment=data.get("comment"),
        )
        response = Response({"status": "received"}, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response
