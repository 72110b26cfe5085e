"""Django admin for check-ins.

No admin exists for ``Response``, ``PendingAnswer`` or ``InvitationToken``: answers are only ever
seen as counts, and token hashes are not shown anywhere.  Questions and surveys that have answers
or are published are read-only here; edits go through the services, which create new versions.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from . import selectors, services
from .models import Cycle, Invitation, Question, Schedule, SupportResource, Survey, SurveyItem
from .scheduling import schedule_next_open_times


def _all_fields(model: Any) -> list[str]:
    return [f.name for f in model._meta.concrete_fields]


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = [
        "key",
        "version",
        "organisation",
        "dimension",
        "kind",
        "is_current",
        "library_version",
    ]
    list_filter = [
        "is_current",
        "kind",
        "dimension",
        ("organisation", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["key", "text"]
    readonly_fields = [
        "version",
        "replaces",
        "library_version",
        "is_current",
        "created_at",
        "versions",
    ]
    ordering = ["key", "-version"]

    @admin.display(description="All versions")
    def versions(self, obj: Question) -> str:
        rows = Question.objects.filter(organisation_id=obj.organisation_id, key=obj.key).order_by(
            "version"
        )
        return ", ".join(f"v{q.version}{' (current)' if q.is_current else ''}" for q in rows)

    def _frozen(self, obj: Question | None) -> bool:
        if obj is None:
            return False
        return (
            obj.organisation_id is None
            or not obj.is_current
            or services.question_has_answers(question=obj)
            or obj.survey_items.filter(survey__is_published=True).exists()
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Question | None = None) -> Any:
        if self._frozen(obj):
            return [*_all_fields(Question), "versions"]
        return self.readonly_fields


class SurveyItemInline(admin.TabularInline):
    model = SurveyItem
    extra = 0
    ordering = ["position"]
    autocomplete_fields = ["question"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or not obj.is_published

    has_add_permission = has_change_permission  # type: ignore[assignment]
    has_delete_permission = has_change_permission  # type: ignore[assignment]


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "key",
        "version",
        "organisation",
        "is_published",
        "is_current",
        "items_per_person",
    ]
    list_filter = ["is_published", "is_current"]
    search_fields = ["name", "key"]
    inlines = [SurveyItemInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Survey | None = None) -> Any:
        if obj is not None and (obj.is_published or obj.organisation_id is None):
            return _all_fields(Survey)
        return ["version", "replaces", "is_current", "created_at"]


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "survey", "cadence", "weekday", "local_time", "paused"]
    list_filter = ["paused", "cadence", ("organisation", admin.RelatedOnlyFieldListFilter)]
    filter_horizontal = ["teams"]
    readonly_fields = ["public_id", "created_at", "next_openings"]

    @admin.display(description="Next openings (schedule timezone)")
    def next_openings(self, obj: Schedule) -> str:
        if obj.pk is None:
            return "-"
        return "; ".join(
            t.strftime("%a %Y-%m-%d %H:%M %Z") for t in schedule_next_open_times(obj, 5)
        )


@admin.register(Cycle)
class CycleAdmin(admin.ModelAdmin):
    """Read-only: cycles are made by the tick.  Participation is shown only from k answers."""

    list_display = [
        "schedule",
        "period_start",
        "state",
        "opens_at",
        "closes_at",
        "invited_count",
        "participation",
        "released",
    ]
    list_filter = ["state", ("organisation", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "opens_at"
    exclude = ["team_ids", "open_cursor"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cycle]:
        return (
            super()
            .get_queryset(request)
            .select_related("schedule", "organisation")
            .annotate(
                _answered=Count("invitations", filter=Q(invitations__answered=True)),
                _released=Count("responses", distinct=True),
            )
        )

    @admin.display(description="Answered")
    def participation(self, obj: Cycle) -> str:
        answered = getattr(obj, "_answered", None)
        if answered is None:
            answered = selectors.cycle_participation(cycle=obj)["responded"] or 0
        if answered < obj.organisation.anonymity_threshold:
            return f"fewer than {obj.organisation.anonymity_threshold}"
        return str(answered)

    @admin.display(description="Released responses")
    def released(self, obj: Cycle) -> str:
        released = getattr(obj, "_released", 0)
        if 0 < released < obj.organisation.anonymity_threshold:
            return f"fewer than {obj.organisation.anonymity_threshold}"
        return str(released)

    def get_readonly_fields(self, request: HttpRequest, obj: Cycle | None = None) -> Any:
        return [
            *(f for f in _all_fields(Cycle) if f not in self.exclude),
            "participation",
            "released",
        ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Who was invited and whether they answered — never what, and no token hashes."""

    list_display = ["public_id", "cycle", "team", "answered"]
    list_filter = ["answered"]
    fields = ["public_id", "cycle", "user", "team", "answered"]
    readonly_fields = ["public_id", "cycle", "user", "team", "answered"]
    list_select_related = ["cycle", "cycle__schedule", "team"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SupportResource)
class SupportResourceAdmin(admin.ModelAdmin):
    list_display = ["title", "organisation", "order", "url", "phone"]
    list_filter = [("organisation", admin.RelatedOnlyFieldListFilter)]
    ordering = ["organisation", "order"]
