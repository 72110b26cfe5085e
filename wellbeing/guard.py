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


class _Tree:
    def __init__(self, nodes: Sequence[Node]) -> None:
        self.by_id: dict[int, Node] = {}
        for node in nodes:
            if node.id in self.by_id:
                raise ValueError(f"duplicate node id {node.id}")
            if node.n < 0:
                raise ValueError("counts cannot be negative")
            self.by_id[node.id] = node
        self.children: dict[int, list[int]] = {i: [] for i in self.by_id}
        for node in nodes:
            if node.parent_id is not None and node.parent_id in self.by_id:
                self.children[node.parent_id].append(node.id)
        # post-order (children before parents) from every root; parents outside the list
        # make a node a root.  A cycle is a caller bug.
        self.order: list[int] = []
        seen: set[int] = set()
        roots = [n.id for n in nodes if n.parent_id is None or n.parent_id not in self.by_id]
        for root in roots:
            stack: list[tuple[int, bool]] = [(root, False)]
            while stack:
                node_id, done = stack.pop()
                if done:
                    self.order.append(node_id)
                    continue
                seen.add(node_id)
                stack.append((node_id, True))
                for child in sorted(self.children[node_id], reverse=True):
                    stack.append((child, False))
        if len(seen) != len(self.by_id):
            raise ValueError("the team tree contains a cycle")
        self.total: dict[int, int] = {}
        for node_id in self.order:
            self.total[node_id] = self.by_id[node_id].n + sum(
                self.total[c] for c in self.children[node_id]
            )

    def top_published(self, node_id: int, published: set[int]) -> list[int]:
        """Published proper descendants of node_id with no published node in between."""
        found: list[int] = []
        stack = list(self.children[node_id])
        while stack:
            current = stack.pop()
            if current in published:
                found.append(current)
            else:
                stack.extend(self.children[current])
        return found

    def residual(self, node_id: int, published: set[int]) -> int:
        return self.total[node_id] - sum(
            self.total[d] for d in self.top_published(node_id, published)
        )


def subtree_totals(nodes: Sequence[Node]) -> dict[int, int]:
    """Respondents covered by each node's figure (its own n plus all descendants)."""
    return dict(_Tree(nodes).total)


def residuals(nodes: Sequence[Node], published: Collection[int]) -> dict[int, int]:
    """For each published node: its total minus its top published descendants' totals."""
    tree = _Tree(nodes)
    pub = set(published)
    return {node_id: tree.residual(node_id, pub) for node_id in pub if node_id in tree.by_id}


def publishable_nodes(nodes: Sequence[Node], *, k: int, hidden: Collection[int] = ()) -> set[int]:
    """Ids of the teams whose (rolled-up) figure may be published for this cycle and dimension.

    ``hidden``: nodes the caller will not publish anyway (their figures count as unknown).
    If an organisation-wide figure is published, pass the organisation as the root node.
    Deterministic: ties are broken by node id.  Idempotent: feeding the hidden complement of the
    result back as ``hidden`` returns the same set.
    """
    validate_k(k)
    tree = _Tree(nodes)
    forced = set(hidden)
    published = {i for i, total in tree.total.items() if total >= k and i not in forced}
    changed = True
    while changed:
        changed = False
        for node_id in tree.order:  # bottom-up: descendants are settled before their parents
            if node_id not in published:
                continue
            residual = tree.residual(node_id, published)
            if residual == 0 or residual >= k:
                continue
            # Hide the smallest complementary cell that uncovers people (its own residual > 0),
            # which restores residual >= k here because a settled descendant's residual is >= k.
            candidates = [
                d for d in tree.top_published(node_id, published) if tree.residual(d, published) > 0
            ]
            if candidates:
                published.discard(min(candidates, key=lambda d: (tree.total[d], d)))
            else:
                published.discard(node_id)
            changed = True
    return published


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
