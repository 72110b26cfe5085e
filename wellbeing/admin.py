from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .errors import ServiceError
from .models import (
    AuditEntry,
    CycleResult,
    Flag,
    FlagEvent,
    FlagSettings,
    Membership,
    Organisation,
    Team,
    TeamAggregate,
    TeamLead,
    TeamParticipation,
    User,
)
from .services import team_name_check


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "anonymity_threshold", "comments_enabled"]
    search_fields = ["name", "slug"]
    readonly_fields = ["public_id", "created_at"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["team"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "organisation", "is_org_admin", "is_active"]
    list_filter = ["organisation", "is_org_admin", "is_active", "is_staff"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["public_id", "last_login", "date_joined"]
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("email", "password", "public_id")}),
        ("Person", {"fields": ("full_name", "organisation", "timezone", "language")}),
        ("Roles", {"fields": ("is_org_admin", "is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {"classes": ("wide",), "fields": ("email", "organisation", "password1", "password2")},
        ),
    )


class TeamLeadInline(admin.TabularInline):
    model = TeamLead
    extra = 0
    autocomplete_fields = ["user"]


class TeamAdminForm(forms.ModelForm):
    """The admin names teams by the same rules as the services and the people import: no "/"
    in a new name, no sibling of the same name in any case."""

    class Meta:
        model = Team
        fields = ["organisation", "name", "parent", "customer_facing", "is_active"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        name, organisation = cleaned.get("name"), cleaned.get("organisation")
        if name is None or organisation is None:
            return cleaned
        candidate = Team(
            pk=self.instance.pk, organisation=organisation, parent=cleaned.get("parent"), name=name
        )
        try:
            team_name_check(
                candidate, new_name=self.instance.pk is None or "name" in self.changed_data
            )
        except ServiceError as exc:
            raise forms.ValidationError({"name": exc.fields.get("name", [exc.message])})
        return cleaned


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ["name", "organisation", "parent", "customer_facing", "is_active"]
    list_filter = ["organisation", "customer_facing", "is_active"]
    search_fields = ["name"]
    autocomplete_fields = ["parent"]
    readonly_fields = ["public_id"]
    inlines = [TeamLeadInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "started_on", "ended_on"]
    list_filter = ["team__organisation"]
    search_fields = ["user__email", "team__name"]
    autocomplete_fields = ["user", "team"]


@admin.register(TeamLead)
class TeamLeadAdmin(admin.ModelAdmin):
    list_display = ["user", "team"]
    search_fields = ["user__email", "team__name"]
    autocomplete_fields = ["user", "team"]


# --- Analytics: stored results are read-only (written only at cycle close) --------------------


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(FlagSettings)
class FlagSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "organisation",
        "high_stress_level",
        "high_stress_consecutive",
        "client_burnout_level",
        "resolve_after_cycles",
        "reopen_within_days",
    ]


class TeamAggregateInline(admin.TabularInline):
    model = TeamAggregate
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "team",
        "scope",
        "dimension",
        "published",
        "n",
        "index",
        "ci_low",
        "ci_high",
    )

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(CycleResult)
class CycleResultAdmin(_ReadOnlyAdmin):
    list_display = ["organisation", "period_start", "closed_at", "k", "computed_at"]
    list_filter = ["organisation"]
    inlines = [TeamAggregateInline]


@admin.register(TeamParticipation)
class TeamParticipationAdmin(_ReadOnlyAdmin):
    list_display = ["result", "team", "scope", "invited", "published", "responded", "rate"]
    list_filter = ["result__organisation", "published"]


class FlagEventInline(admin.TabularInline):
    model = FlagEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "kind", "severity", "cycle_period", "actor", "note")

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(Flag)
class FlagAdmin(_ReadOnlyAdmin):
    """Acknowledge and dismiss through the dashboard/API so the permission rules apply."""

    list_display = ["team", "kind", "severity", "state", "opened_at", "last_cycle_period"]
    list_filter = ["organisation", "kind", "severity", "state"]
    search_fields = ["team__name"]
    inlines = [FlagEventInline]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log is append-only, even for superusers."""

    list_display = ["at", "organisation", "actor", "action", "target_type", "target_repr"]
    list_filter = ["organisation", "action", "target_type"]
    search_fields = ["action", "target_repr", "actor__email"]
    date_hierarchy = "at"
    list_select_related = ["organisation", "actor"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False
