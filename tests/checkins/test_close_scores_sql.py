"""On PostgreSQL the close takes every response's indices in one statement, stored at release or
computed then: the same indices, bit for bit, as the Python scoring (``cycle_scores``), which
stays the path for anything unusual."""

from __future__ import annotations

import logging
import random
import struct

import pytest
from django.db import connection
from django.db.models import Count

from checkins import services
from checkins.models import Response
from tests.checkins.test_close import answer_all

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the SQL scoring runs on PostgreSQL only"
)


def _sorted(scores):
    return {t: {d: sorted(v) for d, v in dims.items()} for t, dims in scores.items()}


def _handed_over(cycle):
    """Each team's indices as the close hands them over (at once, or in each team's own)."""
    teams, batch = services.cycle_results_hand_over(cycle=cycle)
    by_team = batch.by_team() if batch is not None else {t.team_id: t.scores for t in teams}
    return teams, {t: s for t, s in by_team.items() if s}


def test_sql_scores_equal_python_scores_bit_for_bit(cycle):
    rng = random.Random(3)
    answer_all(cycle, 6, value_of=lambda q: rng.randint(q.scale_min, q.scale_max))
    services.pending_release(cycle=cycle, force=True)
    # one person skipped a few items (absent keys) and answered one with null
    response = Response.objects.filter(cycle=cycle).first()
    keys = sorted(response.answers)
    response.answers = {k: v for k, v in response.answers.items() if k not in keys[:3]}
    response.answers[keys[3]] = None
    response.save()
    python = services.cycle_scores(cycle=cycle)
    scored = services._cycle_scores_sql(cycle=cycle)
    assert scored is not None and python
    batch, responded = scored
    assert _sorted(batch.by_team()) == _sorted(python)
    # every team's indices at once: teams in order, each dimension's counts adding up
    assert batch.team_ids.tolist() == sorted(responded)
    for dimension, counts in batch.counts.items():
        assert int(counts.sum()) == batch.values[dimension].size
    # the responses counted in the same pass, as the ORM counts them
    assert (
        responded
        == dict(
            Response.objects.filter(cycle=cycle)
            .values("team_id")
            .annotate(n=Count("pk"))
            .values_list("team_id", "n")
        )
        and sum(responded.values()) == 6
    )
    inputs, handed = _handed_over(cycle)
    assert _sorted(handed) == _sorted(python)
    assert {i.team_id: i.responded for i in inputs if i.responded} == responded


@pytest.mark.parametrize(
    ("odd", "sql_handles"), [("text number", True), ("word", False), ("boolean", False)]
)
def test_unusual_answers_are_scored_as_the_python_scoring_does(cycle, odd, sql_handles):
    answer_all(cycle, 5)
    services.pending_release(cycle=cycle, force=True)
    response = Response.objects.filter(cycle=cycle).first()
    key = sorted(response.answers)[0]
    value = response.answers[key]
    response.answers[key] = {"text number": str(value), "word": "often", "boolean": True}[odd]
    response.save()
    scored = services._cycle_scores_sql(cycle=cycle)
    python = services.cycle_scores(cycle=cycle)
    assert (scored is not None) == sql_handles
    if scored is not None:
        assert _sorted(scored[0].by_team()) == _sorted(python)
    assert _sorted(_handed_over(cycle)[1]) == _sorted(python)


def test_an_answer_outside_its_scale_is_left_to_the_python_scoring(cycle):
    answer_all(cycle, 5)
    services.pending_release(cycle=cycle, force=True)
    response = Response.objects.filter(cycle=cycle).first()
    key = sorted(response.answers)[0]
    response.answers[key] = 1000
    response.save()
    assert services._cycle_scores_sql(cycle=cycle) is None
    with pytest.raises(ValueError):
        services.cycle_results_hand_over(cycle=cycle)


def test_invited_counts_given_as_a_function_are_taken_once_the_answers_are_scored(
    cycle, monkeypatch
):
    # given released answers, and the scoring and the invited counts recording their order
    answer_all(cycle, 5)
    services.pending_release(cycle=cycle, force=True)
    order = []
    score = services._cycle_scores_sql
    monkeypatch.setattr(
        services, "_cycle_scores_sql", lambda **kw: order.append("scored") or score(**kw)
    )
    counts = services.invited_counts(cycle_id=cycle.pk)

    def invited():
        order.append("invited")
        return counts

    # when the close hands over with the invited counts still being read elsewhere
    teams, _ = services.cycle_results_hand_over(cycle=cycle, invited=invited)
    # then the scoring did not wait for them, and the counts handed over are theirs
    assert order == ["scored", "invited"]
    assert {t.team_id: t.invited for t in teams if t.invited} == counts
    # and a function with nothing to give (its read failed) falls back to reading them
    teams, _ = services.cycle_results_hand_over(cycle=cycle, invited=lambda: None)
    assert {t.team_id: t.invited for t in teams if t.invited} == counts


def _scores_of(cycle):
    return dict(Response.objects.filter(cycle=cycle).values_list("pk", "scores"))


def test_released_responses_are_scored_once_and_the_close_reads_what_was_stored(cycle):
    rng = random.Random(5)
    answer_all(cycle, 6, value_of=lambda q: rng.randint(q.scale_min, q.scale_max))
    services.pending_release(cycle=cycle, force=True)
    stored = _scores_of(cycle)
    assert len(stored) == 6 and all(s is not None for s in stored.values())
    # scoring again stores nothing: only what has no scores yet is scored
    assert services.response_scores_store(cycle=cycle) == 0
    from_stored = services._cycle_scores_sql(cycle=cycle)
    python = services.cycle_scores(cycle=cycle)
    assert from_stored is not None
    assert _sorted(from_stored[0].by_team()) == _sorted(python)
    # what was stored is what the close reads: changed behind the product's back, it shows
    first = next(iter(stored))
    odd = bytes(stored[first])[:4]
    nines = b"".join(struct.pack(">d", 99.0) for _ in range((len(stored[first]) - 4) // 8))
    Response.objects.filter(pk=first).update(scores=odd + nines)
    changed = services._cycle_scores_sql(cycle=cycle)
    assert changed is not None
    assert 99.0 in {v for values in changed[0].values.values() for v in values.tolist()}
    # and computed afresh, every response gives the indices stored at release, bit for bit
    Response.objects.filter(cycle=cycle).update(scores=None)
    computed = services._cycle_scores_sql(cycle=cycle)
    assert computed is not None and computed[1] == from_stored[1]
    assert _sorted(computed[0].by_team()) == _sorted(from_stored[0].by_team())


def test_stored_and_unscored_responses_are_read_together(cycle):
    rng = random.Random(6)
    answer_all(cycle, 6, value_of=lambda q: rng.randint(q.scale_min, q.scale_max))
    services.pending_release(cycle=cycle, force=True)
    ids = sorted(_scores_of(cycle))
    Response.objects.filter(pk__in=ids[:2]).update(scores=None)  # never scored
    scored = services._cycle_scores_sql(cycle=cycle)
    python = services.cycle_scores(cycle=cycle)
    assert scored is not None
    assert _sorted(scored[0].by_team()) == _sorted(python)
    assert sum(scored[1].values()) == 6
    # a stored value of another layout sends the cycle to the Python scoring
    Response.objects.filter(pk=ids[2]).update(scores=b"\x00" * 3)
    assert services._cycle_scores_sql(cycle=cycle) is None
    assert _sorted(_handed_over(cycle)[1]) == _sorted(python)


def test_answers_the_scoring_cannot_read_are_left_unscored_and_released_all_the_same(cycle, caplog):
    # a released response whose answer is a word: PostgreSQL cannot score it
    answer_all(cycle, 5)
    services.pending_release(cycle=cycle, force=True)
    response = Response.objects.filter(cycle=cycle).first()
    response.answers[sorted(response.answers)[0]] = "often"
    response.save()
    assert Response.objects.get(pk=response.pk).scores is None  # a saved change unscores it
    with caplog.at_level(logging.WARNING, logger="pulse.checkins"):
        assert services.response_scores_store(cycle=cycle) == 0
    assert "event=response_scores status=skipped" in caplog.text
    assert "often" not in caplog.text
    # nothing stored for it, the close's own handling decides (the Python path)
    assert Response.objects.get(pk=response.pk).scores is None
    assert services._cycle_scores_sql(cycle=cycle) is None
    assert _sorted(_handed_over(cycle)[1]) == _sorted(services.cycle_scores(cycle=cycle))
