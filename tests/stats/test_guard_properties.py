"""Property tests of the anonymity guard on random organisation trees and filters.

The differencing checker is independent of the guard's residual logic: it describes every
direct group ("atom") by the set of published figures that cover it.  Published figures can be
added and subtracted, so the smallest groups an observer can isolate are the classes of atoms
with the same cover set (for a tree these are exactly reachable as parent minus descendants).
Each such class must hold 0 or at least k people.  A second, brute-force checker subtracts every
subset of published descendants from every published node.
"""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from wellbeing.guard import Node, publishable_filters, publishable_nodes, subtree_totals


@st.composite
def trees(draw):
    size = draw(st.integers(min_value=1, max_value=30))
    ids = draw(st.permutations(list(range(100, 100 + size))))
    nodes = []
    for i in range(size):
        parent = draw(st.one_of(st.none(), st.integers(0, i - 1))) if i else None
        nodes.append(
            Node(
                id=ids[i],
                parent_id=None if parent is None else ids[parent],
                n=draw(st.integers(0, 20)),
            )
        )
    k = draw(st.integers(3, 10))
    return nodes, k


def _ancestors_or_self(nodes: list[Node]) -> dict[int, set[int]]:
    parent = {n.id: n.parent_id for n in nodes}
    out: dict[int, set[int]] = {}
    for node in nodes:
        chain, current = set(), node.id
        while current is not None:
            chain.add(current)
            current = parent[current]
        out[node.id] = chain
    return out


def _isolatable_classes(nodes: list[Node], published: set[int]) -> list[int]:
    """People in each class of direct groups sharing the same set of covering published figures."""
    cover = _ancestors_or_self(nodes)
    classes: dict[frozenset[int], int] = {}
    for node in nodes:
        key = frozenset(cover[node.id] & published)
        if key:  # a group covered by no published figure is simply unknown
            classes[key] = classes.get(key, 0) + node.n
    return list(classes.values())


def _subtraction_results(nodes: list[Node], published: set[int]) -> list[int]:
    """Every published total minus every subset of disjoint published descendants (bounded)."""
    totals = subtree_totals(nodes)
    cover = _ancestors_or_self(nodes)
    results = []
    for top in published:
        below = sorted(d for d in published if d != top and top in cover[d])
        for r in range(len(below) + 1):
            for subset in itertools.islice(itertools.combinations(below, r), 400):
                # only disjoint subtrees can be subtracted as counts of distinct people
                if any(a in cover[b] for a in subset for b in subset if a != b):
                    continue
                results.append(totals[top] - sum(totals[d] for d in subset))
    return results


@settings(max_examples=300, deadline=None)
@given(trees())
def test_every_published_figure_covers_at_least_k(tree):
    nodes, k = tree
    totals = subtree_totals(nodes)
    assert all(totals[i] >= k for i in publishable_nodes(nodes, k=k))


@settings(max_examples=300, deadline=None)
@given(trees())
def test_no_combination_of_published_figures_isolates_fewer_than_k(tree):
    nodes, k = tree
    published = publishable_nodes(nodes, k=k)
    assert all(size == 0 or size >= k for size in _isolatable_classes(nodes, published))


@settings(max_examples=150, deadline=None)
@given(trees())
def test_no_parent_minus_descendants_subtraction_yields_a_small_group(tree):
    nodes, k = tree
    published = publishable_nodes(nodes, k=k)
    assert all(not 0 < value < k for value in _subtraction_results(nodes, published))


@settings(max_examples=200, deadline=None)
@given(trees(), st.randoms(use_true_random=False))
def test_guard_is_deterministic_whatever_the_input_order(tree, rnd):
    nodes, k = tree
    reordered = list(nodes)
    rnd.shuffle(reordered)
    assert publishable_nodes(reordered, k=k) == publishable_nodes(nodes, k=k)


@settings(max_examples=200, deadline=None)
@given(trees())
def test_guard_is_idempotent(tree):
    # feeding the suppressed nodes back as hidden changes nothing
    nodes, k = tree
    published = publishable_nodes(nodes, k=k)
    hidden = {n.id for n in nodes} - published
    assert publishable_nodes(nodes, k=k, hidden=hidden) == published


@settings(max_examples=200, deadline=None)
@given(trees())
def test_groups_of_at_least_k_everywhere_are_all_published(tree):
    # the guard suppresses only when it must: direct groups all 0 or >= k need no help
    nodes, k = tree
    safe = [Node(n.id, n.parent_id, n.n if n.n >= k else 0) for n in nodes]
    totals = subtree_totals(safe)
    assert publishable_nodes(safe, k=k) == {i for i, t in totals.items() if t >= k}


@st.composite
def filter_cases(draw):
    total = draw(st.integers(0, 60))
    counts = draw(st.lists(st.integers(0, total), max_size=12))
    return total, counts, draw(st.integers(3, 10))


@settings(max_examples=300, deadline=None)
@given(filter_cases())
def test_published_filter_and_its_complement_are_both_zero_or_at_least_k(case):
    total, counts, k = case
    flags = publishable_filters(total, counts, k=k)
    assert len(flags) == len(counts)
    for count, shown in zip(counts, flags, strict=True):
        if shown:
            assert total >= k and count >= k
            assert total - count == 0 or total - count >= k
    assert publishable_filters(total, counts, k=k) == flags


@st.composite
def partitions(draw):
    bands = draw(st.lists(st.integers(0, 20), min_size=1, max_size=10))
    return sum(bands), bands, draw(st.integers(3, 10))


@settings(max_examples=300, deadline=None)
@given(partitions())
def test_partition_never_lets_total_minus_visible_bands_reveal_a_small_group(case):
    total, bands, k = case
    flags = publishable_filters(total, bands, k=k, partition=True)
    if total < k:
        assert not any(flags)
        return
    hidden = sum(c for c, shown in zip(bands, flags, strict=True) if not shown)
    assert hidden == 0 or hidden >= k
    assert all(c >= k for c, shown in zip(bands, flags, strict=True) if shown)
    # deterministic and independent of band order
    order = list(range(len(bands)))
    random.Random(total).shuffle(order)
    shuffled_flags = publishable_filters(total, [bands[i] for i in order], k=k, partition=True)
    assert sum(shuffled_flags) == sum(flags)
