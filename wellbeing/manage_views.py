"""In-product admin pages for an organisation: teams, people, people import, thresholds, flag
settings and the audit log.

Only organisation admins of *this* organisation reach them (``wellbeing.policy``); anyone else
signed in gets a 404 so no team name or number leaks, and objects are always looked up inside
the admin's organisation.  Views parse input, call a service (one transaction, audited) and
render; no business rules here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps
from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import accounts, policy, services
from .audit import audit_actions, audit_entries
from .customer_metrics import (
    STANDARD_METRICS,
    customer_metric_create,
    customer_metric_values_import,
    customer_metrics_of,
    metric_file_read,
    metric_values_plan,
    organisation_impact_cards,
)
from .customer_metrics import rows_load as metric_rows_load
from .errors import ServiceError
from .forms import (
    AuditFilterForm,
    FlagSettingsForm,
    LeadAddForm,
    OrganisationSettingsForm,
    PeopleImportForm,
    PeopleSearchForm,
    TeamCreateForm,
    TeamEditForm,
    TeamMoveForm,
    ThresholdsForm,
    service_errors_to_form,
)
from .languages import reading_language
from .models import (
    CustomerMetric,
    CustomerMetricValue,
    FlagSettings,
    Membership,
    Organisation,
    Team,
    TeamLead,
    User,
)
from .people_import import (
    ImportFileError,
    import_file_read,
    import_plan,
    people_import_apply,
    rows_load,
)
from .selectors import team_children_map, team_path
from .setup_steps import setup_steps
from .tabular_import import rows_dump

logger = logging.getLogger("pulse.manage")

IMPORT_SESSION_KEY = "people_import"
PREVIEW_LIMIT = 200
PAGE_SIZE = 50


def org_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in organisation admins only; others get 404 (the page does not exist for them)."""

    @login_required
    @never_cache
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not policy.is_org_admin(user):
            raise Http404
        assert isinstance(user, User) and user.organisation is not None
        if not policy.can_configure_organisation(user, user.organisation):
            raise Http404
        return view(request, user.organisation, *args, **kwargs)

    return wrapper


def _actor(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _team(organisation: Organisation, public_id: Any) -> Team:
    return get_object_or_404(Team, organisation=organisation, public_id=public_id)


def _tree(organisation: Organisation) -> list[dict[str, Any]]:
    """Nested teams for the tree view: [{"team" (with .members), "leads", "children"}]."""
    today = datetime.now(organisation.tz).date()
    active = (
        Q(memberships__started_on__lte=today)
        & (Q(memberships__ended_on__isnull=True) | Q(memberships__ended_on__gte=today))
        & Q(memberships__user__is_active=True)
    )
    teams = {
        t.pk: t
        for t in Team.objects.filter(organisation=organisation).annotate(
            members=Count("memberships", filter=active, distinct=True)
        )
    }
    leads: dict[int, list[str]] = {}
    for lead in TeamLead.objects.filter(team__organisation=organisation).select_related("user"):
        leads.setdefault(lead.team_id, []).append(str(lead.user))
    children = team_children_map(organisation=organisation)

    def nodes(parent_id: int | None, seen: frozenset[int]) -> list[dict[str, Any]]:
        kids = sorted(children.get(parent_id, []), key=lambda i: teams[i].name.casefold())
        return [
            {
                "team": teams[kid],
                "leads": sorted(leads.get(kid, [])),
                "children": nodes(kid, seen | {kid}) if kid not in seen else [],
            }
            for kid in kids
        ]

    return nodes(None, frozenset())


# --- Overview -----------------------------------------------------------------------------


@org_admin_required
@require_http_methods(["GET", "POST"])
def overview(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = OrganisationSettingsForm(
        request.POST or None,
        initial={"locale": organisation.locale, "timezone": organisation.timezone},
    )
    if request.method == "POST" and form.is_valid():
        try:
            organisation = services.organisation_settings_update(
                organisation=organisation, actor=_actor(request), **form.cleaned_data
            )
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            # the confirmation in the language the admin now reads
            translation.activate(reading_language(_actor(request), organisation))
            messages.success(request, _("Organisation settings saved."))
            return redirect("manage:overview")
    return render(
        request,
        "manage/overview.html",
        {
            "organisation": organisation,
            "form": form,
            "setup_steps": setup_steps(organisation),
            "team_count": Team.objects.filter(organisation=organisation).count(),
            "people_count": User.objects.filter(organisation=organisation, is_active=True).count(),
        },
    )


# --- Teams --------------------------------------------------------------------------------


@org_admin_required
@require_http_methods(["GET", "POST"])
def teams(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = TeamCreateForm(request.POST or None, organisation=organisation)
    if request.method == "POST" and form.is_valid():
        try:
            team = services.team_create(
                organisation=organisation,
                name=form.cleaned_data["name"].strip(),
                parent=form.cleaned_data["parent"],
                customer_facing=form.cleaned_data["customer_facing"],
                actor=_actor(request),
            )
        except ServiceError as exc:
            service_errors_to_form(form, exc, aliases={"__all__": "name"})
        else:
            messages.success(request, _("Team “%(name)s” created.") % {"name": team.name})
            return redirect("manage:teams")
    return render(
        request,
        "manage/teams.html",
        {"organisation": organisation, "tree": _tree(organisation), "form": form},
    )


@org_admin_required
@require_http_methods(["GET", "POST"])
def team_detail(request: HttpRequest, organisation: Organisation, public_id: Any) -> HttpResponse:
    team = _team(organisation, public_id)
    edit_form = TeamEditForm(
        request.POST if request.POST.get("form") == "edit" else None,
        initial={"name": team.name, "customer_facing": team.customer_facing},
    )
    move_form = TeamMoveForm(
        request.POST if request.POST.get("form") == "move" else None,
        organisation=organisation,
        initial={"parent": team.parent_id},
    )
    lead_form = LeadAddForm(
        request.POST if request.POST.get("form") == "lead" else None, organisation=organisation
    )
    actor = _actor(request)
    if request.method == "POST":
        which = request.POST.get("form")
        try:
            if which == "edit" and edit_form.is_valid():
                services.team_update(
                    team=team,
                    actor=actor,
                    name=edit_form.cleaned_data["name"],
                    customer_facing=edit_form.cleaned_data["customer_facing"],
                )
                messages.success(request, _("Team saved."))
                return redirect("manage:team", public_id=team.public_id)
            if which == "move" and move_form.is_valid():
                services.team_move(
                    team=team, new_parent=move_form.cleaned_data["parent"], actor=actor
                )
                messages.success(request, _("Team moved."))
                return redirect("manage:team", public_id=team.public_id)
            if which == "lead" and lead_form.is_valid():
                person = lead_form.cleaned_data["user"]
                services.team_lead_assign(user=person, team=team, actor=actor)
                messages.success(request, _("%(person)s now leads this team.") % {"person": person})
                return redirect("manage:team", public_id=team.public_id)
        except ServiceError as exc:
            form = {"edit": edit_form, "move": move_form, "lead": lead_form}.get(which or "")
            if form is not None:
                service_errors_to_form(form, exc)
            else:
                messages.error(request, exc.message)
    leads = TeamLead.objects.filter(team=team).select_related("user").order_by("user__full_name")
    today = datetime.now(organisation.tz).date()
    members = User.objects.filter(
        pk__in=Membership.objects.filter(Membership.active_on(today), team=team).values("user_id"),
        is_active=True,
    ).order_by("full_name", "email")
    return render(
        request,
        "manage/team_detail.html",
        {
            "organisation": organisation,
            "team": team,
            "path": team_path(team=team),
            "edit_form": edit_form,
            "move_form": move_form,
            "lead_form": lead_form,
            "leads": leads,
            "members": members,
        },
    )


@org_admin_required
@require_POST
def team_lead_remove(
    request: HttpRequest, organisation: Organisation, public_id: Any, user_id: Any
) -> HttpResponse:
    team = _team(organisation, public_id)
    person = get_object_or_404(User, organisation=organisation, public_id=user_id)
    services.team_lead_remove(user=person, team=team, actor=_actor(request))
    messages.success(request, _("%(person)s no longer leads this team.") % {"person": person})
    return redirect("manage:team", public_id=team.public_id)


# --- People -------------------------------------------------------------------------------


@org_admin_required
def people(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = PeopleSearchForm(request.GET or None)
    found = User.objects.filter(organisation=organisation).order_by("full_name", "email")
    query = ""
    if form.is_valid():
        query = form.cleaned_data["q"].strip()
        if query:
            found = found.filter(Q(full_name__icontains=query) | Q(email__icontains=query))
        if not form.cleaned_data["inactive"]:
            found = found.filter(is_active=True)
    else:
        found = found.filter(is_active=True)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    today = datetime.now(organisation.tz).date()
    teams_of: dict[int, list[str]] = {}
    for m in Membership.objects.filter(
        Membership.active_on(today), user__in=[p.pk for p in page.object_list]
    ).select_related("team"):
        teams_of.setdefault(m.user_id, []).append(m.team.name)
    rows = [{"person": p, "teams": sorted(teams_of.get(p.pk, []))} for p in page.object_list]
    return render(
        request,
        "manage/people.html",
        {
            "organisation": organisation,
            "form": form,
            "page": page,
            "rows": rows,
            "query": query,
            "querystring": _querystring(request),
        },
    )


def _querystring(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@org_admin_required
@require_POST
def person_deactivate(
    request: HttpRequest, organisation: Organisation, public_id: Any
) -> HttpResponse:
    person = get_object_or_404(User, organisation=organisation, public_id=public_id)
    try:
        services.person_deactivate(
            person=person, actor=_actor(request), ended_on=datetime.now(organisation.tz).date()
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(person)s was deactivated.") % {"person": person})
    return redirect("manage:people")


@org_admin_required
@require_POST
def person_sign_in_link(
    request: HttpRequest, organisation: Organisation, public_id: Any
) -> HttpResponse:
    person = get_object_or_404(User, organisation=organisation, public_id=public_id)
    try:
        accounts.sign_in_link_send_for(person=person, actor=request.user)  # type: ignore[arg-type]
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("A link to set a password is on its way to %(email)s.") % {"email": person.email},
        )
    return redirect("manage:people")


# --- Imports: upload → preview (nothing written) → confirm (one transaction) -----------------


@dataclass(frozen=True)
class _ImportFlow:
    """One spreadsheet import as the pages drive it.  The rows read at upload wait in the
    session until the admin confirms; the confirm step applies them only if the plan is still
    the one previewed (``expected_digest``), else it shows the fresh preview with status 409."""

    session_key: str
    read: Callable[..., Any]  # (*, data, filename) -> parsed file; raises ImportFileError
    plan: Callable[[Organisation, Any, date, User], Any]  # (organisation, parsed, today, actor)
    apply: Callable[..., Any]  # (*, organisation, rows, actor, today, expected_digest, source)
    rows_load: Callable[[str], list[Any]]
    preview: Callable[..., HttpResponse]  # (request, organisation, parsed, plan, *, form, status)
    upload_url: str
    done_url: str
    done_message: Any  # lazily translated, with %(summary)s
    log_event: str = ""  # logged on success, when the service does not log it itself


def _import_upload(
    request: HttpRequest, organisation: Organisation, form: Any, *, flow: _ImportFlow
) -> HttpResponse | None:
    """Read the valid ``form``'s file and render its preview; ``None`` after adding the
    file-level error to the form."""
    upload = form.cleaned_data["file"]
    try:
        parsed = flow.read(data=upload.read(), filename=upload.name or "")
    except ImportFileError as exc:
        form.add_error("file", str(exc))
        return None
    plan = flow.plan(organisation, parsed, datetime.now(organisation.tz).date(), _actor(request))
    if not parsed.issues and not plan.issues and not plan.is_noop:
        request.session[flow.session_key] = {
            "sha256": parsed.sha256,
            "name": (upload.name or "")[:200],
            "rows": rows_dump(parsed.rows),
        }
    else:
        request.session.pop(flow.session_key, None)
    return flow.preview(request, organisation, parsed, plan, form=form)


def _import_confirm(
    request: HttpRequest, organisation: Organisation, *, flow: _ImportFlow
) -> HttpResponse:
    stored = request.session.get(flow.session_key)
    if not stored or stored.get("sha256") != request.POST.get("sha256"):
        messages.error(request, _("That preview has expired; upload the file again."))
        return redirect(flow.upload_url)
    rows = flow.rows_load(stored["rows"])
    today = datetime.now(organisation.tz).date()
    try:
        result = flow.apply(
            organisation=organisation,
            rows=rows,
            actor=_actor(request),
            today=today,
            expected_digest=request.POST.get("digest", ""),
            source=stored.get("name", ""),
        )
    except ServiceError as exc:
        # The organisation changed since the preview (or the rows no longer validate): show
        # the fresh preview instead of applying anything.
        messages.error(request, exc.message)
        parsed = _StoredUpload(sha256=stored["sha256"], rows=rows)
        plan = flow.plan(organisation, parsed, today, _actor(request))
        return flow.preview(request, organisation, parsed, plan, status=409)
    request.session.pop(flow.session_key, None)
    if flow.log_event:
        logger.info(
            "event=%s organisation=%s changes=%d",
            flow.log_event,
            organisation.pk,
            len(result.plan.changes),
        )
    messages.success(request, flow.done_message % {"summary": result.plan.summary()})
    return redirect(flow.done_url)


class _StoredUpload:
    """Enough of an uploaded file to re-render a preview from rows kept in the session."""

    def __init__(self, *, sha256: str, rows: list[Any]) -> None:
        self.sha256 = sha256
        self.rows = rows
        self.issues: list[Any] = []
        self.row_count = len(rows)
        self.file_format = ""
        self.encoding = ""
        self.seen_emails: set[str] = set()  # every row is valid, so none is absent


# --- People import ------------------------------------------------------------------------


def _import_context(organisation: Organisation, parsed: Any, plan: Any) -> dict[str, Any]:
    issues = sorted(parsed.issues + plan.issues, key=lambda i: (i.row or 0, i.column))
    return {
        "organisation": organisation,
        "parsed": parsed,
        "plan": plan,
        "issues": issues,
        "creates": plan.creates[:PREVIEW_LIMIT],
        "updates": plan.updates[:PREVIEW_LIMIT],
        "deactivations": plan.deactivations[:PREVIEW_LIMIT],
        "more_creates": max(len(plan.creates) - PREVIEW_LIMIT, 0),
        "more_updates": max(len(plan.updates) - PREVIEW_LIMIT, 0),
        "more_deactivations": max(len(plan.deactivations) - PREVIEW_LIMIT, 0),
        "counts": plan.counts(),
    }


def _people_preview(
    request: HttpRequest,
    organisation: Organisation,
    parsed: Any,
    plan: Any,
    *,
    form: Any = None,
    status: int = 200,
) -> HttpResponse:
    context = _import_context(organisation, parsed, plan)
    context["form"] = form or PeopleImportForm()
    return render(request, "manage/people_import_preview.html", context, status=status)


PEOPLE_IMPORT = _ImportFlow(
    session_key=IMPORT_SESSION_KEY,
    read=import_file_read,
    plan=lambda organisation, parsed, today, actor: import_plan(
        organisation=organisation,
        rows=parsed.rows,
        today=today,
        present_emails=parsed.seen_emails,
        actor=actor,
    ),
    apply=people_import_apply,
    rows_load=rows_load,
    preview=_people_preview,
    upload_url="manage:people_import",
    done_url="manage:people",
    done_message=gettext_lazy("Import applied: %(summary)s."),
    log_event="people_import",
)


@org_admin_required
@require_http_methods(["GET", "POST"])
def people_import(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    """Upload → preview (nothing written).  The preview's confirm button posts to
    ``people_import_confirm`` with the upload's hash and the plan's digest."""
    form = PeopleImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        preview = _import_upload(request, organisation, form, flow=PEOPLE_IMPORT)
        if preview is not None:
            return preview
    return render(
        request, "manage/people_import.html", {"organisation": organisation, "form": form}
    )


@org_admin_required
@require_POST
def people_import_confirm(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    return _import_confirm(request, organisation, flow=PEOPLE_IMPORT)


# --- Thresholds ---------------------------------------------------------------------------


@org_admin_required
@require_http_methods(["GET", "POST"])
def thresholds(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = ThresholdsForm(
        request.POST or None,
        initial={
            "anonymity_threshold": organisation.anonymity_threshold,
            "comment_threshold": organisation.comment_threshold,
            "comments_enabled": organisation.comments_enabled,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.organisation_thresholds_update(
                organisation=organisation, actor=_actor(request), **form.cleaned_data
            )
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, _("Privacy thresholds saved."))
            return redirect("manage:thresholds")
    return render(request, "manage/thresholds.html", {"organisation": organisation, "form": form})


@org_admin_required
@require_http_methods(["GET", "POST"])
def flag_settings(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    current = FlagSettings.objects.filter(organisation=organisation).first() or FlagSettings(
        organisation=organisation
    )
    form = FlagSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.flag_settings_update(
                organisation=organisation, actor=_actor(request), **form.cleaned_data
            )
        except ServiceError as exc:
            service_errors_to_form(form, exc)
        else:
            messages.success(request, _("Flag thresholds saved."))
            return redirect("manage:flag_settings")
    return render(
        request, "manage/flag_settings.html", {"organisation": organisation, "form": form}
    )


# --- Audit log ----------------------------------------------------------------------------


@org_admin_required
def audit(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    form = AuditFilterForm(request.GET or None, actions=audit_actions(organisation=organisation))
    action = form.cleaned_data["action"] if form.is_valid() else ""
    entries = audit_entries(organisation=organisation, action=action)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "manage/audit.html",
        {
            "organisation": organisation,
            "form": form,
            "page": page,
            "querystring": _querystring(request),
        },
    )


# --- Customer metrics (team-level helpdesk figures; see wellbeing.customer_metrics) -----------

METRICS_SESSION_KEY = "customer_metrics_import"


class MetricUploadForm(PeopleImportForm):
    """The people import's file field and size check, with the metric file's columns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _(
            "Columns: metric (e.g. csat), team (path like “Customer Experience / Support Tier "
            "1” or the team's id), week_start (YYYY-MM-DD, any day of the week), value. One row "
            "per team and week; no names, e-mails, agents, customers or tickets."
        )


class MetricDefineForm(django_forms.Form):
    key = django_forms.SlugField(
        label=gettext_lazy("Key"), max_length=40, help_text=gettext_lazy("e.g. nps_support")
    )
    name = django_forms.CharField(label=gettext_lazy("Name"), max_length=100)
    unit = django_forms.CharField(label=gettext_lazy("Unit"), max_length=20, required=False)
    direction = django_forms.ChoiceField(
        label=gettext_lazy("Direction"), choices=CustomerMetric.Direction.choices
    )
    min_value = django_forms.FloatField(label=gettext_lazy("Lowest valid value"), initial=0)
    max_value = django_forms.FloatField(label=gettext_lazy("Highest valid value"), initial=100)


def _metrics_page(
    request: HttpRequest,
    organisation: Organisation,
    *,
    upload_form: Any = None,
    define_form: Any = None,
    status: int = 200,
) -> HttpResponse:
    counts = dict(
        CustomerMetricValue.objects.filter(metric__organisation=organisation)
        .values_list("metric_id")
        .annotate(n=Count("id"))
        .values_list("metric_id", "n")
    )
    metrics = [
        {"metric": m, "values": counts.get(m.pk, 0)}
        for m in customer_metrics_of(organisation=organisation)
    ]
    return render(
        request,
        "manage/metrics.html",
        {
            "organisation": organisation,
            "metrics": metrics,
            "standard_metrics": STANDARD_METRICS.values(),
            "upload_form": upload_form or MetricUploadForm(),
            "define_form": define_form or MetricDefineForm(),
            "impact_cards": organisation_impact_cards(organisation=organisation),
        },
        status=status,
    )


def _metrics_preview(
    request: HttpRequest,
    organisation: Organisation,
    parsed: Any,
    plan: Any,
    *,
    form: Any = None,
    status: int = 200,
) -> HttpResponse:
    issues = sorted(parsed.issues + plan.issues, key=lambda i: (i.row or 0, i.column))
    return render(
        request,
        "manage/metrics_preview.html",
        {
            "organisation": organisation,
            "parsed": parsed,
            "plan": plan,
            "issues": issues,
            "changes": plan.changes[:PREVIEW_LIMIT],
            "more_changes": max(len(plan.changes) - PREVIEW_LIMIT, 0),
            "counts": plan.counts(),
        },
        status=status,
    )


METRICS_IMPORT = _ImportFlow(
    session_key=METRICS_SESSION_KEY,
    read=metric_file_read,
    plan=lambda organisation, parsed, today, _admin: metric_values_plan(
        organisation=organisation, rows=parsed.rows, today=today
    ),
    apply=customer_metric_values_import,
    rows_load=metric_rows_load,
    preview=_metrics_preview,
    upload_url="manage:metrics",
    done_url="manage:metrics",
    done_message=gettext_lazy("Customer metrics imported: %(summary)s."),
)


@org_admin_required
@require_http_methods(["GET", "POST"])
def metrics(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    """Metric definitions, the upload (→ preview, nothing written) and the lagged association."""
    which = request.POST.get("form") if request.method == "POST" else None
    if which == "define":
        define_form = MetricDefineForm(request.POST)
        if define_form.is_valid():
            try:
                customer_metric_create(
                    organisation=organisation, actor=_actor(request), **define_form.cleaned_data
                )
            except ServiceError as exc:
                service_errors_to_form(define_form, exc)
            else:
                messages.success(request, _("Metric defined."))
                return redirect("manage:metrics")
        return _metrics_page(request, organisation, define_form=define_form, status=400)
    if which == "upload":
        upload_form = MetricUploadForm(request.POST, request.FILES)
        if upload_form.is_valid():
            preview = _import_upload(request, organisation, upload_form, flow=METRICS_IMPORT)
            if preview is not None:
                return preview
        return _metrics_page(request, organisation, upload_form=upload_form, status=400)
    return _metrics_page(request, organisation)


@org_admin_required
@require_POST
def metrics_confirm(request: HttpRequest, organisation: Organisation) -> HttpResponse:
    return _import_confirm(request, organisation, flow=METRICS_IMPORT)
