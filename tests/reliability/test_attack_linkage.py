"""An operator with the database dump and every log line tries to tie released answers to people.

Thirty weekly cycles, two teams of twenty, k = 5.  People submit in a random order; a simulated
worker releases a team's pending answers when k or more wait, sometimes late (so batches vary
from 5 to about 9), and the close mixes a final short batch into the team's earlier ones.

The attacker is given more than a real one has: who submitted in which order and which release
batch each person's answer went into.  Within a batch they match submit order to the order of
the response rows by physical position (``ctid``), by primary key, and in reverse.  ``xmin`` is
one value per batch, so it only names the batch (which the attacker was handed anyway).  Their
hit rate must not beat chance within the batch: the number of right guesses over B batches of
a random shuffle is a sum of B fixed-point counts (mean 1 each, approximately Poisson(B)).

A positive control runs the same attacker against the pending store just before each release
(one transaction per submit): there it links almost everyone, so the attack itself works.
Logs, timestamps and the other tables are checked to carry nothing that links either.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.db.models import DateField, DateTimeField
from scipy import stats

from checkins import services
from checkins.models import Cycle, Invitation, PendingAnswer, Response
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule
from tests.factories import OrganisationFactory

from .builders import answers_for, team_of_people

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CYCLES, TEAMS, PER_TEAM, K = 30, 2, 20, 5
SIGNIFICANCE = 0.001


def physical(ctid: str) -> tuple[int, int]:
    page, item = ctid.strip("()").split(",")
    return int(page), int(item)


def rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def attack(batch_rows: list[tuple[str, tuple, str]], submit_rank: dict[str, int]) -> dict:
    """Right guesses per strategy for one batch: rows are (marker, ctid, pk); the attacker
    knows each marker's submit rank (the ground truth stands in for the person)."""
    submitters = sorted((m for m, _, _ in batch_rows), key=submit_rank.__getitem__)
    orders = {
        "ctid": sorted(batch_rows, key=lambda r: r[1]),
        "ctid_reversed": sorted(batch_rows, key=lambda r: r[1], reverse=True),
        "primary_key": sorted(batch_rows, key=lambda r: r[2]),
    }
    return {
        name: sum(row[0] == person for row, person in zip(order, submitters, strict=True))
        for name, order in orders.items()
    }


def test_released_answers_cannot_be_linked_to_people_better_than_chance(postgres, caplog):
    caplog.set_level(logging.DEBUG)
    rng = random.Random(6)
    organisation = OrganisationFactory(
        timezone="Europe/Berlin", anonymity_threshold=K, comment_threshold=K, comments_enabled=True
    )
    teams = [team_of_people(organisation=organisation, size=PER_TEAM, name=f"T{i}") for i in "ab"]
    make_schedule(organisation=organisation, teams=teams, survey=ensure_library())
    hits: dict[str, int] = defaultdict(int)
    control_hits = control_total = 0
    batches = responses = 0
    inverse_batch_sizes: list[float] = []

    for week in range(CYCLES):
        opens = FIRST_OPEN + timedelta(weeks=week)
        cycle = Cycle.objects.get(pk=services.tick_run(now=opens).opened[-1])
        services.cycle_open_all(cycle=cycle)
        invitations = list(Invitation.objects.filter(cycle=cycle))
        rng.shuffle(invitations)
        submit_rank: dict[str, int] = {}
        with time_machine.travel(opens + timedelta(hours=1), tick=False):
            for rank, invitation in enumerate(invitations):
                # the comment is the test's ground truth marker, not something the attacker uses
                marker = f"w{week}-s{rank}"
                submit_rank[marker] = rank
                services.checkin_submit(
                    invitation=invitation, answers=answers_for(invitation), comment=marker
                )
                waiting = PendingAnswer.objects.filter(cycle=cycle, team_id=invitation.team_id)
                if waiting.count() >= K and rng.random() < 0.5:
                    # positive control: the same attacker on the pending store, ordered by xmin
                    pending = rows(
                        "SELECT comment, xmin::text::bigint FROM checkins_pendinganswer "
                        f"WHERE cycle_id = {cycle.pk} AND team_id = {invitation.team_id}"
                    )
                    pending_rows = [(m, (x, 0), "") for m, x in pending]
                    control_hits += attack(pending_rows, submit_rank)["ctid"]
                    control_total += len(pending_rows)
                    services.pending_release(cycle=cycle, team_id=invitation.team_id)
        assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True

        # the attacker's dump after the close: response rows with their hidden columns
        dump = rows(
            "SELECT team_id, xmin::text, ctid::text, id::text, comment FROM checkins_response "
            f"WHERE cycle_id = {cycle.pk}"
        )
        assert len(dump) == TEAMS * PER_TEAM
        by_batch: dict[tuple[int, str], list[tuple[str, tuple, str]]] = defaultdict(list)
        for team_id, xmin, ctid, pk, comment in dump:
            by_batch[(team_id, xmin)].append((comment, physical(ctid), pk))
        for batch_rows in by_batch.values():
            assert len(batch_rows) >= K, "a batch smaller than k was released"
            for name, right in attack(batch_rows, submit_rank).items():
                hits[name] += right
            batches += 1
            responses += len(batch_rows)
            inverse_batch_sizes += [1 / len(batch_rows)] * len(batch_rows)

    chance = sum(inverse_batch_sizes) / len(inverse_batch_sizes)  # = batches / responses
    report = {name: right / responses for name, right in hits.items()}
    print(
        f"\nlinkage: {responses} responses in {batches} batches (mean size "
        f"{responses / batches:.1f}); chance 1/batch = {chance:.3f}; attacker "
        + ", ".join(f"{name} {rate:.3f}" for name, rate in report.items())
        + f"; control on the pending store {control_hits / control_total:.3f}"
    )
    # then no strategy beats chance within the batch
    for name, right in hits.items():
        p_value = stats.poisson.sf(right - 1, batches)
        assert p_value > SIGNIFICANCE, (name, right, batches, p_value)
    # and the control shows the attack works where rows do carry the order
    assert control_total > 200 and control_hits / control_total > 0.9

    # and nothing else in the dump or the logs links: no time on a response, no response id
    # or answer marker in any log line, participation rows all rewritten by the close
    assert not [f for f in Response._meta.get_fields() if isinstance(f, DateTimeField | DateField)]
    logged = caplog.text
    for _, _, _, pk, comment in dump:
        assert pk not in logged and comment not in logged
    xmins = rows(
        f"SELECT count(DISTINCT xmin::text) FROM checkins_invitation WHERE cycle_id = {cycle.pk}"
    )
    assert xmins == [(1,)], "invitation rows still carry the order people answered in"
