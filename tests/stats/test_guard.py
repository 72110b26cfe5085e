import random

import pytest

from wellbeing.guard import (
    Node,
    comments_publishable,
    delta_publishable,
    publishable_filters,
    publishable_nodes,
    shuffled,
    subtree_totals,
    validate_k,
)


def test_subtree_rollup_counts_own_and_descendants():
    nodes = [Node(1, None, 2), Node(2, 1, 3), Node(3, 2, 4)]
    assert subtree_totals(nodes) == {1: 9, 2: 7, 3: 4}


def test_team_below_k_is_hidden():
    nodes = [Node(1, None, 4)]
    assert publishable_nodes(nodes, k=5) == set()
    assert publishable_nodes(nodes, k=4) == {1}


def test_single_hidden_child_forces_a_complementary_suppression():
    # given a department of 5 + 6 + 1 people (and 2 direct): 14 - 5 - 6 = 3 would be revealed
    nodes = [Node(1, None, 2), Node(2, 1, 5), Node(3, 1, 6), Node(4, 1, 1)]

    # when
    published = publishable_nodes(nodes, k=5)

    # then the smallest visible sibling is suppressed too, leaving 2 + 5 + 1 = 8 hidden
    assert published == {1, 3}


def test_parents_own_direct_group_below_k_is_protected():
    # given a head of department with 2 direct reporters above two large teams
    nodes = [Node(1, None, 2), Node(2, 1, 10), Node(3, 1, 12)]
    assert publishable_nodes(nodes, k=5) == {1, 3}


def test_only_child_covering_all_but_two_is_suppressed_as_the_complement():
    # given a parent whose only published child covers all but 2 of its people
    nodes = [Node(1, None, 2), Node(2, 1, 10)]

    # then the child (the complementary cell) goes and the 12-person figure stays
    assert publishable_nodes(nodes, k=5) == {1}


def test_parent_is_hidden_when_no_complementary_cell_helps():
    # given a parent whose hidden remainder is 2 and whose only published descendant is
    # itself fully covered by its own published children (suppressing it uncovers nobody)
    nodes = [Node(1, None, 2), Node(2, 1, 0), Node(3, 2, 6), Node(4, 2, 7)]

    # when
    published = publishable_nodes(nodes, k=5)

    # then the parent goes: 15 - 13 would isolate its 2 direct people
    assert published == {2, 3, 4}


def test_differencing_is_blocked_across_levels():
    # given root -> A (hidden, 0 direct) -> A1 (6), A2 (2); root also has B (7)
    nodes = [Node(0, None, 0), Node(1, 0, 0), Node(2, 1, 6), Node(3, 1, 2), Node(4, 0, 7)]

    published = publishable_nodes(nodes, k=5)

    # then root - B - A1 = 2 (A2) must not be computable
    totals = subtree_totals(nodes)
    assert not ({0, 4, 2} <= published and totals[0] - totals[4] - totals[2] == 2)


def test_forced_hidden_nodes_count_as_unknown():
    nodes = [Node(1, None, 0), Node(2, 1, 6), Node(3, 1, 7)]
    assert publishable_nodes(nodes, k=5) == {1, 2, 3}
    # with 3 forced hidden, 13 - 6 = 7 >= k, so 1 and 2 stay
    assert publishable_nodes(nodes, k=5, hidden={3}) == {1, 2}
    assert publishable_nodes(nodes, k=5, hidden={2, 3}) == {1}


def test_bad_trees_are_rejected():
    with pytest.raises(ValueError):
        publishable_nodes([Node(1, 2, 5), Node(2, 1, 5)], k=5)
    with pytest.raises(ValueError):
        publishable_nodes([Node(1, None, 5), Node(1, None, 5)], k=5)
    with pytest.raises(ValueError):
        publishable_nodes([Node(1, None, -1)], k=5)


def test_filter_with_small_complement_is_hidden():
    # given 20 people: "tenure < 1y" = 17 would reveal the other 3
    assert publishable_filters(20, [10, 17, 3, 20], k=5) == [True, False, False, True]
    assert publishable_filters(4, [4], k=5) == [False]


def test_partition_filters_suppress_a_complementary_band():
    # given bands 10 + 8 + 2 = 20: total - 10 - 8 would reveal the 2
    assert publishable_filters(20, [10, 8, 2], k=5, partition=True) == [True, False, False]
    with pytest.raises(ValueError):
        publishable_filters(20, [10, 8], k=5, partition=True)


def test_filters_reject_impossible_counts():
    with pytest.raises(ValueError):
        publishable_filters(10, [11], k=5)


def test_delta_with_member_sets_needs_zero_or_k_joiners_and_leavers():
    before = set(range(10))
    assert delta_publishable(before, set(before), k=5) is True
    assert delta_publishable(before, before | {99}, k=5) is False  # one joiner
    assert delta_publishable(before, before - {0}, k=5) is False  # one leaver
    assert delta_publishable(before, before | set(range(100, 105)), k=5) is True
    assert delta_publishable(before, (before - {0, 1}) | {50, 51, 52}, k=3) is False  # 2 left
    assert delta_publishable({1, 2, 3, 4}, {1, 2, 3, 4}, k=5) is False  # below k at all


def test_delta_with_counts_uses_the_count_difference():
    assert delta_publishable(10, 10, k=5) is True
    assert delta_publishable(10, 12, k=5) is False
    assert delta_publishable(10, 15, k=5) is True
    with pytest.raises(TypeError):
        delta_publishable(10, {1, 2}, k=5)


def test_comments_need_the_threshold_and_never_fewer_than_three():
    assert comments_publishable(10, comment_threshold=10) is True
    assert comments_publishable(9, comment_threshold=10) is False
    assert comments_publishable(2, comment_threshold=1) is False


def test_shuffled_keeps_the_items_and_does_not_touch_the_input():
    items = list(range(50))
    out = shuffled(items)
    assert sorted(out) == items and items == list(range(50))
    assert shuffled(items, rng=random.Random(3)) == shuffled(items, rng=random.Random(3))


@pytest.mark.parametrize("bad", [2, 0, -5, 3.0, True, "5"])
def test_k_below_three_or_not_an_int_is_rejected(bad):
    with pytest.raises(ValueError):
        validate_k(bad)


def test_k_of_three_or_more_is_accepted():
    assert validate_k(3) == 3 and validate_k(10) == 10
