"""The close's vectorised summaries (one pass over every node and dimension) store exactly what
``summarise`` gives for each published group's scores; arrays are accepted as hand-over."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.analytics.helpers import closed_at, period, record
from tests.factories import OrganisationFactory, TeamFactory
from wellbeing.aggregation import (
    CorruptInput,
    _batch_checked,
    _clean,
    _clean_batch,
    _clean_scores,
    _CleanInput,
)
from wellbeing.analytics import CycleScores, TeamCycleInput, cycle_results_record
from wellbeing.models import TeamAggregate, TeamParticipation
from wellbeing.stats.summary import summarise

pytestmark = pytest.mark.django_db


def _tree(organisation, rng):
    """A random three-level tree; some parents have members of their own."""
    teams = []
    for d in range(3):
        division = TeamFactory(organisation=organisation, name=f"D{d}")
        teams.append(division)
        for e in range(rng.randint(1, 3)):
            department = TeamFactory(organisation=organisation, parent=division, name=f"D{d}E{e}")
            teams.append(department)
            for t in range(rng.randint(0, 3)):
                teams.append(
                    TeamFactory(organisation=organisation, parent=department, name=f"D{d}E{e}T{t}")
                )
    return teams


def _descendants(team, teams):
    out = [team]
    for other in teams:
        if other.parent_id == team.pk:
            out += _descendants(other, teams)
    return out


def _subtree_nodes(layout):
    """node -> every node in its subtree (itself included), walked down from each node."""
    children = {}
    for node, parent in layout.parent.items():
        children.setdefault(parent, []).append(node)
    out = {}
    for node in layout.parent:
        stack, seen = [node], []
        while stack:
            current = stack.pop()
            seen.append(current)
            stack.extend(children.get(current, ()))
        out[node] = seen
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_rollup_pairs_are_each_direct_node_with_every_node_whose_subtree_holds_it(seed):
    from wellbeing.aggregation import _CleanInput, _layout, _Rollup
    from wellbeing.analytics_selectors import team_tree

    rng = random.Random(seed)
    organisation = OrganisationFactory()
    teams = _tree(organisation, rng)
    # some teams have no input this cycle: they are in the layout only as ancestors, or not at all
    inputs = {
        t.pk: _CleanInput(invited=1, responded=1, scores={}) for t in teams if rng.random() < 0.7
    }
    layout = _layout(team_tree(organisation=organisation), inputs)
    rollup = _Rollup(layout)
    expected = sorted(
        (rollup.direct.index(member), rollup.position[node])
        for node, members in _subtree_nodes(layout).items()
        for member in members
        if member in layout.direct
    )
    got = list(zip(rollup.pair_direct.tolist(), rollup.pair_node.tolist(), strict=True))
    assert got == expected
    assert rollup.count.sum() == len(expected)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stored_figures_equal_summarise_of_each_groups_scores(seed):
    rng = random.Random(seed)
    organisation = OrganisationFactory(anonymity_threshold=3)
    teams = _tree(organisation, rng)
    inputs = []
    for team in teams:
        if rng.random() < 0.3:
            continue  # no members of its own this cycle
        responded = rng.randint(0, 9)
        scores = {
            "stress": [round(rng.uniform(0, 100), rng.choice([0, 1, 6])) for _ in range(responded)],
            "workload": [rng.choice([0.0, 20.0, 40.0, 100.0]) for _ in range(responded)],
            # some skipped the dimension (None) and one group answered it all alike
            "support": [None if rng.random() < 0.3 else 55.5 for _ in range(responded)],
        }
        inputs.append(TeamCycleInput(team.pk, responded + rng.randint(0, 3), responded, scores))
    as_arrays = [
        TeamCycleInput(
            t.team_id,
            t.invited,
            t.responded,
            {d: np.array([np.nan if v is None else v for v in vs]) for d, vs in t.scores.items()},
        )
        for t in inputs
    ]
    record(organisation, 0, inputs if seed % 2 else as_arrays)

    by_team = {t.team_id: t for t in inputs}
    checked = 0
    for row in TeamAggregate.objects.filter(result__organisation=organisation):
        if row.team_id is None:
            members = [t.pk for t in teams]
        elif row.scope == "subtree":
            members = [t.pk for t in _descendants(row.team, teams)]
        else:
            members = [row.team_id]
        scores = [v for m in members if m in by_team for v in by_team[m].scores[row.dimension]]
        expected = summarise(scores)
        if not row.published:
            assert row.n is None and row.index is None and row.distribution is None
            continue
        assert expected is not None
        assert row.n == expected.n
        assert row.distribution == list(expected.distribution)
        for field in ("mean", "sd", "ci_low", "ci_high"):
            stored = getattr(row, "index" if field == "mean" else field)
            assert stored == pytest.approx(getattr(expected, field), rel=1e-12, abs=1e-12)
        if len({v for v in scores if v is not None}) == 1:
            assert row.sd == 0.0
        checked += 1
    assert checked > 10
    assert TeamParticipation.objects.filter(result__organisation=organisation).exists()


def test_clean_scores_accepts_arrays_and_refuses_bad_values():
    assert _clean_scores(np.array([1.0, np.nan, 100.0]), 3) == [1.0, 100.0]
    assert _clean_scores([1, None, 2.5], 3) == [1.0, 2.5]
    # a list of plain numbers (the close's own hand-over) is held to the same rules
    assert _clean_scores([1.0, math.nan, 100, 0.0], 3) == [1.0, 100.0, 0.0]
    assert all(type(v) is float for v in _clean_scores([1, 2.5], 3))
    assert _clean_scores([math.nan], 0) == []
    bad_values = (
        np.array([101.0]), np.array(["a"]), [True], ["x"], [-1.0], [100.5], [math.inf],
        [math.inf, -math.inf], [1e308, 1e308], [10**400], (1.0, 10**400),
    )  # fmt: skip
    for bad in bad_values:
        with pytest.raises(CorruptInput):
            _clean_scores(bad, 5)
    for too_many in (np.array([1.0, 2.0]), [1.0, 2.0]):
        with pytest.raises(CorruptInput):
            _clean_scores(too_many, 1)


def _per_team(teams):
    """What cleaning team by team keeps (None for a team it refuses)."""
    out = {}
    for team in teams:
        try:
            out[team.team_id] = _clean(team)
        except CorruptInput:
            out[team.team_id] = None
    return out


_score = st.one_of(
    st.floats(min_value=0.0, max_value=100.0),
    st.sampled_from([math.nan, math.inf, -1.0, 100.5, None, 7, True, "50"]),
)
_float_score = st.one_of(
    st.floats(min_value=0.0, max_value=100.0), st.sampled_from([math.nan, math.inf, -1.0, 100.5])
)
_team = st.builds(
    lambda i, invited, extra, scores: TeamCycleInput(
        team_id=i, invited=invited + extra, responded=invited, scores=scores
    ),
    st.integers(1, 10**6),
    st.integers(0, 6),
    st.integers(-1, 3),
    st.dictionaries(
        st.sampled_from(["stress", "workload", "client_burnout", "no_such_dimension"]),
        st.one_of(
            st.lists(_score, max_size=7),
            # as the SQL scoring hands them over: a float array per dimension
            st.lists(_float_score, max_size=7).map(lambda v: np.array(v, dtype=np.float64)),
        ),
        max_size=3,
    ),
)


def _as_lists(cleaned):
    """Cleaned inputs with every team's scores as a list (arrays compare element-wise)."""
    return {
        team: None
        if c is None
        else _CleanInput(
            invited=c.invited,
            responded=c.responded,
            scores={d: [float(v) for v in vs] for d, vs in c.scores.items()},
        )
        for team, c in cleaned.items()
    }


@settings(max_examples=300, deadline=None)
@given(st.lists(_team, max_size=6, unique_by=lambda t: t.team_id))
def test_the_batch_check_keeps_exactly_what_cleaning_team_by_team_keeps(teams):
    # given any hand-over: clean, broken, or with values only team-by-team cleaning handles
    per_team = _per_team(teams)
    # when checked at once
    batch = _clean_batch(teams)
    # then it either declines (the caller cleans team by team) or keeps what that would keep;
    # it never accepts a hand-over that cleaning team by team would refuse or change
    if batch is not None:
        assert _as_lists(batch) == per_team
    if any(v is None for v in per_team.values()):
        assert batch is None


def test_the_batch_check_accepts_the_closes_own_hand_over():
    teams = [
        TeamCycleInput(team_id=1, invited=9, responded=3, scores={"stress": [0.0, 50.0, 100.0]}),
        TeamCycleInput(team_id=2, invited=4, responded=0, scores={}),
        TeamCycleInput(team_id=3, invited=5, responded=2, scores={"stress": [], "support": [1.5]}),
    ]
    assert _clean_batch(teams) == _per_team(teams)
    # the SQL scoring's float arrays, kept as they are
    teams[1] = TeamCycleInput(team_id=2, invited=4, responded=2, scores={"stress": np.ones(2)})
    batch = _clean_batch(teams)
    assert batch is not None and batch[2].scores["stress"] is teams[1].scores["stress"]
    odd_values = (
        [1.0, None], [1.0, math.nan], [1, 2.0], np.array([1.0, np.nan]), np.array([101.0]),
        np.array([1, 2]), np.ones((1, 1)), np.array([1.0], dtype=np.float32),
    )  # fmt: skip
    for odd in odd_values:
        teams[0] = TeamCycleInput(team_id=1, invited=9, responded=3, scores={"stress": odd})
        assert _clean_batch(teams) is None


@pytest.mark.parametrize("steps", [1, 4])
def test_previous_published_walk_equals_the_max_over_all_history(steps):
    from django.db.models import Max

    from wellbeing.aggregation import _cell_key, _previous_published
    from wellbeing.models import CycleResult

    rng = random.Random(steps)
    organisation = OrganisationFactory(anonymity_threshold=3)
    teams = _tree(organisation, rng)
    for i in range(9):
        inputs = []
        for team in teams:
            # teams that are often suppressed (below k) and cycles they are absent from
            if rng.random() < 0.2:
                continue
            responded = rng.choice([1, 2, 3, 6])
            inputs.append(
                TeamCycleInput(team.pk, responded, responded, {"stress": [50.0] * responded})
            )
        record(organisation, i, inputs)
    result = CycleResult.objects.filter(organisation=organisation).order_by("period_start").last()
    cells = {
        (row.team_id, row.scope, row.dimension)
        for row in TeamAggregate.objects.filter(result__organisation=organisation)
    }
    expected = {
        (t, s, d): latest
        for t, s, d, latest in TeamAggregate.objects.filter(
            result__organisation=organisation,
            result__period_start__lt=result.period_start,
            published=True,
        )
        .values("team_id", "scope", "dimension")
        .annotate(latest=Max("result__period_start"))
        .values_list("team_id", "scope", "dimension", "latest")
    }
    order = sorted(cells, key=lambda c: (c[0] or 0, c[1], c[2]))
    keys = np.array([_cell_key(*cell) for cell in order], dtype=np.int64)
    periods = _previous_published(result=result, keys=keys, steps=steps)
    got = {cell: date.fromordinal(p) for cell, p in zip(order, periods.tolist(), strict=True) if p}
    assert got == expected
    assert len(set(expected.values())) > 1  # some cells were last published further back


def test_delta_rule_for_every_node_at_once_equals_delta_publishable():
    from wellbeing.aggregation import _delta_publishable_nodes
    from wellbeing.guard import delta_publishable

    rng = random.Random(5)
    nodes, base = 300, 1000
    then_sets, now_sets = [], []
    for _ in range(nodes):
        people = rng.sample(range(base), rng.randint(0, 20))
        then = set(people)
        now = set(people)
        for _ in range(rng.choice([0, 0, 1, 2, 3, 5])):
            now.discard(rng.choice(people)) if people and rng.random() < 0.5 else now.add(
                rng.randrange(base)
            )
        then_sets.append(then)
        now_sets.append(now)

    def keys(sets):
        return np.array(sorted(i * base + u for i, s in enumerate(sets) for u in s), dtype=np.int64)

    got = _delta_publishable_nodes(keys(then_sets), keys(now_sets), nodes=nodes, base=base, k=3)
    expected = [delta_publishable(t, n, k=3) for t, n in zip(then_sets, now_sets, strict=True)]
    assert got.tolist() == expected
    assert 0 < sum(expected) < nodes


def _random_tree(rng, size):
    """A random forest of ``size`` teams (ids 1..size) as ``TeamTree``, parents before children."""

    parents = {
        t: (rng.randrange(1, t) if t > 1 and rng.random() < 0.8 else None)
        for t in range(1, size + 1)
    }
    return _team_tree(parents), parents


def _team_tree(parents):
    from wellbeing.analytics_selectors import TeamInfo, TeamTree

    children = {}
    for team, parent in parents.items():
        children.setdefault(parent, []).append(team)
    return TeamTree(
        teams={t: TeamInfo(t, p, f"T{t}", str(t), False) for t, p in parents.items()},
        children=children,
    )


def _moved(rng, parents, moves):
    """``parents`` with ``moves`` teams put under another team (not one of their own subtree)
    or at the top."""
    out = dict(parents)
    for _ in range(moves):
        team = rng.choice(list(out))
        below = {team}
        grew = True
        while grew:
            grew = False
            for other, parent in out.items():
                if parent in below and other not in below:
                    below.add(other)
                    grew = True
        out[team] = rng.choice([None, *(t for t in out if t not in below)])
    return out


def _people_of(layout, roster):
    """node -> the people behind it in ``layout``: those listed for a team whose direct node is
    in its subtree (walked up from each person's direct node)."""
    direct_of = {team: node for node, team in layout.direct.items()}
    out = {node: set() for node in layout.parent}
    for team, user in zip(*roster, strict=True):
        node = direct_of.get(int(team))
        while node is not None:
            out[node].add(int(user))
            node = layout.parent[node]
    return out


def _cells(layout):
    from wellbeing.aggregation import _cell_base

    return {node: _cell_base(team, scope) for node, team, scope in layout.rows}


@pytest.mark.parametrize(
    ("seed", "moves", "in_two_teams", "erased", "added"),
    [
        (11, 0, 0.15, 0, 0),
        (12, 2, 0.15, 0, 0),
        (13, 4, 0.0, 0, 0),
        (14, 3, 0.0, 6, 0),
        (15, 2, 0.1, 4, 5),
        (16, 6, 0.0, 0, 3),
    ],
)
def test_rosters_from_movers_equal_delta_publishable_over_full_rosters(
    seed, moves, in_two_teams, erased, added
):
    """``_Rosters`` compares the people behind this cycle's nodes with those behind an earlier
    result's, placed in that result's own layout (a tree with teams moved since, teams asked in
    one cycle only), through the people who moved.  Per node whose cell the earlier layout had,
    it must say what ``delta_publishable`` says over the two complete rosters; when people are
    no longer listed for the earlier cycle (erased, and so not asked now either) it must still
    count them as leavers, and when more are listed than were there, never publish what the
    complete rosters would not."""
    from wellbeing.aggregation import _CleanInput, _layout, _Rollup, _Rosters
    from wellbeing.guard import delta_publishable

    rng = random.Random(seed)
    tree, parents = _random_tree(rng, 40)
    later = _team_tree(_moved(rng, parents, moves))
    teams = list(parents)

    def roster(pairs):
        return (
            np.array([t for t, _ in pairs], dtype=np.int64),
            np.array([u for _, u in pairs], dtype=np.int64),
        )

    # who was behind the earlier figures, and who is now: most people stay in their team
    then_pairs, now_pairs = [], []
    for user in range(1, 400):
        first = rng.choice(teams)
        if rng.random() < 0.85:
            then_pairs.append((first, user))
            if rng.random() < in_two_teams:
                then_pairs.append((rng.choice(teams), user))
        if rng.random() < 0.9:
            now_pairs.append((first if rng.random() < 0.9 else rng.choice(teams), user))
    # the erased are in no list any more: not now, not for the earlier cycle
    gone = set(rng.sample(sorted({u for _, u in then_pairs}), erased))
    now_pairs = [(t, u) for t, u in now_pairs if u not in gone]
    listed = [(t, u) for t, u in then_pairs if u not in gone]
    listed += [(rng.choice(teams), 1000 + i) for i in range(added)]  # entered since
    now_pairs += [(t, u) for t, u in listed if u >= 1000]
    # some teams asked in one cycle only
    asked_then = {t for t in teams if rng.random() < 0.9}
    asked_now = {t for t in teams if rng.random() < 0.9}
    then_layout = _layout(tree, {t: _CleanInput(1, 1, {}) for t in asked_then})
    now_layout = _layout(later, {t: _CleanInput(1, 1, {}) for t in asked_now})
    earlier = _Rosters(
        layout=then_layout, rollup=_Rollup(then_layout), people=roster(then_pairs)
    ).layout_record()
    now_rollup = _Rollup(now_layout)
    rosters = _Rosters(layout=now_layout, rollup=now_rollup, people=roster(now_pairs))

    got, present = rosters.delta_publishable(earlier, roster(listed), k=3)

    then_people, now_people = (
        _people_of(then_layout, roster(then_pairs)),
        _people_of(now_layout, roster(now_pairs)),
    )
    then_at = {cell: node for node, cell in _cells(then_layout).items()}
    outcomes = set()
    for node, cell in _cells(now_layout).items():
        at = now_rollup.position[node]
        assert present[at] == (cell in then_at)
        if cell not in then_at:
            continue
        expected = delta_publishable(then_people[then_at[cell]], now_people[node], k=3)
        if added:
            assert not got[at] or expected, node
        else:
            assert got[at] == expected, node
        outcomes.add(expected)
    assert outcomes == {True, False}  # both answers occur: the comparison can fail


def _batch_of(teams):
    """The per-team float arrays of ``teams`` as one ``CycleScores`` (teams in id order), and the
    teams with their own scores emptied, as the close hands them over."""
    ordered = sorted(teams, key=lambda t: t.team_id)
    dimensions = sorted({d for t in ordered for d in t.scores})
    empty = np.zeros(0)
    batch = CycleScores(
        team_ids=np.array([t.team_id for t in ordered], dtype=np.int64),
        counts={
            d: np.array([len(t.scores.get(d, empty)) for t in ordered], dtype=np.int64)
            for d in dimensions
        },
        values={
            d: np.concatenate([np.zeros(0), *(t.scores.get(d, empty) for t in ordered)])
            for d in dimensions
        },
    )
    return batch, [replace(t, scores={}) for t in teams]


_array_team = st.builds(
    lambda i, invited, extra, scores: TeamCycleInput(
        team_id=i, invited=invited + extra, responded=invited, scores=scores
    ),
    st.integers(1, 10**6),
    st.integers(0, 6),
    st.integers(0, 3),
    st.dictionaries(
        st.sampled_from(["stress", "workload", "client_burnout", "no_such_dimension"]),
        st.lists(_float_score, max_size=7).map(lambda v: np.array(v, dtype=np.float64)),
        max_size=3,
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_array_team, max_size=6, unique_by=lambda t: t.team_id))
def test_a_batch_of_every_teams_indices_is_kept_only_when_team_by_team_keeps_it_all(teams):
    # given the teams' indices handed over at once
    batch, bare = _batch_of(teams)
    per_team = _per_team(teams)
    # when the batch is checked
    kept = _batch_checked(batch, bare)
    # then it is kept only when cleaning team by team would keep every index unchanged, and a
    # team cleaning refuses always sends the close down that path
    if kept is not None:
        assert kept is batch
        by_team = batch.by_team()
        for team in teams:
            cleaned = per_team[team.team_id]
            assert cleaned is not None
            assert {d: list(v) for d, v in cleaned.scores.items() if len(v)} == {
                d: list(v) for d, v in by_team.get(team.team_id, {}).items()
            }
    if any(v is None for v in per_team.values()):
        assert kept is None


def test_a_team_with_its_own_indices_beside_a_batch_is_a_caller_error():
    batch, bare = _batch_of([TeamCycleInput(1, 3, 2, {"stress": np.array([1.0, 2.0])})])
    with pytest.raises(ValueError, match="must be empty"):
        _batch_checked(batch, [TeamCycleInput(1, 3, 2, {"stress": [1.0]})])
    assert _batch_checked(batch, bare) is batch


def _stored(organisation):
    return sorted(
        TeamAggregate.objects.filter(result__organisation=organisation).values_list(
            "team_id", "scope", "dimension", "published", "n", "index", "sd", *TeamAggregate.BANDS
        ),
        key=repr,
    )


@pytest.mark.parametrize("broken", [False, True])
def test_a_cycle_handed_over_at_once_stores_what_team_by_team_stores(broken):
    rng = random.Random(21)
    organisation = OrganisationFactory(anonymity_threshold=3)
    teams = _tree(organisation, rng)
    inputs = []
    for team in teams:
        responded = rng.randint(0, 9)
        scores = {
            d: np.array([round(rng.uniform(0, 100), 1) for _ in range(responded)])
            for d in ("stress", "client_burnout", "support")
        }
        inputs.append(TeamCycleInput(team.pk, responded + 2, responded, scores))
    if broken:  # one team's index out of its scale: that team is left out either way
        bad = next(t for t in inputs if t.responded)
        bad.scores["stress"][0] = 150.0
    # when the cycle is recorded team by team, then recorded again (same key) at once
    record(organisation, 0, inputs)
    team_by_team = _stored(organisation)
    batch, bare = _batch_of(inputs)
    assert (_batch_checked(batch, bare) is None) == broken
    cycle_results_record(
        organisation=organisation,
        cycle_key=uuid.uuid5(uuid.NAMESPACE_URL, f"{organisation.pk}:0"),
        period_start=period(0),
        closed_at=closed_at(0),
        teams=bare,
        scores=batch,
    )
    # then the same figures are stored
    assert _stored(organisation) == team_by_team
    if broken:
        assert not TeamAggregate.objects.filter(team_id=bad.team_id, scope="team").exists()


_score = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
_edge = st.sampled_from([0.0, 20.0, 40.0, 60.0, 80.0, 100.0]).flatmap(
    lambda e: st.sampled_from([e, math.nextafter(e, -1.0), math.nextafter(e, 101.0)])
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_score, _edge.filter(lambda v: 0.0 <= v <= 100.0)), min_size=1))
def test_the_closes_buckets_are_summarises_buckets_at_the_edges_too(values):
    from wellbeing.aggregation import BUCKETS, _buckets

    expected = summarise(values, buckets=BUCKETS).distribution
    got = np.bincount(_buckets(np.array(values, dtype=np.float64)), minlength=BUCKETS)
    assert tuple(got.tolist()) == expected
