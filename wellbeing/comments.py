"""Free-text comments, stored per group at a cycle's close through the anonymity guard.

Check-ins hand over each team's comments for the cycle as plain text (never a response, an id
or a time); this module runs the guard over the cycle's groups (``aggregation._layout``: every
team, parent subtree and the organisation) with each group's respondents and k = the
organisation's comment threshold, and stores the comments of the groups it lets out, shuffled.
Complementary suppression applies as for the figures: a parent's comments minus a visible
child's would be the comments of the parent's other people, so that difference must cover at
least the threshold too.

Never: store anything when comments are off, store a comment of a group the guard holds back,
keep the order comments arrived in, a time, or anything that points back to a response, or log
a comment.  Pages and the API read comments from ``TeamComments`` only
(``wellbeing.comments_selectors``); the retention purge deletes them with the raw answers.
"""

from __future__ import annotations

import logging
import operator
import random
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from django.db import transaction

# The layout of a cycle's groups as the aggregates use it, so comments are guarded over the
# very same cells.
from .aggregation import layout_guarded
from .analytics_selectors import TeamTree, team_tree
from .errors import ServiceError
from .guard import MIN_K, shuffled
from .models import CycleResult, Organisation, TeamComments

if TYPE_CHECKING:
    from .analytics import TeamCycleInput

logger = logging.getLogger(__name__)


def comment_threshold(organisation: Organisation) -> int:
    """The smallest group whose comments may be shown: the organisation's comment threshold,
    never below its k (the database also insists) nor below 3."""
    return max(organisation.comment_threshold, organisation.anonymity_threshold, MIN_K)


def cycle_comments_store(
    *,
    organisation: Organisation,
    cycle_key: uuid.UUID,
    teams: Sequence[TeamCycleInput],
    comments: Mapping[int, Sequence[str]],
    tree: TeamTree | None = None,
    rng: random.Random | None = None,
) -> int:
    """Store the comments of a cycle whose results are stored (``cycle_results_record``); returns
    how many groups' comments were stored.

    ``teams``: the same hand-over as the results (each team's respondents count in the guard);
    ``comments``: team id -> the comments written there this cycle.  Replaces the result's
    stored comments (idempotent), in the caller's transaction.  ``rng``: for tests only; by
    default the order comes from the OS's generator (``guard.shuffled``)."""
    with transaction.atomic():
        result = CycleResult.objects.filter(
            cycle_key=cycle_key, organisation_id=organisation.pk
        ).first()
        if result is None:
            raise ServiceError("not_found", "The cycle's results are not stored.", status=404)
        TeamComments.objects.filter(result=result).delete()
        if not organisation.comments_enabled or not any(comments.values()):
            return 0
        tree = tree if tree is not None else team_tree(organisation=organisation)
        respondents = {
            t.team_id: count
            for t in teams
            if t.team_id in tree.teams and (count := _count(t.responded)) is not None
        }
        written: dict[int, list[str]] = {}
        for team_id, texts in comments.items():
            kept = [text.strip() for text in texts if isinstance(text, str) and text.strip()]
            if not kept:
                continue
            # More comments than respondents: the hand-over cannot be trusted for this team.
            if team_id not in respondents or len(kept) > respondents[team_id]:
                logger.error(
                    "event=comments_input status=rejected team_id=%s reason=%s",
                    team_id,
                    "unknown_team" if team_id not in respondents else "more_than_respondents",
                )
                continue
            written[team_id] = kept
        if not written:
            return 0
        rows = [
            TeamComments(result=result, team_id=team_id, scope=scope, comments=texts)
            for team_id, scope, texts in _publishable_comments(
                tree=tree,
                respondents=respondents,
                written=written,
                k=comment_threshold(organisation),
                rng=rng,
            )
        ]
        TeamComments.objects.bulk_create(rows)
    logger.info("event=cycle_comments_stored result_id=%s groups=%d", result.pk, len(rows))
    return len(rows)


def _count(value: object) -> int | None:
    """A respondent count as an int (numpy's too), None when it is not a count."""
    if isinstance(value, bool):
        return None
    try:
        count = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None
    return count if count >= 0 else None


def _publishable_comments(
    *,
    tree: TeamTree,
    respondents: Mapping[int, int],
    written: Mapping[int, list[str]],
    k: int,
    rng: random.Random | None = None,
) -> list[tuple[int | None, str, list[str]]]:
    """(team id or None, scope, comments shuffled) of every group the guard lets out at ``k``
    over the respondents of each direct group, and that has comments."""
    layout, rollup, allowed = layout_guarded(tree, respondents, k=k)
    # every group covering a team with comments gets them: the team's direct group and each
    # group above it (``_Rollup.expand``)
    owners = [i for i, node in enumerate(rollup.direct) if layout.direct[node] in written]
    element, covering = rollup.expand(np.array(owners, dtype=np.int64))
    by_position: dict[int, list[str]] = defaultdict(list)
    for i, position in zip(element.tolist(), covering.tolist(), strict=True):
        by_position[position].extend(written[layout.direct[rollup.direct[owners[i]]]])
    out = []
    for node, team_id, scope in layout.rows:
        texts = by_position.get(rollup.position[node])
        if texts and node in allowed:
            out.append((team_id, str(scope), shuffled(texts, rng=rng)))
    return out


def team_comments_purge(*, cycle_keys: Sequence[uuid.UUID], batch_size: int) -> int:
    """Delete the stored comments of these cycles, ``batch_size`` rows per transaction (the
    retention purge's style); returns how many groups' comments were deleted."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                TeamComments.objects.filter(result__cycle_key__in=cycle_keys).values_list(
                    "pk", flat=True
                )[:batch_size]
            )
            if not ids:
                return deleted
            count, _ = TeamComments.objects.filter(pk__in=ids).delete()
            deleted += count
