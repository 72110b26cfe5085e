"""The close screens every team's history at once and evaluates only teams a rule may fire for
(or with a flag): the flags, events and alerts are the same as evaluating every team."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.db import connection

from tests.analytics.helpers import record
from tests.factories import OrganisationFactory, TeamFactory
from wellbeing import flags as flags_module
from wellbeing.analytics import TeamCycleInput
from wellbeing.models import (
    CycleResult,
    DetectionColumns,
    Flag,
    FlagEvent,
    Team,
    TeamAggregate,
    TeamParticipation,
)

pytestmark = pytest.mark.django_db

TEAMS = 14
CYCLES = 34


def _org(label: str):
    organisation = OrganisationFactory(anonymity_threshold=3, slug=f"screen-{label}")
    parent = TeamFactory(organisation=organisation, name="Parent")
    teams = [
        TeamFactory(
            organisation=organisation,
            name=f"T{i}",
            customer_facing=i % 2 == 0,
            parent=parent if i % 3 == 0 else None,
        )
        for i in range(TEAMS)
    ]
    return organisation, teams


def _history(organisation, teams, seed: int) -> list:
    rng = random.Random(seed)
    plan = [
        {
            "level": rng.uniform(30, 60),
            "drift_from": rng.choice([None, None, 12, 20, 26]),
            "drop_at": rng.choice([None, None, 22, 30]),
            "size": rng.choice([2, 4, 8, 12]),
        }
        for _ in teams
    ]
    out = []
    for i in range(CYCLES):
        inputs = []
        for team, p in zip(teams, plan, strict=True):
            if rng.random() < 0.08:
                continue  # the team was not in this cycle
            up = 0.0 if p["drift_from"] is None else max(0, i - p["drift_from"]) * 3.0
            invited = p["size"] + 2
            responded = p["size"] if p["drop_at"] is None or i < p["drop_at"] else 1
            responded = min(invited, max(0, responded - rng.choice([0, 0, 1])))
            scores = {
                dim: [
                    min(100.0, max(0.0, rng.gauss(p["level"] + up - shift, 12.0)))
                    for _ in range(responded)
                ]
                for dim, shift in (("stress", 0.0), ("client_burnout", 5.0), ("wellbeing", 0.0))
            }
            inputs.append(TeamCycleInput(team.pk, invited, responded, scores))
        out.append(
            sorted(
                (c.team_id, c.kind, c.change, c.severity) for c in record(organisation, i, inputs)
            )
        )
    return out


def _flags(organisation) -> list:
    names = {}
    rows = []
    for flag in (
        Flag.objects.filter(organisation=organisation).select_related("team").order_by("pk")
    ):
        names[flag.pk] = flag.team.name
        rows.append(
            (flag.team.name, flag.kind, flag.state, flag.severity, flag.explanation,
             flag.evidence, flag.in_control_streak, flag.last_evaluated_period)
        )  # fmt: skip
    events = [
        (names[e.flag_id], e.kind, e.cycle_period, e.severity)
        for e in FlagEvent.objects.filter(flag__organisation=organisation).order_by("pk")
    ]
    return rows + events


@pytest.mark.parametrize("seed", [11, 12])
def test_screened_close_moves_flags_exactly_like_evaluating_every_team(monkeypatch, seed):
    screened_org, screened_teams = _org("a")
    screened = _history(screened_org, screened_teams, seed)

    def every_team(history, team_ids, **kwargs):
        return flags_module.Screened.every(team_ids)

    monkeypatch.setattr(flags_module, "_screen", every_team)
    full_org, full_teams = _org("b")
    full = _history(full_org, full_teams, seed)

    rename = dict(
        Team.objects.filter(organisation__in=[screened_org, full_org]).values_list("pk", "name")
    )

    def named(history):
        return [[(rename[t], *rest) for t, *rest in batch] for batch in history]

    assert named(screened) == named(full)
    assert _flags(screened_org) == _flags(full_org)
    assert any(batch for batch in full)  # the histories do open flags


# Ten respondents spread evenly about each cycle's mean: the means are exact, the spread steady.
SPREAD = (-15.0, -12.0, -10.0, -5.0, 0.0, 0.0, 5.0, 10.0, 12.0, 15.0)


def _gentle_rise(i: int, level: float) -> float:
    """Flat for 20 cycles, then up 0.3 a cycle: a clear trend, too small for the chart."""
    return level + 0.3 * max(0, i - 19)


def test_the_screen_lets_through_empathy_risk_that_only_the_trend_and_burnout_raise():
    # given two customer-facing teams whose stress rises by a trend the chart does not signal,
    # one with client burnout high and flat, one with it low and rising by a trend, and a team
    # not facing customers with the first one's figures
    organisation = OrganisationFactory(slug="screen-empathy")
    high = TeamFactory(organisation=organisation, name="High burnout", customer_facing=True)
    rising = TeamFactory(organisation=organisation, name="Rising burnout", customer_facing=True)
    internal = TeamFactory(organisation=organisation, name="Internal", customer_facing=False)
    burnout_of = {high: lambda i: 75.0, rising: lambda i: _gentle_rise(i, 30.0)}
    burnout_of[internal] = burnout_of[high]
    for i in range(28):
        record(
            organisation,
            i,
            [
                TeamCycleInput(
                    team.pk,
                    12,
                    len(SPREAD),
                    {
                        "stress": [_gentle_rise(i, 40.0) + d for d in SPREAD],
                        "client_burnout": [burnout(i) + d for d in SPREAD],
                    },
                )
                for team, burnout in burnout_of.items()
            ],
        )
    # then the screen passes both customer-facing teams on for evaluation and the internal
    # team not, and the customer-facing teams' empathy flags are open, nothing else
    results = list(CycleResult.objects.filter(organisation=organisation).order_by("period_start"))
    history = flags_module._History.load(results, ("stress", "client_burnout"))
    baselines = {d: history.org_baseline(d, results[-1].pk) for d in ("stress", "client_burnout")}
    screened = flags_module._screen(
        history,
        [high.pk, rising.pk, internal.pk],
        tree=flags_module.team_tree(organisation=organisation),
        settings=flags_module.settings_for(organisation),
        baselines=baselines,
    )
    assert screened.teams == {high.pk, rising.pk}
    assert not screened.rules[Flag.Kind.PARTICIPATION_DROP]
    assert sorted(
        Flag.objects.filter(organisation=organisation).values_list("team__name", "kind", "state")
    ) == [
        ("High burnout", "empathy_risk", "open"),
        ("Rising burnout", "empathy_risk", "open"),
    ]


def test_a_failing_screen_falls_back_to_evaluating_every_team(monkeypatch, caplog):
    organisation, teams = _org("c")

    def broken(*args, **kwargs):
        raise FloatingPointError("boom")

    monkeypatch.setattr(flags_module, "_screen", broken)
    changes = _history(organisation, teams[:4], seed=3)
    assert "event=flag_screening status=failed" in caplog.text
    assert "FloatingPointError" in caplog.text
    assert any(batch for batch in changes)


def test_a_failing_batch_detection_falls_back_to_each_team_alone(monkeypatch, caplog):
    # given the same history closed with the teams' charts in one batch, and with the batch
    # failing so that every team detects on its own
    batched_org, batched_teams = _org("d")
    batched = _history(batched_org, batched_teams, seed=11)

    def broken(self, histories, *, label):
        raise FloatingPointError("boom")

    monkeypatch.setattr(flags_module.OrgBaseline, "detect_many", broken)
    alone_org, alone_teams = _org("e")
    alone = _history(alone_org, alone_teams, seed=11)
    # then the failure is logged and the flags, events and alerts are the same
    assert "event=flag_detection_batch status=failed" in caplog.text
    rename = dict(
        Team.objects.filter(organisation__in=[batched_org, alone_org]).values_list("pk", "name")
    )
    assert [[(rename[t], *rest) for t, *rest in b] for b in batched] == [
        [(rename[t], *rest) for t, *rest in b] for b in alone
    ]
    assert _flags(batched_org) == _flags(alone_org)
    assert any(batch for batch in alone)


def _assert_same_history(history, expected, dims):
    assert history.team_ids.tolist() == expected.team_ids.tolist()
    for dim in dims:
        for key, values in expected.dims[dim].items():
            assert np.array_equal(history.dims[dim][key], values, equal_nan=True), (dim, key)
    for key, values in expected.rates.items():
        assert np.array_equal(history.rates[key], values, equal_nan=True), key


def test_history_matrices_hold_each_stored_row_in_its_cell():
    organisation, teams = _org("f")
    # a team with members of its own and a team below it: both rows in every cycle
    Team.objects.filter(pk=teams[4].pk).update(parent=teams[0])
    _history(organisation, teams, seed=9)
    results = list(CycleResult.objects.filter(organisation=organisation).order_by("period_start"))
    dims = ("stress", "client_burnout")
    history = flags_module._History.load(results, dims)
    # the oracle: each stored team or subtree row by its (team, cycle) cell, a team's subtree
    # row (its headline) taking the place of its own row
    column = {r.pk: j for j, r in enumerate(results)}
    row_of = {t: i for i, t in enumerate(history.team_ids.tolist())}
    cells: dict[tuple[str, int, int], TeamAggregate] = {}
    for row in TeamAggregate.objects.filter(
        result__in=results, dimension__in=dims, scope__in=["team", "subtree"]
    ).order_by("-scope"):  # "team" before "subtree"
        cells[(row.dimension, row_of[row.team_id], column[row.result_id])] = row
    rates: dict[tuple[int, int], TeamParticipation] = {}
    for row in TeamParticipation.objects.filter(
        result__in=results, scope__in=["team", "subtree"]
    ).order_by("-scope"):
        rates[(row_of[row.team_id], column[row.result_id])] = row
    both = TeamAggregate.objects.filter(result__in=results, team=teams[0], dimension="stress")
    assert set(both.values_list("scope", flat=True)) == {"team", "subtree"}
    assert {t.pk for t in teams} <= set(row_of)
    assert any(not row.published for row in cells.values())
    for d in dims:
        m = history.dims[d]
        present = {(i, j) for dim, i, j in cells if dim == d}
        assert set(zip(*np.nonzero(m["present"]), strict=True)) == present
        # cells without a row: nothing published, no figures
        assert not (m["published"] | m["subtree"])[~m["present"]].any()
        assert np.isnan(m["index"][~m["present"]]).all() and not m["n"][~m["present"]].any()
        for (dim, i, j), row in cells.items():
            if dim != d:
                continue
            assert m["subtree"][i, j] == (row.scope == "subtree")
            assert m["published"][i, j] == row.published
            assert m["n"][i, j] == (row.n or 0)
            for key in ("index", "sd"):
                want = getattr(row, key) if row.published else None
                assert np.isnan(m[key][i, j]) if want is None else m[key][i, j] == want, key
    r = history.rates
    assert set(zip(*np.nonzero(r["present"]), strict=True)) == set(rates)
    assert np.isnan(r["rate"][~r["present"]]).all() and not r["subtree"][~r["present"]].any()
    for (i, j), row in rates.items():
        assert r["subtree"][i, j] == (row.scope == "subtree")
        want = row.rate if row.published else None
        assert np.isnan(r["rate"][i, j]) if want is None else r["rate"][i, j] == want


@pytest.mark.skipif(connection.vendor != "postgresql", reason="binary COPY is PostgreSQL's")
def test_history_read_with_binary_copy_equals_the_orm_read():
    organisation, teams = _org("d")
    _history(organisation, teams, seed=5)
    results = list(CycleResult.objects.filter(organisation=organisation).order_by("period_start"))
    dims = ("stress", "client_burnout")
    orm = flags_module._History.load(results, dims, binary=False)
    assert orm.dims["stress"]["subtree"].any() and not orm.dims["stress"]["published"].all()
    # every result was packed when it was stored ...
    stored = DetectionColumns.objects.filter(result__organisation=organisation)
    assert stored.count() == len(results)
    _assert_same_history(flags_module._History.load(results, dims, binary=True), orm, dims)
    # ... and a result without its packed columns (older data) is read from its rows
    stored.filter(result__in=results[::2]).delete()
    _assert_same_history(flags_module._History.load(results, dims, binary=True), orm, dims)
    stored.delete()
    _assert_same_history(flags_module._History.load(results, dims, binary=True), orm, dims)
    flags_module.detection_columns_store([r.pk for r in results])
    assert stored.count() == len(results)
    _assert_same_history(flags_module._History.load(results, dims, binary=True), orm, dims)


def test_a_rule_is_evaluated_only_where_the_screen_or_a_flag_of_it_says_so(monkeypatch):
    # given a screen that lets every team through for the participation rule alone
    organisation, teams = _org("e")
    charted = []
    detections_batch = flags_module._detections_batch

    def spy(history, stress, burnout, **kwargs):
        charted.append((list(stress), list(burnout)))
        return detections_batch(history, stress, burnout, **kwargs)

    def participation_only(history, team_ids, **kwargs):
        return flags_module.Screened({Flag.Kind.PARTICIPATION_DROP: set(team_ids)})

    monkeypatch.setattr(flags_module, "_detections_batch", spy)
    monkeypatch.setattr(flags_module, "_screen", participation_only)
    _history(organisation, teams, seed=11)
    # then no team was charted for stress or burnout, and only participation flags opened
    kinds = set(Flag.objects.filter(organisation=organisation).values_list("kind", flat=True))
    assert charted == []
    assert kinds == {Flag.Kind.PARTICIPATION_DROP}
