"""``GuardTree`` against the guard's rules applied literally.

``GuardTree.publishable`` keeps each node's residual up to date as nodes are hidden instead of
recounting it; the reference below recounts every residual from the published set each time it
looks at a node, as the rules are written.  Both must hide exactly the same nodes, and one tree
must answer each set of counts as a fresh one would.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wellbeing.guard import GuardTree, Node, publishable_nodes


def _reference(
    ids: list[int], parents: list[int | None], counts: list[int], k: int, hidden: set[int]
) -> set[int]:
    children: dict[int, list[int]] = {i: [] for i in ids}
    for node_id, parent in zip(ids, parents, strict=True):
        if parent is not None and parent in children:
            children[parent].append(node_id)
    order: list[int] = []

    def visit(node_id: int) -> None:
        for child in sorted(children[node_id]):
            visit(child)
        order.append(node_id)

    for node_id, parent in zip(ids, parents, strict=True):
        if parent is None or parent not in children:
            visit(node_id)
    own = dict(zip(ids, counts, strict=True))

    def total(node_id: int) -> int:
        return own[node_id] + sum(total(c) for c in children[node_id])

    def top_published(node_id: int, published: set[int]) -> list[int]:
        found = []
        for child in children[node_id]:
            found.extend([child] if child in published else top_published(child, published))
        return found

    def residual(node_id: int, published: set[int]) -> int:
        return total(node_id) - sum(total(d) for d in top_published(node_id, published))

    published = {i for i in ids if total(i) >= k and i not in hidden}
    changed = True
    while changed:
        changed = False
        for node_id in order:
            if node_id not in published:
                continue
            left = residual(node_id, published)
            if left == 0 or left >= k:
                continue
            candidates = [
                d for d in top_published(node_id, published) if residual(d, published) > 0
            ]
            if candidates:
                published.discard(min(candidates, key=lambda d: (total(d), d)))
            else:
                published.discard(node_id)
            changed = True
    return published


@st.composite
def shapes(draw):
    size = draw(st.integers(min_value=1, max_value=60))
    ids = draw(st.permutations(list(range(1, size + 1))))
    parents: list[int | None] = []
    for i in range(size):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        parents.append(None if parent is None else ids[parent])
    # small counts, so that many residuals fall between 1 and k - 1
    count_sets = draw(
        st.lists(st.lists(st.integers(0, 9), min_size=size, max_size=size), min_size=1, max_size=4)
    )
    hidden = draw(st.sets(st.sampled_from(ids), max_size=3))
    return ids, parents, count_sets, draw(st.integers(3, 8)), hidden


@settings(max_examples=400, deadline=None)
@given(shapes())
def test_one_tree_hides_what_the_rules_applied_literally_hide(shape):
    ids, parents, count_sets, k, hidden = shape
    tree = GuardTree(ids, parents)
    for counts in count_sets:
        expected = _reference(ids, parents, counts, k, hidden)
        assert tree.publishable(counts, k=k, hidden=hidden) == expected
        nodes = [Node(i, p, c) for i, p, c in zip(ids, parents, counts, strict=True)]
        assert publishable_nodes(nodes, k=k, hidden=hidden) == expected


def test_a_cell_below_k_is_protected_by_hiding_its_smallest_sibling():
    # parent 1 (direct 2) with children 2 (6) and 3 (5): 1 minus 2 minus 3 isolates 2 people;
    # hiding 3, the smallest, leaves 1 minus 2 = 7
    tree = GuardTree([1, 2, 3], [None, 1, 1])
    assert tree.publishable([2, 6, 5], k=5) == {1, 2}
    assert tree.publishable([0, 6, 5], k=5) == {1, 2, 3}
    assert tree.totals([2, 6, 5]) == [13, 6, 5]


def test_a_bad_tree_or_bad_counts_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        GuardTree([1, 1], [None, None])
    with pytest.raises(ValueError, match="cycle"):
        GuardTree([1, 2, 3], [None, 3, 2])
    with pytest.raises(ValueError, match="parent"):
        GuardTree([1, 2], [None])
    tree = GuardTree([1, 2], [None, 1])
    with pytest.raises(ValueError, match="one count per node"):
        tree.publishable([1], k=5)
    with pytest.raises(ValueError, match="negative"):
        tree.publishable([1, -1], k=5)
    with pytest.raises(ValueError, match="at least 3"):
        tree.publishable([5, 5], k=2)
