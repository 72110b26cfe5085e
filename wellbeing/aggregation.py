"""Per-cycle aggregates stored through the anonymity guard, then trend detection and flags.

For one closed cycle: per team (its direct members), per parent team (its whole subtree) and for
the organisation, and per dimension, store n, the 0-100 index, its spread, a t-interval and a
bucketed distribution, plus participation.  The guard (``wellbeing.guard``) is applied HERE, at
store time: a cell that may not be published (fewer than k, or complementary suppression against
differencing) is stored without any number, not even its n, so no later code can leak it.

Never: read check-in responses (check-ins hand over plain indices), log answers or scores, or let
one team's corrupted input stop the others.  Idempotent per ``cycle_key``: storing again replaces
the cycle's rows in one transaction (and does not re-run flags for that cycle).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Max, Q

from .analytics_selectors import TeamTree, team_tree
from .errors import ServiceError
from .guard import Node, delta_publishable, publishable_nodes
from .models import CycleResult, Membership, Organisation, Scope, TeamAggregate, TeamParticipation
from .stats.summary import summarise

if TYPE_CHECKING:
    from .analytics import FlagChange, TeamCycleInput

logger = logging.getLogger(__name__)

ORGANISATION_NODE = 0  # team ids are positive; a parent's direct group is -team_id


@dataclass
class _CleanInput:
    invited: int
    responded: int
    scores: dict[str, list[float]]


class CorruptInput(ValueError):
    """A team's hand-over cannot be trusted; the team is left out of this cycle's figures."""


def _clean(team_input: TeamCycleInput) -> _CleanInput:
    from .analytics import DIMENSIONS

    invited, responded = team_input.invited, team_input.responded
    if not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (invited, responded)
    ):
        raise CorruptInput("counts must be non-negative integers")
    if responded > invited:
        raise CorruptInput("more respondents than invitees")
    scores: dict[str, list[float]] = {}
    for dimension, values in (team_input.scores or {}).items():
        if dimension not in DIMENSIONS:
            raise CorruptInput("unknown dimension")
        kept: list[float] = []
        for value in values:
            if value is None:
                continue  # a skipped dimension: missing, not an error
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise CorruptInput("a score is not a number")
            if math.isnan(value):
                continue
            if not 0.0 <= value <= 100.0:
                raise CorruptInput("a score is outside 0-100")
            kept.append(float(value))
        if len(kept) > responded:
            raise CorruptInput("more scores than respondents")
        scores[dimension] = kept
    return _CleanInput(invited=invited, responded=responded, scores=scores)


@dataclass
class _Layout:
    """The guard's view of the organisation for this cycle: one node per published group."""

    parent: dict[int, int | None] = field(default_factory=dict)  # node -> parent node
    direct: dict[int, int] = field(default_factory=dict)  # node -> team whose input it holds
    rows: list[tuple[int, int | None, str]] = field(default_factory=list)  # node, team, scope

    def subtree_nodes(self) -> dict[int, list[int]]:
        """node -> every node in its subtree (itself included)."""
        children: dict[int, list[int]] = defaultdict(list)
        for node, parent in self.parent.items():
            if parent is not None:
                children[parent].append(node)
        out: dict[int, list[int]] = {}
        for node in self.parent:
            stack, seen = [node], []
            while stack:
                current = stack.pop()
                seen.append(current)
                stack.extend(children.get(current, ()))
            out[node] = seen
        return out


def _layout(tree: TeamTree, inputs: dict[int, _CleanInput]) -> _Layout:
    """Teams in the cycle and their ancestors; a parent with direct members gets a leaf node for
    them so that 'parent minus children' is a cell the guard can see and protect."""
    included: set[int] = set()
    for team_id in inputs:
        included.add(team_id)
        included.update(tree.ancestors(team_id))
    has_children = {tree.teams[t].parent_id for t in included} - {None}
    layout = _Layout()
    layout.parent[ORGANISATION_NODE] = None
    layout.rows.append((ORGANISATION_NODE, None, Scope.ORGANISATION))
    for team_id in sorted(included):
        parent_id = tree.teams[team_id].parent_id
        layout.parent[team_id] = parent_id if parent_id in included else ORGANISATION_NODE
        if team_id in has_children:
            layout.rows.append((team_id, team_id, Scope.SUBTREE))
            if team_id in inputs:
                layout.parent[-team_id] = team_id
                layout.direct[-team_id] = team_id
                layout.rows.append((-team_id, team_id, Scope.TEAM))
        else:
            layout.rows.append((team_id, team_id, Scope.TEAM))
            if team_id in inputs:
                layout.direct[team_id] = team_id
    return layout


def _rosters(
    *, organisation: Organisation, day: date, layout: _Layout, subtrees: dict[int, list[int]]
) -> dict[int, frozenset[int]]:
    """node -> the people it covered on ``day`` (for the over-time differencing rule)."""
    direct_members: dict[int, set[int]] = defaultdict(set)
    for team_id, user_id in Membership.objects.filter(
        Membership.active_on(day), team__organisation=organisation, user__is_active=True
    ).values_list("team_id", "user_id"):
        direct_members[team_id].add(user_id)
    out: dict[int, frozenset[int]] = {}
    for node, members in subtrees.items():
        people: set[int] = set()
        for member in members:
            direct_team = layout.direct.get(member)
            if direct_team is not None:
                people |= direct_members.get(direct_team, set())
        out[node] = frozenset(people)
    return out


def cycle_results_store(
    *,
    organisation: Organisation,
    cycle_key: uuid.UUID,
    period_start: date,
    closed_at: datetime,
    teams: Sequence[TeamCycleInput],
) -> list[FlagChange]:
    """Store the cycle's guarded aggregates and update flags; returns flag changes to alert.

    A second call with the same ``cycle_key`` replaces the stored figures and returns [] (the
    flags were already updated for this cycle)."""
    from .flags import flags_update

    k = organisation.anonymity_threshold
    with transaction.atomic():
        previous = CycleResult.objects.select_for_update().filter(cycle_key=cycle_key).first()
        recompute = previous is not None
        if previous is not None:
            if previous.organisation_id != organisation.pk:
                raise ServiceError(
                    "conflict", "This cycle belongs to another organisation.", status=409
                )
            previous.delete()
        result = CycleResult.objects.create(
            organisation=organisation,
            cycle_key=cycle_key,
            period_start=period_start,
            closed_at=closed_at,
            k=k,
        )
        tree = team_tree(organisation=organisation)
        inputs: dict[int, _CleanInput] = {}
        for team_input in teams:
            if team_input.team_id not in tree.teams:
                logger.error(
                    "event=aggregate_input status=rejected reason=unknown_team team_id=%s",
                    team_input.team_id,
                )
                continue
            try:
                inputs[team_input.team_id] = _clean(team_input)
            except CorruptInput as exc:
                # The reason names the rule broken, never a value.
                logger.error(
                    "event=aggregate_input status=rejected team_id=%s reason=%s",
                    team_input.team_id,
                    str(exc).replace(" ", "_"),
                )
        _aggregates_store(result=result, organisation=organisation, tree=tree, inputs=inputs, k=k)
        logger.info(
            "event=cycle_results_stored result_id=%s teams=%s recompute=%s",
            result.pk,
            len(inputs),
            recompute,
        )
        if recompute:
            return []
        return flags_update(result=result, tree=tree)


def _aggregates_store(
    *,
    result: CycleResult,
    organisation: Organisation,
    tree: TeamTree,
    inputs: dict[int, _CleanInput],
    k: int,
) -> None:
    from .analytics import DIMENSIONS

    if not inputs:
        return
    layout = _layout(tree, inputs)
    subtrees = layout.subtree_nodes()

    def guard(counts: dict[int, int]) -> set[int]:
        nodes = [
            Node(id=node, parent_id=parent, n=counts.get(node, 0))
            for node, parent in layout.parent.items()
        ]
        return publishable_nodes(nodes, k=k)

    # Participation: the respondent count is itself a figure about fewer-than-k people.
    responded = {node: inputs[team].responded for node, team in layout.direct.items()}
    invited = {node: inputs[team].invited for node, team in layout.direct.items()}
    shown = guard(responded)
    participation = []
    for node, team_id, scope in layout.rows:
        total_invited = sum(invited.get(m, 0) for m in subtrees[node])
        total_responded = sum(responded.get(m, 0) for m in subtrees[node])
        published = node in shown
        participation.append(
            TeamParticipation(
                result=result,
                team_id=team_id,
                scope=scope,
                invited=total_invited,
                published=published,
                responded=total_responded if published else None,
                rate=(min(1.0, total_responded / total_invited) if total_invited else 1.0)
                if published
                else None,
            )
        )
    TeamParticipation.objects.bulk_create(participation)

    previous = _previous_published(result=result, layout=layout, dimensions=DIMENSIONS)
    rosters_now: dict[int, frozenset[int]] | None = None
    rosters_then: dict[date, dict[int, frozenset[int]]] = {}

    aggregates = []
    for dimension in DIMENSIONS:
        counts = {
            node: len(inputs[team].scores.get(dimension, []))
            for node, team in layout.direct.items()
        }
        if not any(counts.values()):
            continue  # the survey did not ask this dimension
        allowed = guard(counts)
        for node, team_id, scope in layout.rows:
            summary = None
            if node in allowed:
                scores = [
                    s
                    for m in subtrees[node]
                    if m in layout.direct
                    for s in inputs[layout.direct[m]].scores.get(dimension, [])
                ]
                summary = summarise(scores)
            if summary is None:
                aggregates.append(
                    TeamAggregate(result=result, team_id=team_id, scope=scope, dimension=dimension)
                )
                continue
            delta_ok = False
            previous_period = previous.get((team_id, scope, dimension))
            if previous_period is not None:
                if rosters_now is None:
                    rosters_now = _rosters(
                        organisation=organisation,
                        day=result.period_start,
                        layout=layout,
                        subtrees=subtrees,
                    )
                if previous_period not in rosters_then:
                    rosters_then[previous_period] = _rosters(
                        organisation=organisation,
                        day=previous_period,
                        layout=layout,
                        subtrees=subtrees,
                    )
                delta_ok = delta_publishable(
                    set(rosters_then[previous_period][node]), set(rosters_now[node]), k=k
                )
            aggregates.append(
                TeamAggregate(
                    result=result,
                    team_id=team_id,
                    scope=scope,
                    dimension=dimension,
                    published=True,
                    delta_published=delta_ok,
                    n=summary.n,
                    index=summary.mean,
                    sd=summary.sd,
                    ci_low=summary.ci_low,
                    ci_high=summary.ci_high,
                    distribution=list(summary.distribution),
                )
            )
    TeamAggregate.objects.bulk_create(aggregates)


def _previous_published(
    *, result: CycleResult, layout: _Layout, dimensions: Sequence[str]
) -> dict[tuple[int | None, str, str], date]:
    """(team, scope, dimension) -> period of that cell's latest earlier published figure."""
    team_ids = [team for _, team, _ in layout.rows if team is not None]
    earlier = TeamAggregate.objects.filter(
        result__organisation_id=result.organisation_id,
        result__period_start__lt=result.period_start,
        published=True,
        dimension__in=list(dimensions),
    )
    rows = (
        earlier.filter(Q(team_id__in=team_ids) | Q(team__isnull=True))
        .values("team_id", "scope", "dimension")
        .annotate(latest=Max("result__period_start"))
        .values_list("team_id", "scope", "dimension", "latest")
    )
    return {(team_id, scope, dim): latest for team_id, scope, dim, latest in rows}
