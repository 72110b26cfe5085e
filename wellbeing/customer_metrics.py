"""Customer-service signals per team and week, and their lagged association with team stress.

Writes: ``customer_metric_values_import`` (CSV/XLSX upload after a preview, or the helpdesk API)
plans every row against the organisation, refuses the whole batch when any row is wrong, and
otherwise writes it in one transaction, audited; posting the same rows twice changes nothing.
Reads: ``team_metric_series`` (a team's weekly values), ``organisation_impact`` (the
within-team lagged association, ``wellbeing.stats.impact``) and ``customer_evidence`` (a
worsening metric cited by the empathy-risk flag).

Team-level numbers only: a column or field that looks like personal data (e-mail, name, agent,
customer, phone, ticket or person ids) is refused with a clear error, and nothing about a person
is stored.  The analysis reads published (>= k) stored aggregates only, never responses, so it
can never carry a figure from fewer than k people.  Never logs values or file contents.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from . import flag_text
from .analytics_selectors import primary_rows
from .audit import audit_record
from .errors import ServiceError
from .models import (
    CustomerMetric,
    CustomerMetricValue,
    CycleResult,
    Flag,
    Organisation,
    Scope,
    Team,
    TeamAggregate,
    User,
)
from .people_import import _TeamIndex
from .stats.impact import ImpactSummary, MetricTrend, impact_summary, metric_trend
from .tabular_import import (
    MAX_CELL_CHARS,
    ImportIssue,
    TabularFile,
    TabularPlan,
    cell_text,
    header_key,
    issues_error,
    parse_date,
    tabular_file_read,
)
from .tabular_import import rows_dump as rows_dump
from .tabular_import import rows_load as tabular_rows_load

logger = logging.getLogger("pulse.customer_metrics")

MAX_ROWS = 20_000
MAX_API_ITEMS = 5_000
IMPACT_DIMENSIONS = ("stress", "client_burnout")
EVIDENCE_WEEKS = 8


# --- Metric definitions -------------------------------------------------------------------------


@dataclass(frozen=True)
class StandardMetric:
    key: str
    name: str
    unit: str
    direction: str
    min_value: float
    max_value: float


HIGHER_BETTER = CustomerMetric.Direction.HIGHER_IS_BETTER.value
HIGHER_WORSE = CustomerMetric.Direction.HIGHER_IS_WORSE.value

# Known by key: a file or API call may use these before an admin defines them.
STANDARD_METRICS: dict[str, StandardMetric] = {
    m.key: m
    for m in (
        StandardMetric("csat", "CSAT (% satisfied)", "%", HIGHER_BETTER, 0.0, 100.0),
        StandardMetric("csat_mean", "CSAT (mean rating 1-5)", "", HIGHER_BETTER, 1.0, 5.0),
        StandardMetric("qa_empathy", "QA empathy score", "points", HIGHER_BETTER, 0.0, 100.0),
        StandardMetric("complaint_rate", "Complaint rate", "%", HIGHER_WORSE, 0.0, 100.0),
        StandardMetric("escalation_rate", "Escalation rate", "%", HIGHER_WORSE, 0.0, 100.0),
        StandardMetric("fcr", "First-contact resolution", "%", HIGHER_BETTER, 0.0, 100.0),
    )
}


def customer_metric_create(
    *,
    organisation: Organisation,
    key: str,
    name: str,
    unit: str = "",
    direction: str = HIGHER_BETTER,
    min_value: float = 0.0,
    max_value: float = 100.0,
    actor: User | None = None,
) -> CustomerMetric:
    """Define a metric (audited).  ``ServiceError`` when the key exists or the range is empty."""
    key = key.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", key):
        raise ServiceError(
            "invalid",
            _("Use 1-40 lower-case letters, digits, - or _ for the key."),
            fields={"key": [_("Invalid key.")]},
        )
    if direction not in CustomerMetric.Direction.values:
        raise ServiceError("invalid", _("Unknown direction."), fields={"direction": ["?"]})
    if not (math.isfinite(min_value) and math.isfinite(max_value)) or max_value <= min_value:
        raise ServiceError(
            "invalid",
            _("The highest valid value must be above the lowest."),
            fields={"max_value": [_("Must be above the lowest valid value.")]},
        )
    with transaction.atomic():
        # The import defines standard metrics under this lock too: either waits for the other.
        Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
        try:
            # The key's unique constraint decides, not a check before the insert (two requests
            # could both pass it); the savepoint keeps the transaction usable when it refuses.
            with transaction.atomic():
                metric = CustomerMetric.objects.create(
                    organisation=organisation,
                    key=key,
                    name=name.strip() or key,
                    unit=unit.strip(),
                    direction=direction,
                    min_value=min_value,
                    max_value=max_value,
                )
        except IntegrityError:
            raise ServiceError(
                "duplicate",
                _("A metric with this key exists."),
                fields={"key": [_("Already used.")]},
            )
        audit_record(
            organisation=organisation,
            actor=actor,
            action="customer_metric.create",
            target=metric,
            after={"key": key, "direction": direction, "range": [min_value, max_value]},
        )
    return metric


def customer_metrics_of(*, organisation: Organisation) -> list[CustomerMetric]:
    return list(CustomerMetric.objects.filter(organisation=organisation).order_by("name"))


# --- Reading uploads and API items (no database) ------------------------------------------------

COLUMN_ALIASES = {
    "metric": "metric",
    "metric_key": "metric",
    "measure": "metric",
    "team": "team",
    "team_path": "team",
    "team_id": "team",
    "team_name": "team",
    "week": "week_start",
    "week_start": "week_start",
    "week_starting": "week_start",
    "week_of": "week_start",
    "value": "value",
}
REQUIRED_COLUMNS = ("metric", "team", "week_start", "value")

# Names that suggest a column about a person rather than a team.  Checked after the aliases, so
# "team_id" and "team_name" stay allowed.
PERSONAL_PATTERNS = re.compile(
    r"(^|_)(e_?mail|mail|name|first_?name|last_?name|surname|agent|customer|client|caller|"
    r"phone|mobile|tel|user|username|employee|person|staff|rep|contact|ticket|case|"
    r"account|ip|address|dob|birth)(_|$)|(^|_)(id|uuid)$"
)


def looks_personal(column_key: str) -> bool:
    return column_key not in COLUMN_ALIASES and bool(PERSONAL_PATTERNS.search(column_key))


def _personal_issue(row: int | None, column: str) -> ImportIssue:
    return ImportIssue(
        row,
        column,
        _(
            "“%(name)s” looks like personal data (a person, customer or ticket). Pulse takes "
            "team-level numbers only: remove this column and send one value per team and week."
        )
        % {"name": column},
    )


@dataclass(frozen=True)
class MetricRow:
    row: int
    metric: str  # key, lower-case
    team: str  # public id or path as given
    week_start: date  # the Monday of the week
    value: float

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "metric": self.metric,
            "team": self.team,
            "week_start": self.week_start.isoformat(),
            "value": self.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricRow:
        return cls(
            row=int(data["row"]),
            metric=str(data["metric"]),
            team=str(data["team"]),
            week_start=date.fromisoformat(data["week_start"]),
            value=float(data["value"]),
        )


@dataclass
class MetricFile(TabularFile[MetricRow]):
    """A customer-metric upload read and validated (see ``metric_file_read``)."""


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_number(day: date) -> int:
    """Consecutive integers for consecutive weeks (Monday-based)."""
    return (week_monday(day).toordinal() - 1) // 7


def _parse_value(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError("bool")
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:  # an integer beyond any float (JSON or an XLSX cell allows it)
            raise ValueError("out of range")
    else:
        text = cell_text(raw).replace("\u00a0", "").replace(" ", "").rstrip("%")
        if re.fullmatch(r"-?\d+,\d+", text):  # a decimal comma (German/French exports)
            text = text.replace(",", ".")
        value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _row_validate(
    index: int, cells: Mapping[str, Any], first_row_of: dict[tuple[str, str, date], int]
) -> tuple[MetricRow | None, list[ImportIssue]]:
    issues: list[ImportIssue] = []
    for column, cell in cells.items():
        if len(cell_text(cell)) > MAX_CELL_CHARS:
            issues.append(ImportIssue(index, column, _("The value is too long.")))
    metric = cell_text(cells.get("metric", "")).lower()
    team = cell_text(cells.get("team", ""))
    if not metric:
        issues.append(ImportIssue(index, "metric", _("The metric is empty.")))
    if not team:
        issues.append(ImportIssue(index, "team", _("The team is empty.")))
    elif "@" in team:
        issues.append(_personal_issue(index, "team"))
    week: date | None = None
    raw_week = cells.get("week_start", "")
    if cell_text(raw_week) == "":
        issues.append(ImportIssue(index, "week_start", _("The week is empty.")))
    else:
        try:
            week = week_monday(parse_date(raw_week))
        except ValueError:
            issues.append(
                ImportIssue(index, "week_start", _("Not a date; write it as YYYY-MM-DD."))
            )
    value: float | None = None
    try:
        value = _parse_value(cells.get("value", ""))
    except (TypeError, ValueError):
        issues.append(ImportIssue(index, "value", _("Not a number.")))
    if not issues and week is not None:
        key = (metric, team.casefold(), week)
        if key in first_row_of:
            issues.append(
                ImportIssue(
                    index,
                    "week_start",
                    _("Duplicate: the same metric, team and week is already on row %(row)d.")
                    % {"row": first_row_of[key]},
                )
            )
        else:
            first_row_of[key] = index
    if issues or week is None or value is None:
        return None, issues
    return MetricRow(row=index, metric=metric, team=team, week_start=week, value=value), []


def _unknown_column(key: str, raw: Any) -> ImportIssue:
    if looks_personal(key):
        return _personal_issue(1, cell_text(raw))
    return ImportIssue(
        1,
        cell_text(raw),
        _("Unknown column “%(name)s”; expected metric, team, week_start, value.")
        % {"name": cell_text(raw)},
    )


def metric_file_read(*, data: bytes, filename: str = "") -> MetricFile:
    """Parse and validate an upload (CSV or XLSX, long format: metric, team, week_start, value).
    Raises ``ImportFileError`` when the file as a whole is unusable."""
    first_row_of: dict[tuple[str, str, date], int] = {}
    return tabular_file_read(
        data=data,
        filename=filename,
        file_type=MetricFile,
        too_large=_("The file is larger than %(mb)d MB; split it."),
        aliases=COLUMN_ALIASES,
        required=REQUIRED_COLUMNS,
        unknown_column=_unknown_column,
        max_rows=MAX_ROWS,
        row_validate=lambda index, cells: _row_validate(index, cells, first_row_of),
    )


def metric_items_read(items: Any) -> tuple[list[MetricRow], list[ImportIssue]]:
    """The API's list of ``{metric, team, week_start, value}`` objects; ``row`` is the item's
    position counted from 1.  Any other field is refused (personal-looking ones by name)."""
    if not isinstance(items, list):
        return [], [ImportIssue(None, "values", _("Send a list of objects."))]
    if len(items) > MAX_API_ITEMS:
        return [], [
            ImportIssue(
                None, "values", _("At most %(n)d values per request.") % {"n": MAX_API_ITEMS}
            )
        ]
    rows: list[MetricRow] = []
    issues: list[ImportIssue] = []
    first_row_of: dict[tuple[str, str, date], int] = {}
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            issues.append(ImportIssue(position, "item", _("Not an object.")))
            continue
        cells: dict[str, Any] = {}
        extra = False
        for raw_key, value in item.items():
            key = header_key(raw_key)
            canonical = COLUMN_ALIASES.get(key)
            if canonical is None or canonical in cells:
                extra = True
                if looks_personal(key):
                    issues.append(_personal_issue(position, str(raw_key)[:60]))
                else:
                    issues.append(
                        ImportIssue(
                            position,
                            str(raw_key)[:60],
                            _("Unknown field; send metric, team, week_start and value only."),
                        )
                    )
                continue
            cells[canonical] = "" if value is None else value
        if extra:
            continue
        row, row_issues = _row_validate(position, cells, first_row_of)
        issues.extend(row_issues)
        if row is not None:
            rows.append(row)
    return rows, issues


# --- Planning (reads the database) --------------------------------------------------------------


@dataclass(frozen=True)
class PlannedValue:
    kind: str  # "metric_create" | "value_create" | "value_update"
    row: int | None
    metric: str
    team: str  # the team's full path, for the preview
    week_start: date | None
    before: float | None
    after: float | None
    team_id: int | None = None


@dataclass
class MetricPlan(TabularPlan[PlannedValue]):
    unchanged: int = 0

    def counts(self) -> dict[str, int]:
        counts = {"metric_create": 0, "value_create": 0, "value_update": 0}
        for change in self.changes:
            counts[change.kind] += 1
        counts["unchanged"] = self.unchanged
        return counts

    def summary(self) -> str:
        c = self.counts()
        return _(
            "%(create)d new values, %(update)d changed, %(same)d unchanged, "
            "%(metrics)d metrics defined"
        ) % {
            "create": c["value_create"],
            "update": c["value_update"],
            "same": c["unchanged"],
            "metrics": c["metric_create"],
        }


@dataclass(frozen=True)
class HistoryWindow:
    first_week: date
    last_week: date


def history_window(*, organisation: Organisation, today: date) -> HistoryWindow:
    """Weeks a value may be given for: from the organisation's first check-in cycle (or its
    creation, if earlier) to the current week.  Older or future weeks are refused."""
    first_cycle = (
        CycleResult.objects.filter(organisation=organisation)
        .order_by("period_start")
        .values_list("period_start", flat=True)
        .first()
    )
    created = organisation.created_at.astimezone(organisation.tz).date()
    first = min(first_cycle, created) if first_cycle else created
    return HistoryWindow(first_week=week_monday(first), last_week=week_monday(today))


class _TeamLookup:
    def __init__(self, organisation: Organisation) -> None:
        self.index = _TeamIndex(organisation)
        self.by_public_id = {
            str(public_id): pk
            for pk, public_id in Team.objects.filter(organisation=organisation).values_list(
                "id", "public_id"
            )
        }
        names: dict[str, list[int]] = defaultdict(list)
        for pk, path in self.index.path_of.items():
            if path:
                names[path[-1].casefold()].append(pk)
        self.unique_names = {name: ids[0] for name, ids in names.items() if len(ids) == 1}

    def find(self, text: str) -> int | None:
        try:
            return self.by_public_id.get(str(uuid.UUID(text.strip())))
        except ValueError:
            pass
        parts = tuple(p.strip().casefold() for p in text.split("/"))
        if self.index.unreachable_reason(parts) is not None:
            return None
        found = self.index.id_of.get(parts)
        if found is None and len(parts) == 1:
            found = self.unique_names.get(parts[0])
        return found

    def unreachable_reason(self, text: str) -> str | None:
        return self.index.unreachable_reason([p.strip() for p in text.split("/")])

    def path(self, team_id: int) -> str:
        return " / ".join(self.index.path_of.get(team_id, ()))


def metric_values_plan(
    *, organisation: Organisation, rows: Sequence[MetricRow], today: date
) -> MetricPlan:
    """The changes ``rows`` imply, and the row issues only the database reveals: unknown
    metrics and teams, weeks outside the organisation's history, values out of range."""
    plan = MetricPlan()
    metrics = {m.key: m for m in CustomerMetric.objects.filter(organisation=organisation)}
    teams = _TeamLookup(organisation)
    window = history_window(organisation=organisation, today=today)
    defined_here: set[str] = set()
    resolved: list[tuple[MetricRow, str, int]] = []
    for r in rows:
        row_ok = True
        definition: CustomerMetric | StandardMetric | None = metrics.get(r.metric)
        if definition is None:
            definition = STANDARD_METRICS.get(r.metric)
            if definition is None:
                plan.issues.append(
                    ImportIssue(
                        r.row,
                        "metric",
                        _(
                            "Unknown metric “%(key)s”. Define it under Customer metrics first, "
                            "or use one of: %(known)s."
                        )
                        % {"key": r.metric, "known": ", ".join(sorted(STANDARD_METRICS))},
                    )
                )
                row_ok = False
            elif r.metric not in defined_here:
                defined_here.add(r.metric)
                plan.changes.append(
                    PlannedValue("metric_create", r.row, r.metric, "", None, None, None)
                )
        team_id = teams.find(r.team)
        unreachable = teams.unreachable_reason(r.team) if team_id is None else None
        if unreachable is not None:
            plan.issues.append(
                ImportIssue(
                    r.row, "team", _("%(reason)s Or give the team's id.") % {"reason": unreachable}
                )
            )
            row_ok = False
        elif team_id is None:
            plan.issues.append(
                ImportIssue(
                    r.row,
                    "team",
                    _(
                        "Unknown team “%(team)s”: give its id or its path from the top, "
                        "e.g. Customer Experience / Support Tier 1."
                    )
                    % {"team": r.team[:200]},
                )
            )
            row_ok = False
        if not (window.first_week <= r.week_start <= window.last_week):
            plan.issues.append(
                ImportIssue(
                    r.row,
                    "week_start",
                    _("The week %(week)s is outside the organisation's history (%(a)s to %(b)s).")
                    % {
                        "week": r.week_start.isoformat(),
                        "a": window.first_week.isoformat(),
                        "b": window.last_week.isoformat(),
                    },
                )
            )
            row_ok = False
        if definition is not None and not (definition.min_value <= r.value <= definition.max_value):
            plan.issues.append(
                ImportIssue(
                    r.row,
                    "value",
                    _("%(value)s is outside the valid range %(low)s to %(high)s for %(name)s.")
                    % {
                        "value": f"{r.value:g}",
                        "low": f"{definition.min_value:g}",
                        "high": f"{definition.max_value:g}",
                        "name": definition.name,
                    },
                )
            )
            row_ok = False
        if row_ok and team_id is not None:
            resolved.append((r, r.metric, team_id))
    # Two spellings of one team (its id and its path) on two rows are still one duplicate.
    seen: dict[tuple[str, int, date], int] = {}
    for r, key, team_id in resolved:
        first = seen.setdefault((key, team_id, r.week_start), r.row)
        if first != r.row:
            plan.issues.append(
                ImportIssue(
                    r.row,
                    "team",
                    _("Duplicate: the same metric, team and week is already on row %(row)d.")
                    % {"row": first},
                )
            )
    existing: dict[tuple[str, int, date], float] = {}
    if resolved:
        weeks = [r.week_start for r, _k, _t in resolved]
        for key, team_id, week, value in CustomerMetricValue.objects.filter(
            metric__organisation=organisation,
            team_id__in={t for _r, _k, t in resolved},
            week_start__gte=min(weeks),
            week_start__lte=max(weeks),
        ).values_list("metric__key", "team_id", "week_start", "value"):
            existing[(key, team_id, week)] = value
    for r, key, team_id in resolved:
        before = existing.get((key, team_id, r.week_start))
        if before is None:
            kind = "value_create"
        elif before == r.value:
            plan.unchanged += 1
            continue
        else:
            kind = "value_update"
        plan.changes.append(
            PlannedValue(
                kind, r.row, key, teams.path(team_id), r.week_start, before, r.value, team_id
            )
        )
    plan.issues.sort(key=lambda i: (i.row or 0, i.column))
    return plan


# --- Applying -------------------------------------------------------------------------------


@dataclass
class MetricImportResult:
    plan: MetricPlan
    counts: dict[str, int]


def metric_issues_error(issues: Sequence[ImportIssue]) -> ServiceError:
    return issues_error(issues, _("Some values have errors; nothing was imported."))


def customer_metric_values_import(
    *,
    organisation: Organisation,
    rows: Sequence[MetricRow],
    actor: User | None,
    today: date,
    expected_digest: str | None = None,
    source: str = "",
) -> MetricImportResult:
    """Plan ``rows`` again under the organisation's lock and write them all or nothing.

    ``ServiceError`` "invalid" (400) when any row has an issue, "stale" (409) when the values
    changed since the preview with ``expected_digest``.  Idempotent: the same rows again are
    all "unchanged".  Active empathy-risk flags of the teams touched get their customer
    evidence refreshed in the same transaction."""
    with transaction.atomic():
        Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
        plan = metric_values_plan(organisation=organisation, rows=rows, today=today)
        if plan.issues:
            raise metric_issues_error(plan.issues)
        if expected_digest is not None and plan.digest != expected_digest:
            raise ServiceError(
                "stale",
                _("Customer metrics changed since the preview; review the new preview."),
                status=409,
            )
        metrics = {m.key: m for m in CustomerMetric.objects.filter(organisation=organisation)}
        for change in plan.changes:
            if change.kind == "metric_create" and change.metric not in metrics:
                standard = STANDARD_METRICS[change.metric]
                metrics[change.metric] = CustomerMetric.objects.create(
                    organisation=organisation, **asdict(standard)
                )
        creates = [
            CustomerMetricValue(
                metric=metrics[c.metric],
                team_id=c.team_id,
                week_start=c.week_start,
                value=c.after,
            )
            for c in plan.changes
            if c.kind == "value_create"
        ]
        CustomerMetricValue.objects.bulk_create(creates, batch_size=1000)
        now = timezone.now()
        for c in plan.changes:
            if c.kind == "value_update":
                CustomerMetricValue.objects.filter(
                    metric=metrics[c.metric], team_id=c.team_id, week_start=c.week_start
                ).update(value=c.after, updated_at=now)
        counts = plan.counts()
        if plan.changes:
            audit_record(
                organisation=organisation,
                actor=actor,
                action="customer_metrics.import",
                target=source or "customer metrics import",
                after={k: v for k, v in counts.items() if v},
            )
            touched = {c.team_id for c in plan.changes if c.team_id is not None}
            empathy_flags_customer_evidence_refresh(
                organisation=organisation, team_ids=touched, until=today
            )
    logger.info(
        "event=customer_metrics_import organisation=%s created=%d updated=%d unchanged=%d",
        organisation.pk,
        counts["value_create"],
        counts["value_update"],
        counts["unchanged"],
    )
    return MetricImportResult(plan=plan, counts=counts)


def rows_load(text: str) -> list[MetricRow]:
    return tabular_rows_load(text, row_type=MetricRow)


# --- Reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricWeek:
    week_start: date
    value: float


def team_metric_series(
    *, team: Team, metric: CustomerMetric, since: date | None = None
) -> list[MetricWeek]:
    rows = CustomerMetricValue.objects.filter(team=team, metric=metric)
    if since is not None:
        rows = rows.filter(week_start__gte=week_monday(since))
    return [
        MetricWeek(w, v) for w, v in rows.order_by("week_start").values_list("week_start", "value")
    ]


def team_metrics(*, team: Team) -> list[CustomerMetric]:
    """Metrics that have at least one value for ``team``."""
    return list(CustomerMetric.objects.filter(values__team=team).distinct().order_by("name"))


def published_index_by_week(
    *, organisation: Organisation, team_ids: Iterable[int], dimension: str
) -> dict[int, dict[int, float]]:
    """team id -> week number -> the team's published headline index (subtree for a parent,
    its own members for a leaf); suppressed cycles are simply absent."""
    rows = TeamAggregate.objects.filter(
        result__organisation=organisation,
        team_id__in=list(team_ids),
        dimension=dimension,
        scope__in=[Scope.TEAM, Scope.SUBTREE],
    ).select_related("result")
    out: dict[int, dict[int, float]] = defaultdict(dict)
    ordered = sorted(
        primary_rows(rows).values(), key=lambda r: (r.result.period_start, r.result.closed_at)
    )
    for row in ordered:  # a later cycle in the same week wins
        if row.published and row.index is not None and row.team_id is not None:
            out[row.team_id][week_number(row.result.period_start)] = float(row.index)
    return dict(out)


@dataclass(frozen=True)
class MetricImpact:
    metric: CustomerMetric
    dimension: str
    summary: ImpactSummary


def organisation_impact(
    *, organisation: Organisation, dimensions: Sequence[str] = IMPACT_DIMENSIONS
) -> list[MetricImpact]:
    """For every metric with values and each dimension: the lagged within-team association
    (``wellbeing.stats.impact``), from published stored aggregates only."""
    # metric id -> team id -> week number -> value
    values: dict[int, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for metric_id, team_id, week, value in CustomerMetricValue.objects.filter(
        metric__organisation=organisation
    ).values_list("metric_id", "team_id", "week_start", "value"):
        values[metric_id][team_id][week_number(week)] = value
    if not values:
        return []
    team_ids = {t for by_team in values.values() for t in by_team}
    out = []
    metrics = CustomerMetric.objects.filter(pk__in=list(values)).order_by("name")
    for dimension in dimensions:
        index = published_index_by_week(
            organisation=organisation, team_ids=team_ids, dimension=dimension
        )
        for metric in metrics:
            summary = impact_summary(index, values[metric.pk])
            out.append(MetricImpact(metric=metric, dimension=dimension, summary=summary))
    return out


# --- Supporting evidence for the empathy-risk flag ----------------------------------------------


def customer_evidence(
    *, team_ids: Iterable[int], until: date, weeks: int = EVIDENCE_WEEKS
) -> dict[int, dict[str, Any]]:
    """team id -> evidence of a customer metric getting worse over the last ``weeks`` weeks up
    to ``until``'s week (Theil-Sen slope, Mann-Kendall p).  Teams without one are absent."""
    last = week_monday(until)
    first = last - timedelta(weeks=weeks - 1)
    series: dict[tuple[int, int], list[tuple[date, float]]] = defaultdict(list)
    metrics: dict[int, CustomerMetric] = {}
    for row in (
        CustomerMetricValue.objects.filter(
            team_id__in=list(team_ids), week_start__gte=first, week_start__lte=last
        )
        .select_related("metric")
        .order_by("week_start")
    ):
        series[(row.team_id, row.metric_id)].append((row.week_start, row.value))
        metrics[row.metric_id] = row.metric
    out: dict[int, dict[str, Any]] = {}
    for (team_id, metric_id), points in sorted(series.items()):
        if team_id in out:
            continue
        metric = metrics[metric_id]
        by_week = dict(points)
        ordered = [by_week.get(first + timedelta(weeks=i)) for i in range(weeks)]
        trend: MetricTrend = metric_trend(ordered, higher_is_better=metric.higher_is_better)
        if not trend.worsening:
            continue
        out[team_id] = {
            "key": metric.key,
            "name": metric.name,
            "unit": metric.unit,
            "direction": metric.direction,
            "first": round(trend.first or 0.0, 2),
            "latest": round(trend.latest or 0.0, 2),
            "slope_per_week": round(trend.slope_per_week or 0.0, 3),
            "slope_ci": [round(trend.slope_low or 0.0, 3), round(trend.slope_high or 0.0, 3)],
            "p_worsening": round(trend.p_worsening or 0.0, 4),
            "weeks": [{"week_start": w.isoformat(), "value": round(v, 2)} for w, v in points],
        }
    return out


def empathy_flags_customer_evidence_refresh(
    *, organisation: Organisation, team_ids: Iterable[int], until: date
) -> int:
    """Re-cite customer evidence on the active empathy-risk flags of ``team_ids`` (after new
    values arrive between cycles).  Returns how many flags changed."""
    flags = list(
        Flag.objects.filter(
            organisation=organisation,
            team_id__in=list(team_ids),
            kind=Flag.Kind.EMPATHY_RISK,
            state__in=list(Flag.ACTIVE_STATES),
        )
    )
    if not flags:
        return 0
    changed = 0
    for flag in flags:
        # The same window as at cycle close: the weeks up to the latest cycle the flag saw.
        found = customer_evidence(
            team_ids=[flag.team_id], until=min(until, flag.last_evaluated_period)
        ).get(flag.team_id)
        new_evidence = dict(flag.evidence or {})
        if found is None:
            new_evidence.pop("customer", None)
        else:
            new_evidence["customer"] = found
        # Flags stored before their evidence carried the conclusions keep their text.
        explanation = flag_text.record(flag.kind, new_evidence) or flag.explanation
        if new_evidence != flag.evidence or explanation != flag.explanation:
            flag.evidence = new_evidence
            flag.explanation = explanation
            flag.save(update_fields=["evidence", "explanation"])
            changed += 1
    return changed


def today_for(organisation: Organisation) -> date:
    return datetime.now(organisation.tz).date()


# --- Presentation: wording and the overlay chart (the caller renders; no numbers below k) -------

LAG_WORDS = {
    0: "in the same week",
    1: "one week later",
    2: "two weeks later",
    3: "three weeks later",
    4: "four weeks later",
}
DIMENSION_WORDS = {"stress": "team stress", "client_burnout": "client-related burnout"}
CAUTION = (
    "This is an association within teams over time, not proof that one causes the other: "
    "a busy season, for example, can raise stress and lower customer scores at once."
)


def _unit_words(metric: CustomerMetric) -> str:
    if metric.unit == "%":
        return " percentage points"
    return f" {metric.unit}" if metric.unit else ""


def _per_ten(value: float | None) -> str:
    return "" if value is None else f"{10 * value:+.1f}".replace("-", "\u2212")


def impact_card(item: MetricImpact) -> dict[str, Any]:
    """Headline sentence and per-lag rows for one metric and dimension."""
    summary, metric = item.summary, item.metric
    subject = DIMENSION_WORDS.get(item.dimension, item.dimension)
    units = _unit_words(metric)
    rows = [
        {
            "lag": e.lag,
            "enough": e.enough,
            "change": _per_ten(e.slope),
            "low": _per_ten(e.ci_low),
            "high": _per_ten(e.ci_high),
            "teams": e.n_teams,
            "team_weeks": e.n_team_weeks,
            "excludes_zero": e.excludes_zero,
        }
        for e in summary.lags
    ]
    head = summary.headline
    if head is None:
        most = max(summary.lags, key=lambda e: (e.n_teams, e.n_team_weeks))
        sentence = (
            f"Not enough data yet to relate {subject} to {metric.name}: this needs at least "
            f"{summary.min_teams} teams and {summary.min_team_weeks} team-weeks with both a "
            f"published {subject} figure and a {metric.name} value (now {most.n_teams} teams, "
            f"{most.n_team_weeks} team-weeks)."
        )
        status = "not_enough"
    elif summary.association:
        sentence = (
            f"A 10-point rise in {subject} is followed {LAG_WORDS.get(head.lag, '')} by a "
            f"{metric.name} change of {_per_ten(head.slope)}{units} (95 % interval "
            f"{_per_ten(head.ci_low)} to {_per_ten(head.ci_high)}, allowing for the "
            f"{len(summary.lags)} lags looked at) across {head.n_teams} teams and "
            f"{head.n_team_weeks} team-weeks."
        )
        if head.lag == 0:
            sentence = sentence.replace("is followed in the same week by", "goes with")
        status = "association"
    else:
        sentence = (
            f"No clear association between {subject} and {metric.name} at lags of 0 to "
            f"{max(e.lag for e in summary.lags)} weeks: at the strongest lag "
            f"({LAG_WORDS.get(head.lag, '')}) the 95 % interval for a 10-point rise runs from "
            f"{_per_ten(head.ci_low)} to {_per_ten(head.ci_high)}{units}, which includes no "
            f"change ({head.n_teams} teams, {head.n_team_weeks} team-weeks)."
        )
        status = "none"
    return {
        "metric": metric,
        "dimension": item.dimension,
        "subject": subject,
        "status": status,
        "sentence": sentence,
        "caution": CAUTION,
        "rows": rows,
        "units": units.strip(),
    }


def organisation_impact_cards(*, organisation: Organisation) -> list[dict[str, Any]]:
    return [impact_card(item) for item in organisation_impact(organisation=organisation)]


@dataclass(frozen=True)
class OverlayPoint:
    label: str  # the week, already formatted
    index: float | None  # published stress index, None when suppressed or missing
    metric: float | None


def overlay_chart_svg(
    points: Sequence[OverlayPoint],
    *,
    chart_id: str,
    title: str,
    description: str,
    index_label: str,
    metric_label: str,
    metric_range: tuple[float, float],
    width: int = 640,
    height: int = 250,
) -> str:
    """Stress (left axis, 0-100, solid line, circles) and a customer metric (right axis, its own
    scale, dashed line, squares) on the same weeks.  Every string is escaped here."""
    from .charts import _e, _safe_id

    cid = _safe_id(chart_id)
    left, right, top, bottom = 44, 52, 12, 58
    plot_w = max(1, width - left - right)
    plot_h = max(1, height - top - bottom)
    count = len(points)
    step = plot_w / count if count else plot_w
    values = [p.metric for p in points if p.metric is not None]
    low, high = metric_range
    if values:
        pad = max(1.0, (max(values) - min(values)) * 0.15)
        low = max(low, math.floor(min(values) - pad))
        high = min(high, math.ceil(max(values) + pad))
        if high <= low:
            low, high = metric_range

    def x_at(i: int) -> float:
        return left + step * (i + 0.5)

    def y_index(v: float) -> float:
        return top + plot_h * (1 - min(100.0, max(0.0, v)) / 100.0)

    def y_metric(v: float) -> float:
        share = (min(high, max(low, v)) - low) / (high - low)
        return top + plot_h * (1 - share)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart overlay-chart" id="{cid}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc">',
        f'<title id="{cid}-title">{_e(title)}</title>',
        f'<desc id="{cid}-desc">{_e(description)}</desc>',
        '<g class="axis" aria-hidden="true">',
    ]
    for tick in range(5):
        share = tick / 4
        y = top + plot_h * (1 - share)
        metric_tick = low + share * (high - low)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            'stroke="#d5dae0" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#4a5560">{round(share * 100)}</text>'
            f'<text class="metric-tick" x="{left + plot_w + 6}" y="{y + 4:.1f}" font-size="11" '
            f'fill="#8a3b00">{_e(f"{metric_tick:.3g}")}</text>'
        )
    mid = top + plot_h / 2
    parts.append(
        f'<text x="12" y="{mid:.1f}" font-size="11" fill="#4a5560" text-anchor="middle" '
        f'transform="rotate(-90 12 {mid:.1f})">{_e(index_label)}</text>'
        f'<text x="{width - 8}" y="{mid:.1f}" font-size="11" fill="#8a3b00" '
        f'text-anchor="middle" transform="rotate(90 {width - 8} {mid:.1f})">'
        f"{_e(metric_label)}</text></g>"
    )

    def runs(attr: str) -> list[list[int]]:
        out: list[list[int]] = []
        current: list[int] = []
        for i, p in enumerate(points):
            if getattr(p, attr) is None:
                if current:
                    out.append(current)
                current = []
            else:
                current.append(i)
        if current:
            out.append(current)
        return out

    for run in runs("index"):
        if len(run) > 1:
            line = " ".join(f"{x_at(i):.1f},{y_index(points[i].index or 0):.1f}" for i in run)
            parts.append(
                f'<polyline class="series series-index" points="{line}" fill="none" '
                'stroke="#0b5cad" stroke-width="2.5"/>'
            )
    for run in runs("metric"):
        if len(run) > 1:
            line = " ".join(f"{x_at(i):.1f},{y_metric(points[i].metric or 0):.1f}" for i in run)
            parts.append(
                f'<polyline class="series series-metric" points="{line}" fill="none" '
                'stroke="#b35900" stroke-width="2.5" stroke-dasharray="6 4"/>'
            )
    for i, p in enumerate(points):
        x = x_at(i)
        if p.index is not None:
            parts.append(
                f'<g class="point point-index"><title>{_e(p.label)}: {_e(index_label)} '
                f"{p.index:.1f}</title>"
                f'<circle cx="{x:.1f}" cy="{y_index(p.index):.1f}" r="4" fill="#0b5cad" '
                'stroke="#fff" stroke-width="1.5"/></g>'
            )
        if p.metric is not None:
            y = y_metric(p.metric)
            parts.append(
                f'<g class="point point-metric"><title>{_e(p.label)}: {_e(metric_label)} '
                f"{p.metric:g}</title>"
                f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="#b35900" '
                'stroke="#fff" stroke-width="1.5"/></g>'
            )
    widest = max((len(p.label) for p in points), default=1) * 5.5 + 10
    every = max(1, math.ceil(count * widest / plot_w)) if count else 1
    parts.append('<g class="x-labels" aria-hidden="true">')
    for i, p in enumerate(points):
        if (count - 1 - i) % every:
            continue
        parts.append(
            f'<text x="{x_at(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
            f'font-size="10" fill="#4a5560">{_e(p.label)}</text>'
        )
    ly = height - 14
    parts.append(
        '</g><g class="legend" aria-hidden="true" font-size="11" fill="#1b1f24">'
        f'<circle cx="{left + 6}" cy="{ly - 4}" r="4" fill="#0b5cad"/>'
        f'<text x="{left + 14}" y="{ly}">{_e(index_label)} (left axis)</text>'
        f'<rect x="{left + 260}" y="{ly - 8}" width="8" height="8" fill="#b35900"/>'
        f'<text x="{left + 274}" y="{ly}">{_e(metric_label)} (right axis)</text></g></svg>'
    )
    return "".join(parts)
