"""In-product admin pages for check-in configuration: questions, surveys, schedules (with a
preview of the next opening times in local time), support resources, and the organisation's
notification channels.

Organisation admins only (``wellbeing.manage_views.org_admin_required``: others get 404).
Every write calls ``checkins.services`` and is audited in the same transaction.  Library
questions are read-only; an edited question or published survey becomes a new version.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from notifications.admin import ChannelSettingsForm
from notifications.models import ChannelSettings
from wellbeing.audit import audit_changes, audit_record
from wellbeing.errors import ServiceError
from wellbeing.forms import WEEKDAY_CHOICES, service_errors_to_form
from wellbeing.manage_views import org_admin_required
from wellbeing.models import Organisation, Team, User, validate_timezone

from . import selectors, services
from .models import DIMENSION_CHOICES, SCALE_LIMIT, Question, Schedule, Survey
from .scheduling import schedule_next_open_times
from .serializers import MAX_ID

PREVIEW_COUNT = 6


def _actor(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


# --- Forms ----------------------------------------------------------------------------------


class QuestionForm(forms.Form):
    key = forms.SlugField(label=gettext_lazy("Key"), max_length=80)
    text = forms.CharField(label=gettext_lazy("Question"), widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Question.Kind.choices)
    dimension = forms.ChoiceField(
        label=gettext_lazy("Dimension"), choices=[("", "—")] + DIMENSION_CHOICES, required=False
    )
    scale_min = forms.IntegerField(
        label=gettext_lazy("Scale minimum"),
        required=False,
        min_value=-SCALE_LIMIT,
        max_value=SCALE_LIMIT,
    )
    scale_max = forms.IntegerField(
        label=gettext_lazy("Scale maximum"),
        required=False,
        min_value=-SCALE_LIMIT,
        max_value=SCALE_LIMIT,
    )
    scale_labels = forms.CharField(
        label=gettext_lazy("Scale labels"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("One per line, lowest first; one per scale point, or none."),
    )
    reverse = forms.BooleanField(label=gettext_lazy("Reverse-keyed"), required=False)
    higher_is_worse = forms.BooleanField(
        label=gettext_lazy("A higher answer means worse"), required=False, initial=True
    )
    required = forms.BooleanField(label=gettext_lazy("Required"), required=False)
    audience = forms.ChoiceField(label=gettext_lazy("Asked of"), choices=Question.Audience.choices)
    source = forms.CharField(label=gettext_lazy("Source"), required=False)
    licence = forms.CharField(label=gettext_lazy("Licence"), required=False, max_length=300)

    def clean_scale_labels(self) -> list[str]:
        text = self.cleaned_data.get("scale_labels") or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


def _question_initial(question: Question) -> dict[str, Any]:
    initial = {name: getattr(question, name) for name in services.QUESTION_EDITABLE_FIELDS}
    initial["key"] = question.key
    initial["scale_labels"] = "\n".join(question.scale_labels)
    return initial


def _question_label(question: Question) -> str:
    return f"{question.text} ({question.dimension or question.kind}, v{question.version})"


class RowsChoiceField(forms.ModelMultipleChoiceField):
    """Checkboxes of rows by id.  An id no row can have (beyond 64 bits) is an invalid choice
    here: SQLite cannot even compare it with a column (OverflowError in the ``IN`` lookup)."""

    def clean(self, value: Any) -> Any:
        for pk in value if isinstance(value, list | tuple) else ():
            try:
                out_of_range = abs(int(pk)) > MAX_ID
            except (TypeError, ValueError):
                continue  # not a number: Django's own check names it
            if out_of_range:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": pk},
                )
        return super().clean(value)


class SurveyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    questions = RowsChoiceField(
        label=gettext_lazy("Questions"),
        queryset=Question.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    items_per_person = forms.IntegerField(
        label=gettext_lazy("Rating items per person per cycle"),
        min_value=1,
        max_value=50,
        initial=8,
    )

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["questions"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = selectors.questions_available(organisation=organisation)
        field.label_from_instance = _question_label  # type: ignore[method-assign,assignment]


class ScheduleForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    survey = forms.ModelChoiceField(label=gettext_lazy("Survey"), queryset=Survey.objects.none())
    teams = RowsChoiceField(
        label=gettext_lazy("Teams (sub-teams included)"),
        queryset=Team.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    cadence = forms.ChoiceField(label=gettext_lazy("Cadence"), choices=Schedule.Cadence.choices)
    weekday = forms.TypedChoiceField(label=gettext_lazy("Day"), choices=WEEKDAY_CHOICES, coerce=int)
    local_time = forms.TimeField(
        label=gettext_lazy("Local time"), widget=forms.TimeInput(attrs={"type": "time"})
    )
    timezone = forms.CharField(
        label=gettext_lazy("Timezone"),
        required=False,
        max_length=64,
        validators=[validate_timezone],
        help_text=gettext_lazy("e.g. Europe/Berlin; empty means the organisation's timezone."),
    )
    open_hours = forms.IntegerField(
        label=gettext_lazy("Open for (hours)"), min_value=1, max_value=24 * 27
    )
    reminder_offsets = forms.CharField(
        label=gettext_lazy("Reminders (hours after opening)"),
        required=False,
        help_text=gettext_lazy("Comma-separated, e.g. 24, 72."),
    )
    start_date = forms.DateField(
        label=gettext_lazy("First day"), widget=forms.DateInput(attrs={"type": "date"})
    )
    end_date = forms.DateField(
        label=gettext_lazy("Last day"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        survey = self.fields["survey"]
        teams = self.fields["teams"]
        assert isinstance(survey, forms.ModelChoiceField)
        assert isinstance(teams, forms.ModelMultipleChoiceField)
        survey.queryset = selectors.surveys_available(organisation=organisation)
        teams.queryset = Team.objects.filter(organisation=organisation, is_active=True)

    def clean_reminder_offsets(self) -> list[int]:
        text = self.cleaned_data.get("reminder_offsets") or ""
        try:
            values = [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        except ValueError:
            raise forms.ValidationError(_("Whole hours separated by commas."))
        if any(v <= 0 for v in values):
            raise forms.ValidationError(_("Hours must be positive."))
        return values

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The last day is before the first day."))
        return cleaned

    def service_values(self) -> dict[str, Any]:
        values = dict(self.cleaned_data)
        values["team_ids"] = [t.pk for t in values.pop("teams")]
        return values


class SupportResourceForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    url = forms.URLField(label=gettext_lazy("Link"), required=False, assume_scheme="https")
    phone = forms.CharField(label=gettext_lazy("Phone"), required=False, max_length=50)
    order = forms.IntegerField(label=gettext_lazy("Order"), min_value=0, initial=0)


class ChannelsForm(ChannelSettingsForm):
    """The notifications app's own channel form, minus the organisation picker."""

    class Meta(ChannelSettingsForm.Meta):
        fields = [f for f in ChannelSettingsForm.Meta.fields if f != "organisation"]
        # The labels Django derives from the field names, marked for translation.
        labels = {
            "slack_enabled": gettext_lazy("Slack enabled"),
            "teams_enabled": gettext_lazy("Teams enabled"),
            "default_channel": gettext_lazy("Default channel"),
        }


# --- Questions ------------------------------------------------------------------------------


def _own_question(organisation: Organisation, pk: int) -> Question:
    return get_object_or_404(Question, pk=pk, organisation=organisation)


def _question_frozen(question: Question) -> bool:
    return (
        services.question_has_answers(question=question)
        or question.survey_items.filter(survey__is_published=True).exists()
    )


@org_admin_required
@require_http_methods(["GET", "POST"])
def questions(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = QuestionForm(request.POST or None, initial={"scale_min": 1, "scale_max": 5})
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                question = services.question_create(organisation=organisation, **form.cleaned_data)
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="question.create",
                    target=question,
                    after={"key": question.key, "text": question.text, "version": 1},
                )
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, _("Question created."))
            return redirect("manage_checkins:questions")
    available = selectors.questions_available(organisation=organisation)
    return render(
        request,
        "manage/checkins/questions.html",
        {
            "organisation": organisation,
            "library": [q for q in available if q.organisation_id is None],
            "own": [q for q in available if q.organisation_id is not None],
            "form": form,
        },
    )


@org_admin_required
@require_http_methods(["GET", "POST"])
def question_edit(request: HttpRequest, organisation: Organisation, pk: int) -> HttpResponse:
    question = _own_question(organisation, pk)
    frozen = _question_frozen(question)
    form = QuestionForm(request.POST or None, initial=_question_initial(question))
    form.fields["key"].disabled = True
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.cleaned_data.items() if k != "key"}
        before = {k: getattr(question, k) for k in changes}
        try:
            with transaction.atomic():
                saved = services.question_update(question=question, **changes)
                old, new = audit_changes(before, {k: getattr(saved, k) for k in changes})
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="question.new_version" if saved.pk != question.pk else "question.update",
                    target=saved,
                    before={**old, "version": question.version},
                    after={**new, "version": saved.version},
                )
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            if saved.pk != question.pk:
                messages.success(
                    request,
                    _("The question has answers, so your edit became version %(v)d.")
                    % {"v": saved.version},
                )
            else:
                messages.success(request, _("Question saved."))
            return redirect("manage_checkins:questions")
    versions = [question]
    node = question.replaces
    while node is not None:
        versions.append(node)
        node = node.replaces
    return render(
        request,
        "manage/checkins/question_edit.html",
        {
            "organisation": organisation,
            "question": question,
            "frozen": frozen,
            "form": form,
            "versions": versions,
        },
    )


# --- Surveys --------------------------------------------------------------------------------


def _own_survey(organisation: Organisation, pk: int) -> Survey:
    return get_object_or_404(Survey, pk=pk, organisation=organisation)


@org_admin_required
@require_http_methods(["GET", "POST"])
def surveys(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = SurveyForm(request.POST or None, organisation=organisation)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                survey = services.survey_create(
                    organisation=organisation,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    question_ids=[q.pk for q in form.cleaned_data["questions"]],
                    items_per_person=form.cleaned_data["items_per_person"],
                )
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="survey.create",
                    target=survey,
                    after={"name": survey.name, "questions": survey.items.count()},
                )
        except ServiceError as exc:
            service_errors_to_form(form, exc, aliases={"question_ids": "questions"})
        else:
            messages.success(request, _("Draft survey created; publish it to schedule it."))
            return redirect("manage_checkins:survey", pk=survey.pk)
    listed = Survey.objects.filter(
        Q(organisation=organisation) | Q(organisation__isnull=True), is_current=True
    ).order_by("name")
    return render(
        request,
        "manage/checkins/surveys.html",
        {"organisation": organisation, "surveys": listed, "form": form},
    )


@org_admin_required
@require_http_methods(["GET", "POST"])
def survey_edit(request: HttpRequest, organisation: Organisation, pk: int) -> HttpResponse:
    survey = _own_survey(organisation, pk)
    question_ids = list(survey.items.order_by("position").values_list("question_id", flat=True))
    form = SurveyForm(
        request.POST or None,
        organisation=organisation,
        initial={
            "name": survey.name,
            "description": survey.description,
            "questions": question_ids,
            "items_per_person": survey.items_per_person,
        },
    )
    if request.method == "POST" and form.is_valid() and survey.is_current:
        new_ids = [q.pk for q in form.cleaned_data["questions"]]
        try:
            with transaction.atomic():
                saved = services.survey_update(
                    survey=survey,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    question_ids=new_ids,
                    items_per_person=form.cleaned_data["items_per_person"],
                )
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="survey.new_version" if saved.pk != survey.pk else "survey.update",
                    target=saved,
                    before={
                        "name": survey.name,
                        "questions": question_ids,
                        "version": survey.version,
                    },
                    after={"name": saved.name, "questions": new_ids, "version": saved.version},
                )
        except ServiceError as exc:
            service_errors_to_form(form, exc, aliases={"question_ids": "questions"})
        else:
            if saved.pk != survey.pk:
                messages.success(
                    request,
                    _("The survey is published, so your edit became version %(v)d.")
                    % {"v": saved.version},
                )
            else:
                messages.success(request, _("Survey saved."))
            return redirect("manage_checkins:survey", pk=saved.pk)
    return render(
        request,
        "manage/checkins/survey_edit.html",
        {
            "organisation": organisation,
            "survey": survey,
            "form": form,
            "items": survey.items.select_related("question").order_by("position"),
            "schedules": survey.schedules.all(),
        },
    )


@org_admin_required
@require_POST
def survey_publish(request: HttpRequest, organisation: Organisation, pk: int) -> HttpResponse:
    survey = _own_survey(organisation, pk)
    if not survey.is_published:
        with transaction.atomic():
            services.survey_publish(survey=survey)
            audit_record(
                organisation=organisation,
                actor=_actor(request),
                action="survey.publish",
                target=survey,
                before={"published": False},
                after={"published": True},
            )
        messages.success(request, _("Survey published."))
    return redirect("manage_checkins:survey", pk=survey.pk)


# --- Schedules ------------------------------------------------------------------------------


def _schedule(organisation: Organisation, public_id: Any) -> Schedule:
    return get_object_or_404(Schedule, organisation=organisation, public_id=public_id)


def _schedule_initial(schedule: Schedule) -> dict[str, Any]:
    initial = {name: getattr(schedule, name) for name in services.SCHEDULE_FIELDS}
    initial["teams"] = list(schedule.teams.values_list("pk", flat=True))
    initial["reminder_offsets"] = ", ".join(str(h) for h in schedule.reminder_offsets)
    return initial


@org_admin_required
@require_http_methods(["GET", "POST"])
def schedules(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = ScheduleForm(
        request.POST or None,
        organisation=organisation,
        initial={
            "cadence": "weekly",
            "weekday": 0,
            "local_time": "09:00",
            "open_hours": 96,
            "reminder_offsets": "24, 72",
            "start_date": date.today(),
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                schedule = services.schedule_create(
                    organisation=organisation, **form.service_values()
                )
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="schedule.create",
                    target=schedule,
                    after=selectors.schedule_snapshot(schedule),
                )
        except ServiceError as exc:
            service_errors_to_form(form, exc, aliases={"team_ids": "teams"})
        else:
            messages.success(request, _("Schedule created."))
            return redirect("manage_checkins:schedule", public_id=schedule.public_id)
    listed = (
        Schedule.objects.filter(organisation=organisation)
        .select_related("survey", "organisation")
        .order_by("name")
    )
    rows = [{"schedule": s, "next": schedule_next_open_times(s, 1)} for s in listed]
    return render(
        request,
        "manage/checkins/schedules.html",
        {"organisation": organisation, "rows": rows, "form": form},
    )


@org_admin_required
@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, organisation: Organisation, public_id: Any) -> HttpResponse:
    schedule = _schedule(organisation, public_id)
    form = ScheduleForm(
        request.POST or None, organisation=organisation, initial=_schedule_initial(schedule)
    )
    if request.method == "POST" and form.is_valid():
        before = selectors.schedule_snapshot(schedule)
        try:
            with transaction.atomic():
                saved = services.schedule_update(schedule=schedule, **form.service_values())
                old, new = audit_changes(before, selectors.schedule_snapshot(saved))
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="schedule.update",
                    target=saved,
                    before=old,
                    after=new,
                )
        except ServiceError as exc:
            service_errors_to_form(form, exc, aliases={"team_ids": "teams"})
        else:
            messages.success(request, _("Schedule saved."))
            return redirect("manage_checkins:schedule", public_id=schedule.public_id)
    return render(
        request,
        "manage/checkins/schedule_edit.html",
        {
            "organisation": organisation,
            "schedule": schedule,
            "form": form,
            "next_open_times": schedule_next_open_times(schedule, PREVIEW_COUNT),
            "timezone_name": schedule.timezone or organisation.timezone,
        },
    )


@org_admin_required
@require_POST
def schedule_pause(
    request: HttpRequest, organisation: Organisation, public_id: Any
) -> HttpResponse:
    schedule = _schedule(organisation, public_id)
    paused = request.POST.get("paused") == "1"
    if schedule.paused != paused:
        try:
            with transaction.atomic():
                services.schedule_update(schedule=schedule, paused=paused)
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="schedule.pause" if paused else "schedule.resume",
                    target=schedule,
                    before={"paused": not paused},
                    after={"paused": paused},
                )
        except ServiceError as exc:
            messages.error(request, exc.message)
            return redirect("manage_checkins:schedule", public_id=schedule.public_id)
    messages.success(request, _("Schedule paused.") if paused else _("Schedule resumed."))
    return redirect("manage_checkins:schedule", public_id=schedule.public_id)


# --- Support resources ----------------------------------------------------------------------


@org_admin_required
@require_http_methods(["GET", "POST"])
def support(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = SupportResourceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                resource = services.support_resource_create(
                    organisation=organisation, **form.cleaned_data
                )
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="support.create",
                    target=resource,
                    after=dict(form.cleaned_data),
                )
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, _("Support resource added."))
            return redirect("manage_checkins:support")
    return render(
        request,
        "manage/checkins/support.html",
        {
            "organisation": organisation,
            "resources": selectors.support_resources_for(organisation=organisation),
            "form": form,
        },
    )


# --- Channels (the notifications app's settings; the secrets never reach the audit log) -------


def _channels_snapshot(settings: ChannelSettings) -> dict[str, Any]:
    return {
        "slack_enabled": settings.slack_enabled,
        "teams_enabled": settings.teams_enabled,
        "default_channel": settings.default_channel,
        "slack_webhook": "set" if settings.slack_webhook_url else "not set",
        "teams_webhook": "set" if settings.teams_webhook_url else "not set",
    }


@org_admin_required
@require_http_methods(["GET", "POST"])
def channels(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    current = ChannelSettings.objects.filter(organisation=organisation).first() or ChannelSettings(
        organisation=organisation
    )
    before = _channels_snapshot(current)
    form = ChannelsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            saved = form.save()
            old, new = audit_changes(before, _channels_snapshot(saved))
            if new:
                audit_record(
                    organisation=organisation,
                    actor=_actor(request),
                    action="channels.update",
                    target=saved,
                    before=old,
                    after=new,
                )
        messages.success(request, _("Channels saved."))
        return redirect("manage_checkins:channels")
    return render(
        request, "manage/checkins/channels.html", {"organisation": organisation, "form": form}
    )
