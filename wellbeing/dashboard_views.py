"""Dashboards for leads and admins, and the "you said, we did" page for everyone in a team.

Thin HTML edges over the stored analytics (``wellbeing.analytics_selectors``): they read only
published aggregates, so nothing from fewer than k people can reach a page, a chart, a table or
the CSV export.  Access is decided by ``wellbeing.policy``; a team the user may not see is a 404
(never a 403, which would confirm that it exists).  Charts are inline SVG from
``wellbeing.charts`` with a table alternative, so no JavaScript or CDN is needed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from . import charts, policy
from .analytics import DIMENSIONS
from .analytics_selectors import (
    HEATMAP_RESULTS,
    Distribution,
    Heatmap,
    HeatmapRow,
    TrendPoint,
    flags_for,
    organisation_heatmap,
    primary_participation,
    team_latest_distribution,
    team_trend,
)
from .comments_selectors import organisation_comments, team_comments
from .customer_metrics import (
    OverlayPoint,
    organisation_impact_cards,
    overlay_chart_svg,
    team_metric_series,
    team_metrics,
    week_monday,
)
from .errors import ServiceError
from .exports import csv_text
from .models import (
    CycleResult,
    Flag,
    FlagEvent,
    Membership,
    Organisation,
    Team,
    TeamParticipation,
    User,
)

DIMENSION_LABELS = {
    "stress": gettext_lazy("Stress"),
    "wellbeing": gettext_lazy("Wellbeing (reversed)"),
    "client_burnout": gettext_lazy("Client-related burnout"),
    "burnout": gettext_lazy("Burnout"),
    "workload": gettext_lazy("Workload"),
    "recovery": gettext_lazy("Lack of recovery"),
    "support": gettext_lazy("Lack of support"),
}

# Which published series a flag's evidence chart shows.
FLAG_EVIDENCE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    Flag.Kind.HIGH_STRESS: ("stress",),
    Flag.Kind.RISING_STRESS: ("stress",),
    Flag.Kind.EMPATHY_RISK: ("stress", "client_burnout"),
    Flag.Kind.PARTICIPATION_DROP: ("participation",),
}

# Plain-language headline of a flag for the people who answered (no numbers).
YOU_SAID: dict[str, Any] = {
    Flag.Kind.HIGH_STRESS: gettext_lazy("Stress in the team was high."),
    Flag.Kind.RISING_STRESS: gettext_lazy("Stress in the team was rising."),
    Flag.Kind.EMPATHY_RISK: gettext_lazy(
        "Stress was rising together with the strain of working with customers."
    ),
    Flag.Kind.PARTICIPATION_DROP: gettext_lazy("Fewer people were answering the check-ins."),
}

SEVERITY_RANK: dict[str, int] = {
    Flag.Severity.CRITICAL: 0,
    Flag.Severity.WARNING: 1,
    Flag.Severity.WATCH: 2,
}
TREND_WINDOWS = (26, 52)
LOG_PAGE_SIZE = 50


def flags_by_severity(flags: Iterable[Flag]) -> list[Flag]:
    """Most severe first, then the most recently opened."""
    return sorted(flags, key=lambda f: (SEVERITY_RANK.get(f.severity, 9), -f.opened_at.timestamp()))


def dimension_label(dimension: str) -> str:
    if dimension == "participation":
        return _("Participation")
    return str(DIMENSION_LABELS.get(dimension, dimension))


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else formats.number_format(value, digits, use_l10n=True)


def _short_date(day: date) -> str:
    return formats.date_format(day, "SHORT_DATE_FORMAT", use_l10n=True)


def _visible_team_or_404(user, public_id: uuid.UUID) -> Team:
    team = get_object_or_404(
        Team.objects.select_related("organisation", "parent"), public_id=public_id
    )
    if not policy.can_view_team(user, team):
        raise Http404
    return team


# --- Trend charts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendPanel:
    dimension: str
    label: str
    chart: SafeString
    points: Sequence[TrendPoint]
    rows: Sequence[dict]
    distribution: dict | None
    has_data: bool


def _chart_text(title: str, description: str) -> charts.TrendChartText:
    return charts.TrendChartText(
        title=title,
        description=description,
        y_axis=_("Index 0–100, higher is worse"),
        series=_("Index"),
        band=_("Uncertainty interval"),
        gap=_("Not enough responses"),
        highlight=_("Cycle behind the flag"),
        empty=_("No published cycles yet"),
    )


def _trend_chart(
    points: Sequence[TrendPoint],
    *,
    chart_id: str,
    title: str,
    participation: bool = False,
    highlight: tuple[date, date] | None = None,
) -> SafeString:
    chart_points = []
    for p in points:
        flagged = highlight is not None and highlight[0] <= p.period_start <= highlight[1]
        if participation:
            value = None if p.participation_rate is None else p.participation_rate * 100
            chart_points.append(
                charts.TrendChartPoint(
                    label=_short_date(p.period_start),
                    value=value,
                    highlight=flagged,
                    value_text=None if value is None else f"{_number(value, 0)} %",
                )
            )
            continue
        text = None
        if p.published and p.index is not None:
            text = _("%(index)s (interval %(low)s–%(high)s, n = %(n)s)") % {
                "index": _number(p.index),
                "low": _number(p.ci_low),
                "high": _number(p.ci_high),
                "n": p.n,
            }
        chart_points.append(
            charts.TrendChartPoint(
                label=_short_date(p.period_start),
                value=p.index if p.published else None,
                low=p.ci_low if p.published else None,
                high=p.ci_high if p.published else None,
                highlight=flagged,
                value_text=text,
            )
        )
    published = sum(1 for p in points if p.published)
    description = _(
        "%(count)s cycles, %(published)s with enough responses to show; "
        "the table below gives every value."
    ) % {"count": len(points), "published": published}
    if participation:
        text_ = _chart_text(title, description)
        text_ = charts.TrendChartText(
            **{**text_.__dict__, "y_axis": _("Participation, %"), "series": _("Participation")}
        )
    else:
        text_ = _chart_text(title, description)
    # The chart module escapes every string it is given; its output is safe markup.
    return mark_safe(charts.trend_chart_svg(chart_points, chart_id=chart_id, text=text_))  # noqa: S308


def _trend_rows(points: Sequence[TrendPoint]) -> list[dict]:
    return [
        {
            "period_start": p.period_start,
            "published": p.published,
            "index": p.index,
            "ci_low": p.ci_low,
            "ci_high": p.ci_high,
            "n": p.n,
            "participation_percent": None
            if p.participation_rate is None
            else p.participation_rate * 100,
        }
        for p in reversed(points)
    ]


def _distribution_panel(dist: Distribution | None, *, dimension: str, chart_id: str) -> dict | None:
    if dist is None or dist.n <= 0:
        return None
    bars = [
        charts.DistributionBar(label=f"{low}–{high}", share=count / dist.n)
        for (low, high), count in zip(dist.buckets, dist.counts, strict=True)
    ]
    title = _("%(dimension)s: spread of answers on %(date)s") % {
        "dimension": dimension_label(dimension),
        "date": _short_date(dist.period_start),
    }
    svg = charts.distribution_chart_svg(
        bars,
        chart_id=chart_id,
        title=title,
        description=_("Share of respondents in each band of the 0–100 index; n = %(n)s.")
        % {"n": dist.n},
    )
    return {
        "title": title,
        "chart": mark_safe(svg),  # noqa: S308 -- escaped by wellbeing.charts
        "n": dist.n,
        "rows": [{"band": bar.label, "percent": bar.share * 100} for bar in bars],
        "period_start": dist.period_start,
    }


# --- Landing -----------------------------------------------------------------------------------


@login_required
@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    user = request.user
    visible = policy.visible_team_ids(user)
    teams = Team.objects.filter(pk__in=visible).select_related("parent").order_by("name")
    own_team_ids = _member_team_ids(user)
    own_teams = Team.objects.filter(pk__in=own_team_ids).order_by("name")
    return render(
        request,
        "dashboards/landing.html",
        {
            "teams": teams if visible else [],
            "own_teams": own_teams if own_team_ids else [],
            "is_admin": policy.is_org_admin(user),
        },
    )


def _member_team_ids(user) -> set[int]:
    if not user.is_authenticated:
        return set()
    today = timezone.localdate()
    return set(
        Membership.objects.filter(Membership.active_on(today), user=user).values_list(
            "team_id", flat=True
        )
    )


# --- Lead dashboard ----------------------------------------------------------------------------


class AcknowledgeForm(forms.Form):
    prefix_id = "ack"
    action_taken = forms.CharField(
        label=gettext_lazy("What did you do, or what will you do?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy(
            "Shown to the team on its “you said, we did” page. Do not name anyone."
        ),
    )
    follow_up_on = forms.DateField(
        label=gettext_lazy("Follow up on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("Optional: when you will check whether it helped."),
    )

    def clean_action_taken(self) -> str:
        text = self.cleaned_data["action_taken"].strip()
        if not text:
            raise forms.ValidationError(_("Describe the action taken."))
        return text

    def clean_follow_up_on(self) -> date | None:
        day = self.cleaned_data.get("follow_up_on")
        if day is not None and day < timezone.localdate():
            raise forms.ValidationError(_("The follow-up date cannot be in the past."))
        return day


class DismissForm(forms.Form):
    prefix_id = "dismiss"

    reason = forms.CharField(
        label=gettext_lazy("Why does this flag need no action?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "For example a known, passing cause. Kept in the flag's history. Do not name anyone."
        ),
    )

    def clean_reason(self) -> str:
        text = self.cleaned_data["reason"].strip()
        if not text:
            raise forms.ValidationError(_("Say why this flag needs no action."))
        return text


def _team_dashboard_context(
    request: HttpRequest,
    team: Team,
    *,
    cycles: int,
    forms_by_flag: dict[int, AcknowledgeForm | DismissForm] | None = None,
) -> dict:
    user = request.user
    trends = {d: team_trend(team=team, dimension=d, cycles=cycles) for d in DIMENSIONS}
    panels = []
    for dimension in DIMENSIONS:
        points = trends[dimension]
        label = dimension_label(dimension)
        panels.append(
            TrendPanel(
                dimension=dimension,
                label=label,
                chart=_trend_chart(points, chart_id=f"trend-{dimension}", title=label),
                points=points,
                rows=_trend_rows(points),
                distribution=_distribution_panel(
                    team_latest_distribution(team=team, dimension=dimension),
                    dimension=dimension,
                    chart_id=f"dist-{dimension}",
                ),
                has_data=bool(points),
            )
        )
    participation_points = trends[DIMENSIONS[0]]

    active = flags_by_severity(flags_for(user=user).filter(team=team))
    may_act = policy.can_act_on_team_flags(user, team)
    flag_cards = []
    for flag in active:
        period = (flag.first_cycle_period, flag.last_cycle_period)
        evidence = []
        for dimension in FLAG_EVIDENCE_DIMENSIONS.get(flag.kind, ("stress",)):
            series = participation_points if dimension == "participation" else trends[dimension]
            title = _("Evidence: %(dimension)s") % {"dimension": dimension_label(dimension)}
            chart = _trend_chart(
                series,
                chart_id=f"flag-{flag.public_id}-{dimension}",
                title=title,
                participation=dimension == "participation",
                highlight=period,
            )
            evidence.append({"title": title, "chart": chart})
        bound = (forms_by_flag or {}).get(flag.pk)
        acknowledge = (
            bound
            if isinstance(bound, AcknowledgeForm)
            else AcknowledgeForm(auto_id=f"id_{flag.public_id}_ack_%s")
        )
        dismiss = (
            bound
            if isinstance(bound, DismissForm)
            else DismissForm(auto_id=f"id_{flag.public_id}_dismiss_%s")
        )
        flag_cards.append(
            {
                "flag": flag,
                "evidence_charts": evidence,
                "statistics": _evidence_facts(flag),
                "form": acknowledge if may_act and flag.state == Flag.State.OPEN else None,
                "dismiss_form": dismiss if may_act else None,
                "dismiss_open": isinstance(bound, DismissForm),
            }
        )

    history = (
        FlagEvent.objects.filter(flag__team=team)
        .select_related("flag", "actor")
        .order_by("-at", "-pk")[:LOG_PAGE_SIZE]
    )
    visible = policy.visible_team_ids(user)
    children = Team.objects.filter(parent=team, pk__in=visible).order_by("name")
    return {
        "team": team,
        "cycles": cycles,
        "windows": TREND_WINDOWS,
        "panels": panels,
        "participation_rows": _trend_rows(participation_points),
        "participation_chart": _trend_chart(
            participation_points,
            chart_id="trend-participation",
            title=_("Participation"),
            participation=True,
        ),
        "flag_cards": flag_cards,
        "history": history,
        "children": list(children) if visible else [],
        "k": team.organisation.anonymity_threshold,
        "impact_panels": _impact_panels(team, trends["stress"]),
        # stored at close through the guard, shuffled again here; nothing when comments are off
        "comments": team_comments(team=team),
    }


def _impact_panels(team: Team, stress: Sequence[TrendPoint]) -> list[dict]:
    """The team's customer metrics next to its published stress, week by week (customer
    metrics are team-level helpdesk numbers; the stress side is published figures only)."""
    if not stress:
        return []
    panels = []
    for metric in team_metrics(team=team):
        by_week = {
            w.week_start: w.value
            for w in team_metric_series(team=team, metric=metric, since=stress[0].period_start)
        }
        points = [
            OverlayPoint(
                label=_short_date(p.period_start),
                index=p.index if p.published else None,
                metric=by_week.get(week_monday(p.period_start)),
            )
            for p in stress
        ]
        if not any(p.metric is not None for p in points):
            continue
        metric_label = f"{metric.name}" + (f", {metric.unit}" if metric.unit else "")
        title = _("Stress and %(metric)s by week") % {"metric": metric.name}
        chart = overlay_chart_svg(
            points,
            chart_id=f"impact-{metric.key}",
            title=title,
            description=_(
                "Stress index (0–100, higher is worse) on the left axis and %(metric)s on the "
                "right axis for the same weeks; the table below gives every value."
            )
            % {"metric": metric.name},
            index_label=_("Stress index"),
            metric_label=metric_label,
            metric_range=(metric.min_value, metric.max_value),
        )
        panels.append(
            {
                "metric": metric,
                "title": title,
                "metric_label": metric_label,
                "chart": mark_safe(chart),  # noqa: S308 -- escaped by overlay_chart_svg
                "rows": [
                    {"week": p.period_start, "index": point.index, "metric": point.metric}
                    for p, point in zip(reversed(stress), reversed(points), strict=True)
                ],
            }
        )
    return panels


def _evidence_facts(flag: Flag) -> list[tuple[str, str]]:
    """The statistics a flag rests on, as label/value text (the evidence holds published
    figures only; see ``wellbeing.flags``)."""
    evidence = flag.evidence or {}
    facts: list[tuple[str, str]] = []

    def add(label: str, value: object, digits: int = 1) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            facts.append((label, _number(float(value), digits)))

    def add_interval(label: str, pair: object) -> None:
        if (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(v, int | float) for v in pair)
        ):
            facts.append((label, f"{_number(pair[0], 2)} – {_number(pair[1], 2)}"))

    def add_all(source: dict, prefix: str) -> None:
        add(prefix + _("control-chart statistic"), source.get("statistic"), 2)
        add(prefix + _("threshold"), source.get("threshold"), 2)
        add(prefix + _("baseline (own history)"), source.get("baseline_mean"))
        add(prefix + _("change per cycle (Theil–Sen slope)"), source.get("slope_per_cycle"), 2)
        # xgettext:no-python-format
        add_interval(prefix + _("95% interval of the slope"), source.get("slope_ci"))
        p_value = source.get("mann_kendall_p")
        if isinstance(p_value, int | float) and 0 <= p_value < 0.001:
            facts.append((prefix + _("Mann–Kendall p-value"), "< " + _number(0.001, 3)))
        else:
            add(prefix + _("Mann–Kendall p-value"), p_value, 3)
        add(prefix + _("latest index"), source.get("latest"))

    main = dimension_label(str(evidence.get("dimension", "stress")))
    add_all(evidence, f"{main}: ")
    burnout = evidence.get("client_burnout")
    if isinstance(burnout, dict):
        add_all(burnout, f"{dimension_label('client_burnout')}: ")
    customer = evidence.get("customer")
    if isinstance(customer, dict):
        name = str(customer.get("name", ""))
        add(f"{name}: " + _("first of the recent weeks"), customer.get("first"))
        add(f"{name}: " + _("latest week"), customer.get("latest"))
        add(f"{name}: " + _("change per week (Theil–Sen slope)"), customer.get("slope_per_week"), 2)
        # xgettext:no-python-format
        add_interval(f"{name}: " + _("95% interval of the slope"), customer.get("slope_ci"))
        add(f"{name}: " + _("Mann–Kendall p-value (worsening)"), customer.get("p_worsening"), 3)
    return facts


def _cycles_param(request: HttpRequest) -> int:
    try:
        cycles = int(request.GET.get("cycles", TREND_WINDOWS[0]))
    except ValueError:
        return TREND_WINDOWS[0]
    return cycles if cycles in TREND_WINDOWS else TREND_WINDOWS[0]


@login_required
@require_GET
def team_dashboard(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    team = _visible_team_or_404(request.user, public_id)
    context = _team_dashboard_context(request, team, cycles=_cycles_param(request))
    return render(request, "dashboards/team.html", context)


def _flag_action(
    request: HttpRequest,
    public_id: uuid.UUID,
    flag_id: uuid.UUID,
    *,
    form_class: type[AcknowledgeForm] | type[DismissForm],
    act: Callable[[Flag, User, dict], object],
    done: str,
) -> HttpResponse:
    """A lead's or admin's action on one of the team's flags.  Invalid input shows the action's
    form again with its errors (400); a refusal of the service (someone else acted first, so
    the form may no longer be on the page) goes back to the dashboard with the reason."""
    team = _visible_team_or_404(request.user, public_id)
    flag = get_object_or_404(Flag, public_id=flag_id, team=team)
    if not policy.can_act_on_team_flags(request.user, team):
        raise Http404
    form = form_class(request.POST, auto_id=f"id_{flag.public_id}_{form_class.prefix_id}_%s")
    if form.is_valid():
        try:
            act(flag, request.user, form.cleaned_data)  # type: ignore[arg-type]  # login_required
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, done)
        return redirect(reverse("dashboards:team", args=[team.public_id]) + "#flags")
    context = _team_dashboard_context(
        request, team, cycles=_cycles_param(request), forms_by_flag={flag.pk: form}
    )
    return render(request, "dashboards/team.html", context, status=400)


@login_required
@require_POST
def flag_acknowledge_view(
    request: HttpRequest, public_id: uuid.UUID, flag_id: uuid.UUID
) -> HttpResponse:
    from .flags import flag_acknowledge

    return _flag_action(
        request,
        public_id,
        flag_id,
        form_class=AcknowledgeForm,
        act=lambda flag, user, data: flag_acknowledge(
            flag=flag,
            user=user,
            action_taken=data["action_taken"],
            follow_up_on=data["follow_up_on"],
        ),
        done=_("Thank you. The action is recorded and shown to the team."),
    )


@login_required
@require_POST
def flag_dismiss_view(
    request: HttpRequest, public_id: uuid.UUID, flag_id: uuid.UUID
) -> HttpResponse:
    from .flags import flag_dismiss

    return _flag_action(
        request,
        public_id,
        flag_id,
        form_class=DismissForm,
        act=lambda flag, user, data: flag_dismiss(flag=flag, user=user, reason=data["reason"]),
        done=_("The flag is dismissed; the reason is kept in its history."),
    )


# --- You said, we did --------------------------------------------------------------------------


@login_required
@require_GET
def you_said_we_did(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    team = get_object_or_404(Team.objects.select_related("organisation"), public_id=public_id)
    user = request.user
    if not (policy.can_view_team(user, team) or _is_member_of_subtree(user, team)):
        raise Http404
    # Only what leads wrote and when: no figures, no names of who answered or who acted.
    actions = (
        Flag.objects.filter(team=team)
        .exclude(action_taken="")
        .exclude(state=Flag.State.DISMISSED)
        .order_by("-acknowledged_at", "-pk")
        .only(
            "kind",
            "state",
            "acknowledged_at",
            "action_taken",
            "follow_up_on",
            "resolved_at",
            "public_id",
        )
    )
    items = [
        {
            "you_said": YOU_SAID.get(flag.kind, flag.get_kind_display()),
            "we_did": flag.action_taken,
            "on": flag.acknowledged_at,
            "follow_up_on": flag.follow_up_on,
            "resolved": flag.state == Flag.State.RESOLVED,
        }
        for flag in actions
    ]
    return render(
        request,
        "dashboards/you_said_we_did.html",
        {"team": team, "items": items, "is_lead": policy.can_view_team(user, team)},
    )


def _is_member_of_subtree(user, team: Team) -> bool:
    from .selectors import team_subtree_ids

    member_of = _member_team_ids(user)
    if not member_of:
        return False
    if team.pk in member_of:
        return True
    return bool(member_of & team_subtree_ids(organisation=team.organisation, roots=[team.pk]))


# --- Admin overview ----------------------------------------------------------------------------

SEVERITY_CLASSES = {0: "lvl-0", 1: "lvl-1", 2: "lvl-2", 3: "lvl-3", 4: "lvl-4"}


def _admin_organisation_or_404(user) -> Organisation:
    organisation = getattr(user, "organisation", None)
    if organisation is None or not policy.is_org_admin(user, organisation):
        raise Http404
    return organisation


def _latest_participation(
    *, organisation: Organisation, team_ids: set[int]
) -> dict[int | None, TeamParticipation]:
    """Each team's participation at its latest stored cycle (published rows carry the rate)."""
    result_ids = list(
        CycleResult.objects.filter(organisation=organisation)
        .order_by("-period_start", "-closed_at")
        .values_list("pk", flat=True)[:HEATMAP_RESULTS]
    )
    rows = list(TeamParticipation.objects.filter(result_id__in=result_ids).select_related("result"))
    latest: dict[int | None, TeamParticipation] = {}
    team_rows = [r for r in rows if r.team_id is not None and r.team_id in team_ids]
    for row in [r for r in rows if r.team_id is None] + list(
        primary_participation(team_rows).values()
    ):
        current = latest.get(row.team_id)
        key = (row.result.period_start, row.result.closed_at)
        if current is None or key > (current.result.period_start, current.result.closed_at):
            latest[row.team_id] = row
    return latest


def _heat_level(index: float | None) -> str:
    if index is None:
        return "suppressed"
    return SEVERITY_CLASSES[min(4, int(index // 20))]


def _overview_rows(
    heatmap: Heatmap, participation: dict[int | None, TeamParticipation]
) -> list[dict]:
    rows = []
    for row in heatmap.rows:
        part = participation.get(row.team_id)
        rows.append(
            {
                "row": row,
                "cells": [
                    {"cell": cell, "level": _heat_level(cell.index if cell.published else None)}
                    for cell in row.cells
                ],
                "participation": part,
                "participation_percent": part.rate * 100
                if part is not None and part.published and part.rate is not None
                else None,
            }
        )
    return rows


def _overview_context(request: HttpRequest, organisation: Organisation) -> dict:
    user = request.user
    heatmap = organisation_heatmap(organisation=organisation, user=user)
    team_ids = {row.team_id for row in heatmap.rows if row.team_id is not None}
    participation = _latest_participation(organisation=organisation, team_ids=team_ids)
    open_flags = flags_by_severity(flags_for(user=user))
    log = (
        FlagEvent.objects.filter(flag__organisation=organisation)
        .select_related("flag__team", "actor")
        .order_by("-at", "-pk")
    )
    page = Paginator(log, LOG_PAGE_SIZE).get_page(request.GET.get("log_page"))
    return {
        "organisation": organisation,
        "dimensions": [(d, dimension_label(d)) for d in heatmap.dimensions],
        "rows": _overview_rows(heatmap, participation),
        "open_flags": open_flags,
        "log_page": page,
        "k": organisation.anonymity_threshold,
        "impact_cards": organisation_impact_cards(organisation=organisation),
        # the organisation's own group, stored at close through the guard like a team's
        "comments": organisation_comments(organisation=organisation),
    }


@login_required
@require_GET
def organisation_overview(request: HttpRequest) -> HttpResponse:
    organisation = _admin_organisation_or_404(request.user)
    return render(request, "dashboards/organisation.html", _overview_context(request, organisation))


def overview_csv_rows(
    heatmap: Heatmap, participation: dict[int | None, TeamParticipation]
) -> tuple[list[str], list[list[object]]]:
    """The heatmap and participation as the page shows them: published numbers or a label."""
    not_enough = _("not enough responses")
    header = [_("Team"), _("Customer-facing"), _("Cycle starting"), _("Participation %")]
    for dimension in heatmap.dimensions:
        label = dimension_label(dimension)
        header += [label, _("%(dimension)s change") % {"dimension": label}]
    out: list[list[object]] = []
    for row in _overview_rows(heatmap, participation):
        heat: HeatmapRow = row["row"]
        line: list[object] = [
            heat.name if heat.team_id is not None else _("Whole organisation"),
            heat.customer_facing,
            heat.period_start,
            round(row["participation_percent"], 1)
            if row["participation_percent"] is not None
            else not_enough,
        ]
        for cell in heat.cells:
            if cell.published and cell.index is not None:
                line += [round(cell.index, 1), "" if cell.change is None else cell.change]
            else:
                line += [not_enough, ""]
        out.append(line)
    return header, out


def _csv_download(header: list[str], rows: list[list[object]], *, name: str) -> HttpResponse:
    response = HttpResponse(csv_text(header, rows), content_type="text/csv; charset=utf-8")
    filename = f"pulse-{name}-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def organisation_export(request: HttpRequest) -> HttpResponse:
    organisation = _admin_organisation_or_404(request.user)
    heatmap = organisation_heatmap(organisation=organisation, user=request.user)
    team_ids = {row.team_id for row in heatmap.rows if row.team_id is not None}
    participation = _latest_participation(organisation=organisation, team_ids=team_ids)
    header, rows = overview_csv_rows(heatmap, participation)
    return _csv_download(header, rows, name=organisation.slug)


def team_csv_rows(
    trends: Mapping[str, Sequence[TrendPoint]],
) -> tuple[list[str], list[list[object]]]:
    """The team page's tables in one sheet, newest cycle first: per cycle and dimension the
    published index, its interval and the responses behind it, or a label where the page shows
    a gap; and the cycle's participation."""
    not_enough = _("not enough responses")
    header = [
        _("Cycle starting"),
        _("Dimension"),
        _("Index"),
        _("Interval from"),
        _("Interval to"),
        _("Responses"),
        _("Participation %"),
    ]
    dated: list[tuple[date, list[object]]] = []
    for dimension, points in trends.items():
        label = dimension_label(dimension)
        for row in _trend_rows(points):
            rate = row["participation_percent"]
            participation = not_enough if rate is None else round(rate, 1)
            if row["published"] and row["index"] is not None:
                figures = [round(row["index"], 1), row["ci_low"], row["ci_high"], row["n"]]
            else:
                figures = [not_enough, "", "", ""]
            dated.append(
                (row["period_start"], [row["period_start"], label, *figures, participation])
            )
    dated.sort(key=lambda pair: pair[0], reverse=True)  # stable: dimensions keep their order
    return header, [row for _start, row in dated]


@login_required
@require_GET
def team_export(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """What the team page shows, for a spreadsheet (the same window of cycles)."""
    team = _visible_team_or_404(request.user, public_id)
    cycles = _cycles_param(request)
    trends = {d: team_trend(team=team, dimension=d, cycles=cycles) for d in DIMENSIONS}
    header, rows = team_csv_rows(trends)
    name = f"{team.organisation.slug}-{slugify(team.name) or 'team'}"
    return _csv_download(header, rows, name=name)
