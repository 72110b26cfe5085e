"""The Django admin, for operators (superusers).

Writes to the organisation go through the same services as the in-product pages
(``wellbeing.services``, ``wellbeing.person_deletion``): the same rules — the team tree, team
names, memberships and leads inside one organisation, deactivation, the last admin — and the
same entry in the organisation's audit log, naming the operator as the actor.  When a service
refuses, the form comes back with its message next to the field (or inline row) concerned, and
nothing of that save is kept: the admin's change view runs in one transaction, which the
refusal rolls back.  What the product never does is not offered here either: teams are
deactivated and memberships ended, never deleted; deleting a person is their erasure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .errors import ServiceError
from .forms import service_errors_to_form
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
from .person_deletion import person_erase

TEAM_NOT_DELETED = _(
    "Teams are deactivated, not deleted: their check-in history and results stay. Untick "
    "“Active” instead."
)
MEMBERSHIP_NOT_DELETED = _(
    "Memberships are ended, not deleted: the figures over time rest on who was in a team "
    "when. Set an end date instead."
)
MEMBERSHIP_FIXED = _(
    "A membership's person and team do not change: to move someone, end this membership and "
    "add one in the new team."
)
LEAD_FIXED = _("A lead's person does not change: remove this lead and add another.")


def _operator(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _adopt(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved ``obj`` the row a service created, so the rest of the admin's
    save (inlines, history, the redirect) goes on with it."""
    obj.pk = saved.pk
    obj._state.adding = False
    obj.refresh_from_db()


# --- Saving through services, refusals as form errors ---------------------------------------

_REFUSAL = "_pulse_admin_refusal"


class AdminSaveRefused(Exception):
    """A service refused part of an admin save.  ``prefix`` names the form it concerns: an
    inline row's prefix ("leads-0"), or None for the object's own form."""

    def __init__(self, error: ServiceError, prefix: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.prefix = prefix


def _refusing(form_class: Any, request: HttpRequest) -> Any:
    """``form_class``, or — when this request's save was refused — a subclass that shows the
    refusal on the form it concerns, so the admin renders the form again instead of saving."""
    found: AdminSaveRefused | None = getattr(request, _REFUSAL, None)
    if found is None:
        return form_class
    refusal = found

    class RefusedForm(form_class):  # type: ignore[valid-type,misc]
        def clean(self) -> Any:
            cleaned = super().clean()
            if self.prefix == refusal.prefix:
                service_errors_to_form(self, refusal.error)
            return cleaned

    RefusedForm.__name__ = form_class.__name__
    return RefusedForm


class ServiceModelAdmin(admin.ModelAdmin):
    """Saves through services (``save_model``/``save_formset`` call them).  A ``ServiceError``
    from a save undoes it and shows the form again with the error; ``not_deleted`` (a reason)
    turns deletion off and says why."""

    not_deleted: Any = None
    bulk_delete = True

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if self.not_deleted is not None:
            extra_context = {**(extra_context or {}), "show_delete": False}
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except AdminSaveRefused as refused:
            refusal = refused
        except ServiceError as error:
            refusal = AdminSaveRefused(error)
        # The refused save was rolled back with the view's transaction; validate the same
        # POST again, this time with the refusal as a form error.
        setattr(request, _REFUSAL, refusal)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        finally:
            delattr(request, _REFUSAL)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        return _refusing(super().get_form(request, obj, change=change, **kwargs), request)

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        if self.not_deleted is not None or not self.bulk_delete:
            actions.pop("delete_selected", None)
        return actions

    def _change_url(self, object_id: str) -> str:
        opts = self.opts
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[object_id],
            current_app=self.admin_site.name,
        )

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.not_deleted is not None:
            self.message_user(request, self.not_deleted, messages.ERROR)
            return HttpResponseRedirect(self._change_url(object_id))
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as error:  # rolled back with the view's transaction
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(self._change_url(object_id))


class ServiceInline(admin.TabularInline):
    """An inline whose rows the parent admin saves through services (``_formset_save``)."""

    extra = 0

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("form", _refusing(self.form, request))
        return super().get_formset(request, obj, **kwargs)


def _formset_save(
    formset: Any,
    *,
    create: Callable[[Any], models.Model],
    update: Callable[[Any], models.Model] | None = None,
    delete: Callable[[Any], object] | None = None,
) -> None:
    """Save a valid inline formset row by row through services instead of ``formset.save()``,
    and note what changed for the admin's history as ``formset.save()`` would."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    deleted = {id(form) for form in formset.deleted_forms}  # [] unless rows can be deleted
    for form in formset.forms:
        is_new = form.instance.pk is None
        try:
            if id(form) in deleted:
                if not is_new and delete is not None:
                    delete(form.instance)
                    formset.deleted_objects.append(form.instance)
            elif not form.has_changed():
                continue
            elif is_new:
                formset.new_objects.append(create(form))
            elif update is not None:
                formset.changed_objects.append((update(form), form.changed_data))
        except ServiceError as error:
            raise AdminSaveRefused(error, prefix=form.prefix)


# --- Organisations --------------------------------------------------------------------------

THRESHOLD_FIELDS = ("anonymity_threshold", "comment_threshold", "comments_enabled")
SETTINGS_FIELDS = ("locale", "timezone")


@admin.register(Organisation)
class OrganisationAdmin(ServiceModelAdmin):
    list_display = ["name", "slug", "timezone", "anonymity_threshold", "comments_enabled"]
    search_fields = ["name", "slug"]
    readonly_fields = ["public_id", "created_at"]

    def save_model(self, request: HttpRequest, obj: Organisation, form: Any, change: bool) -> None:
        if not change:
            # A new organisation: the form validates it as organisation_create does, and its
            # audit log starts empty.
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        plain = [f for f in form.changed_data if f not in (*THRESHOLD_FIELDS, *SETTINGS_FIELDS)]
        if plain:
            obj.save(update_fields=plain)
        if set(form.changed_data) & set(THRESHOLD_FIELDS):
            services.organisation_thresholds_update(
                organisation=obj, actor=_operator(request), **{f: data[f] for f in THRESHOLD_FIELDS}
            )
        if set(form.changed_data) & set(SETTINGS_FIELDS):
            services.organisation_settings_update(
                organisation=obj, actor=_operator(request), **{f: data[f] for f in SETTINGS_FIELDS}
            )
        obj.refresh_from_db()


# --- People ---------------------------------------------------------------------------------


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "team", "started_on", "ended_on"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is not None:
            for name in ("user", "team"):
                if name in self.fields and name in self.changed_data:
                    self.add_error(name, MEMBERSHIP_FIXED)
        return cleaned


class MembershipInline(ServiceInline):
    model = Membership
    form = MembershipForm
    fields = ["team", "started_on", "ended_on"]
    autocomplete_fields = ["team"]
    can_delete = False


def _membership_create(form: Any, *, user: User, actor: User) -> Membership:
    data = form.cleaned_data
    return services.membership_start(
        user=user,
        team=data["team"],
        started_on=data["started_on"],
        ended_on=data.get("ended_on"),
        actor=actor,
    )


def _membership_update(form: Any, *, actor: User) -> Membership:
    data = form.cleaned_data
    return services.membership_update(
        membership=form.instance,
        actor=actor,
        started_on=data["started_on"],
        ended_on=data.get("ended_on"),
    )


def _person_active_set(person: User, *, active: bool, actor: User) -> None:
    """Deactivate as the people page does (open memberships end today), or reactivate.
    Accounts outside any organisation (operators) have no memberships or audit log."""
    person = User.objects.select_related("organisation").get(pk=person.pk)
    organisation = person.organisation
    if organisation is None:
        User.objects.filter(pk=person.pk).update(is_active=active)
    elif active:
        services.person_reactivate(person=person, actor=actor)
    else:
        today = datetime.now(organisation.tz).date()
        services.person_deactivate(person=person, actor=actor, ended_on=today)


class PersonChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        help_texts = {
            "organisation": _(
                "Someone who has been in a team or led one stays in that organisation."
            ),
            "is_org_admin": _(
                "Runs the organisation on its Manage pages. An organisation always keeps at "
                "least one active admin."
            ),
            "is_active": _(
                "Unticking deactivates the person as Manage › People does: their open "
                "memberships end today. Deleting the person erases them (right to erasure)."
            ),
        }


@admin.register(User)
class UserAdmin(ServiceModelAdmin, BaseUserAdmin):
    form = PersonChangeForm
    ordering = ["email"]
    list_display = ["email", "full_name", "organisation", "is_org_admin", "is_active"]
    list_filter = ["organisation", "is_org_admin", "is_active", "is_staff"]
    search_fields = ["email", "full_name"]
    readonly_fields = ["public_id", "last_login", "date_joined"]
    inlines = [MembershipInline]
    actions = ["deactivate_selected"]
    # Erasure goes one person at a time, from the person's page, which lists what goes.
    bulk_delete = False
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

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        actor = _operator(request)
        data = form.cleaned_data
        if not change:
            organisation = data.get("organisation")
            if organisation is None:  # an operator's account: no organisation, no audit log
                super().save_model(request, obj, form, change)
                return
            person = services.person_create(
                organisation=organisation, email=data["email"], actor=actor
            )
            # The password (or an unusable one) as the add form set it.
            User.objects.filter(pk=person.pk).update(password=obj.password)
            _adopt(obj, person)
            return
        changed = set(form.changed_data)
        plain = [f for f in ("is_staff", "is_superuser") if f in changed]
        if plain:
            obj.save(update_fields=plain)
        if "organisation" in changed:
            services.person_organisation_set(
                person=obj, actor=actor, organisation=data["organisation"]
            )
        updates = {f: data[f] for f in services.PERSON_UPDATE_FIELDS if f in changed}
        if updates:
            services.person_update(person=obj, actor=actor, **updates)
        if "language" in changed:
            services.person_language_set(
                user=User.objects.get(pk=obj.pk), language=data["language"]
            )
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # After the membership rows: a deactivation ends the memberships as they are now.
        if change and "is_active" in form.changed_data:
            _person_active_set(
                form.instance, active=form.cleaned_data["is_active"], actor=_operator(request)
            )
            form.instance.refresh_from_db()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        actor = _operator(request)
        _formset_save(
            formset,
            create=lambda row: _membership_create(row, user=form.instance, actor=actor),
            update=lambda row: _membership_update(row, actor=actor),
        )

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        person_erase(user=obj, actor=_operator(request))

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        # The audit log's "person.erase" entry records the erasure; an admin history entry
        # would keep the erased person's name.
        return []

    @admin.action(
        description=_("Deactivate selected people (their open memberships end today)"),
        permissions=["change"],
    )
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = _operator(request)
        people = list(queryset.filter(is_active=True))
        try:
            with transaction.atomic():
                for person in people:
                    current = person
                    _person_active_set(person, active=False, actor=actor)
        except ServiceError as error:
            self.message_user(
                request,
                _("%(person)s: %(reason)s Nobody was deactivated.")
                % {"person": current, "reason": error.message},
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            ngettext("%(count)d person deactivated.", "%(count)d people deactivated.", len(people))
            % {"count": len(people)},
            messages.SUCCESS,
        )


# --- Teams and leads ------------------------------------------------------------------------


class TeamLeadForm(forms.ModelForm):
    class Meta:
        model = TeamLead
        fields = ["user", "team"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is not None and "user" in self.changed_data:
            self.add_error("user", LEAD_FIXED)
        return cleaned


class TeamLeadInline(ServiceInline):
    model = TeamLead
    form = TeamLeadForm
    fields = ["user"]
    autocomplete_fields = ["user"]


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["organisation", "name", "parent", "customer_facing", "is_active"]
        help_texts = {"is_active": TEAM_NOT_DELETED}


@admin.register(Team)
class TeamAdmin(ServiceModelAdmin):
    form = TeamAdminForm
    list_display = ["name", "organisation", "parent", "customer_facing", "is_active"]
    list_filter = ["organisation", "customer_facing", "is_active"]
    search_fields = ["name"]
    autocomplete_fields = ["parent"]
    inlines = [TeamLeadInline]
    not_deleted = TEAM_NOT_DELETED

    def get_fields(self, request: HttpRequest, obj: Team | None = None) -> Any:
        if obj is None:  # new teams start active
            return ["organisation", "name", "parent", "customer_facing"]
        return ["organisation", "name", "parent", "customer_facing", "is_active", "public_id"]

    def get_readonly_fields(self, request: HttpRequest, obj: Team | None = None) -> Any:
        # A team's members, leads, sub-teams and results belong to its organisation.
        return ["organisation", "public_id"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        actor = _operator(request)
        data = form.cleaned_data
        if not change:
            created = services.team_create(
                organisation=data["organisation"],
                name=data["name"],
                parent=data.get("parent"),
                customer_facing=data.get("customer_facing", False),
                actor=actor,
            )
            _adopt(obj, created)
            return
        changed = set(form.changed_data)
        updates = {f: data[f] for f in ("name", "customer_facing", "is_active") if f in changed}
        if updates:
            services.team_update(team=obj, actor=actor, **updates)
        if "parent" in changed:
            services.team_move(team=obj, new_parent=data.get("parent"), actor=actor)
        obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        actor, team = _operator(request), form.instance
        _formset_save(
            formset,
            create=lambda row: services.team_lead_assign(
                user=row.cleaned_data["user"], team=team, actor=actor
            ),
            delete=lambda lead: services.team_lead_remove(user=lead.user, team=team, actor=actor),
        )


@admin.register(Membership)
class MembershipAdmin(ServiceModelAdmin):
    form = MembershipForm
    list_display = ["user", "team", "started_on", "ended_on"]
    list_filter = ["team__organisation"]
    search_fields = ["user__email", "team__name"]
    autocomplete_fields = ["user", "team"]
    not_deleted = MEMBERSHIP_NOT_DELETED

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        return ["user", "team"] if obj is not None else []

    def get_fieldsets(self, request: HttpRequest, obj: Membership | None = None) -> Any:
        fields = ["user", "team", "started_on", "ended_on"]
        if obj is None:
            return [(None, {"fields": fields})]
        return [(None, {"fields": fields, "description": MEMBERSHIP_FIXED})]

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        actor = _operator(request)
        if change:
            _membership_update(form, actor=actor)
            obj.refresh_from_db()
        else:
            _adopt(obj, _membership_create(form, user=form.cleaned_data["user"], actor=actor))


@admin.register(TeamLead)
class TeamLeadAdmin(ServiceModelAdmin):
    """Leads are added and removed, never changed (the change page is read-only)."""

    form = TeamLeadForm
    list_display = ["user", "team"]
    search_fields = ["user__email", "team__name"]
    autocomplete_fields = ["user", "team"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: TeamLead, form: Any, change: bool) -> None:
        data = form.cleaned_data
        lead = services.team_lead_assign(
            user=data["user"], team=data["team"], actor=_operator(request)
        )
        _adopt(obj, lead)

    def delete_model(self, request: HttpRequest, obj: TeamLead) -> None:
        services.team_lead_remove(user=obj.user, team=obj.team, actor=_operator(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TeamLead]) -> None:
        actor = _operator(request)
        with transaction.atomic():
            for lead in queryset.select_related("user", "team__organisation"):
                services.team_lead_remove(user=lead.user, team=lead.team, actor=actor)


# --- Analytics: stored results are read-only (written only at cycle close) --------------------


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(FlagSettings)
class FlagSettingsAdmin(ServiceModelAdmin):
    list_display = ["organisation", *services.FLAG_SETTING_FIELDS]

    def get_readonly_fields(self, request: HttpRequest, obj: FlagSettings | None = None) -> Any:
        return ["organisation"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: FlagSettings, form: Any, change: bool) -> None:
        data = form.cleaned_data
        saved = services.flag_settings_update(
            organisation=obj.organisation if change else data["organisation"],
            actor=_operator(request),
            **{f: data[f] for f in services.FLAG_SETTING_FIELDS},
        )
        _adopt(obj, saved)


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
