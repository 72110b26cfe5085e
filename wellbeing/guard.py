"""The anonymity guard: decides which group figures may leave the server.  Pure, no Django.

The product's core promise: nothing derived from fewer than k people is published, directly or
by differencing.  Every page, API endpoint, export, notification and filter asks this module.

Threats handled here:
- small groups: a figure covering fewer than k respondents is never published;
- tree differencing: a published team covers its whole subtree, so "parent minus its published
  descendants" isolates the people covered by no published descendant (its *residual*).  Every
  published node's residual must be 0 or >= k; otherwise complementary cells are suppressed
  (the smallest published descendant that covers people) or, failing that, the node itself;
- filter differencing: a filter whose complement in the total is in (0, k) is hidden;
- over-time differencing: a figure may change between releases only if the people who joined
  and who left are each 0 or >= k (``delta_publishable``).

What this module never does: return a node, filter or delta that lets anyone compute a figure
for a group of 1 to k-1 respondents from published totals by addition and subtraction.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

MIN_K = 3

T = TypeVar("T")


def validate_k(k: int) -> int:
    """k as an int, or ValueError when it is not an integer of at least 3."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise ValueError("k must be an integer")
    if k < MIN_K:
        raise ValueError(f"k must be at least {MIN_K}")
    return k


@dataclass(frozen=True)
class Node:
    id: int
    parent_id: int | None
    n: int  # respondents DIRECTLY in this team (not in its sub-teams) for this cycle/dimension


class GuardTree:
    """An organisation's tree for guarding many sets of counts (one per dimension of a cycle):
    the shape is checked and ordered once, and each ``publishable`` call only adds up counts.

    ``ids`` and ``parent_ids`` line up; a parent that is not among ``ids`` makes its node a
    root.  Counts given to the methods line up with ``ids`` too."""

    def __init__(self, ids: Sequence[int], parent_ids: Sequence[int | None]) -> None:
        if len(ids) != len(parent_ids):
            raise ValueError("every node needs its parent (or None)")
        self.ids = list(ids)
        self.position: dict[int, int] = {}
        for i, node_id in enumerate(self.ids):
            if node_id in self.position:
                raise ValueError(f"duplicate node id {node_id}")
            self.position[node_id] = i
        self.parent = [self.position.get(p, -1) if p is not None else -1 for p in parent_ids]
        self.children: list[list[int]] = [[] for _ in self.ids]
        for i, parent in enumerate(self.parent):
            if parent >= 0:
                self.children[parent].append(i)
        for below in self.children:
            below.sort(key=self.ids.__getitem__)
        # post-order (children before parents, children by id) from every root, in the given
        # order.  A cycle is a caller bug.
        self.order: list[int] = []
        seen = 0
        for root in (i for i, parent in enumerate(self.parent) if parent < 0):
            stack: list[tuple[int, bool]] = [(root, False)]
            while stack:
                i, done = stack.pop()
                if done:
                    self.order.append(i)
                    continue
                seen += 1
                stack.append((i, True))
                stack.extend((child, False) for child in reversed(self.children[i]))
        if seen != len(self.ids):
            raise ValueError("the team tree contains a cycle")

    def totals(self, counts: Sequence[int]) -> list[int]:
        """Respondents covered by each node's figure (its own count plus its descendants')."""
        if len(counts) != len(self.ids):
            raise ValueError("one count per node is needed")
        total = [int(c) for c in counts]
        if any(c < 0 for c in total):
            raise ValueError("counts cannot be negative")
        parent = self.parent
        for i in self.order:  # children before parents
            if parent[i] >= 0:
                total[parent[i]] += total[i]
        return total

    def _top_published(self, i: int, published: list[bool]) -> list[int]:
        """Published proper descendants of ``i`` with no published node in between."""
        found: list[int] = []
        stack = list(self.children[i])
        while stack:
            current = stack.pop()
            if published[current]:
                found.append(current)
            else:
                stack.extend(self.children[current])
        return found

    def publishable(
        self, counts: Sequence[int], *, k: int, hidden: Collection[int] = ()
    ) -> set[int]:
        """``publishable_nodes`` for these counts (see there)."""
        validate_k(k)
        total = self.totals(counts)
        forced = {self.position[h] for h in hidden if h in self.position}
        published = [t >= k and i not in forced for i, t in enumerate(total)]
        # covered[i]: people in i's top published descendants, so i's residual (the people
        # "i minus its published descendants" isolates) is total[i] - covered[i].  What a
        # child adds is its total when it is published, else what it covers itself.
        covered = [0] * len(total)
        parent = self.parent
        for i in self.order:
            if parent[i] >= 0:
                covered[parent[i]] += total[i] if published[i] else covered[i]

        def hide(i: int) -> None:
            published[i] = False
            change, above = covered[i] - total[i], parent[i]
            while above >= 0:  # up to the first published ancestor, whose cover it was
                covered[above] += change
                if published[above]:
                    break
                above = parent[above]

        changed = True
        while changed:
            changed = False
            for i in self.order:  # bottom-up: descendants are settled before their parents
                residual = total[i] - covered[i]
                if not published[i] or residual == 0 or residual >= k:
                    continue
                # Hide the smallest complementary cell that uncovers people (its own residual
                # > 0), which restores residual >= k here because a settled descendant's
                # residual is >= k.
                candidates = [
                    d for d in self._top_published(i, published) if total[d] - covered[d] > 0
                ]
                if candidates:
                    hide(min(candidates, key=lambda d: (total[d], self.ids[d])))
                else:
                    hide(i)
                changed = True
        return {self.ids[i] for i, shown in enumerate(published) if shown}


def _guard_tree(nodes: Sequence[Node]) -> tuple[GuardTree, list[int]]:
    return GuardTree([n.id for n in nodes], [n.parent_id for n in nodes]), [n.n for n in nodes]


def subtree_totals(nodes: Sequence[Node]) -> dict[int, int]:
    """Respondents covered by each node's figure (its own n plus all descendants)."""
    tree, counts = _guard_tree(nodes)
    return dict(zip(tree.ids, tree.totals(counts), strict=True))


def residuals(nodes: Sequence[Node], published: Collection[int]) -> dict[int, int]:
    """For each published node: its total minus its top published descendants' totals."""
    tree, counts = _guard_tree(nodes)
    total = tree.totals(counts)
    shown = [node_id in published for node_id in tree.ids]
    return {
        tree.ids[i]: total[i] - sum(total[d] for d in tree._top_published(i, shown))
        for i in range(len(shown))
        if shown[i]
    }


def publishable_nodes(nodes: Sequence[Node], *, k: int, hidden: Collection[int] = ()) -> set[int]:
    """Ids of the teams whose (rolled-up) figure may be published for this cycle and dimension.

    ``hidden``: nodes the caller will not publish anyway (their figures count as unknown).
    If an organisation-wide figure is published, pass the organisation as the root node.
    Deterministic: ties are broken by node id.  Idempotent: feeding the hidden complement of the
    result back as ``hidden`` returns the same set.  ``GuardTree`` does the same for many sets
    of counts on one tree.
    """
    validate_k(k)
    tree, counts = _guard_tree(nodes)
    return tree.publishable(counts, k=k, hidden=hidden)


def publishable_filters(
    total_n: int, filtered_counts: Sequence[int], *, k: int, partition: bool = False
) -> list[bool]:
    """Which filtered sub-groups of one population (e.g. tenure < 1 year) may be published.

    A filter is hidden when it covers fewer than k, or when its complement (total minus it) is
    between 1 and k-1, since total minus filter would reveal that small complement.  Nothing is
    published when the total itself is below k.  With ``partition=True`` the filters split the
    total into disjoint parts (e.g. tenure bands), so the guard also makes sure no hidden band
    can be recovered as total minus the other bands (complementary suppression).
    """
    validate_k(k)
    if total_n < 0 or any(c < 0 for c in filtered_counts):
        raise ValueError("counts cannot be negative")
    if any(c > total_n for c in filtered_counts):
        raise ValueError("a filtered count cannot exceed the total")
    if total_n < k:
        return [False] * len(filtered_counts)
    if partition:
        if sum(filtered_counts) != total_n:
            raise ValueError("a partition's counts must sum to the total")
        root = -1
        nodes = [Node(id=root, parent_id=None, n=0)] + [
            Node(id=i, parent_id=root, n=c) for i, c in enumerate(filtered_counts)
        ]
        # the root (the total, published by the caller) has n = 0 and every band's residual is
        # its own count >= k, so the root itself is never the cell that gets suppressed
        allowed = publishable_nodes(nodes, k=k)
        return [
            i in allowed and _complement_ok(total_n, c, k) for i, c in enumerate(filtered_counts)
        ]
    return [c >= k and _complement_ok(total_n, c, k) for c in filtered_counts]


def _complement_ok(total_n: int, count: int, k: int) -> bool:
    rest = total_n - count
    return rest == 0 or rest >= k


def delta_publishable(
    prev_members: set[Hashable] | int, curr_members: set[Hashable] | int, *, k: int
) -> bool:
    """May the change of a group's figure between two releases be shown?

    Rule: both releases cover at least k people, and the people who joined and the people who
    left are each either nobody or at least k.  With sets of members (e.g. the team's invitees
    for two cycles) this is exact.  With bare counts (e.g. the same cycle's figure before and
    after late answers were released) the membership is unknown, so the rule is applied to the
    count difference and an unchanged count counts as an unchanged group.
    """
    validate_k(k)
    if isinstance(prev_members, int) and isinstance(curr_members, int):
        if min(prev_members, curr_members) < k:
            return False
        change = abs(curr_members - prev_members)
        return change == 0 or change >= k
    if isinstance(prev_members, int) or isinstance(curr_members, int):
        raise TypeError("pass two sets of members or two counts")
    if min(len(prev_members), len(curr_members)) < k:
        return False
    joined = len(curr_members - prev_members)
    left = len(prev_members - curr_members)
    return all(x == 0 or x >= k for x in (joined, left))


def comments_publishable(n: int, *, comment_threshold: int) -> bool:
    """Free-text comments are shown only for groups of at least max(threshold, 3) writers."""
    return n >= max(comment_threshold, MIN_K)


def shuffled(items: Sequence[T], *, rng: random.Random | None = None) -> list[T]:
    """A new list in random order; by default from the OS CSPRNG so the order leaks nothing."""
    out = list(items)
    (rng or secrets.SystemRandom()).shuffle(out)
    return out
