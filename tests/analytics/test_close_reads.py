"""The close's reads that do not depend on the answers, read ahead on other connections."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import numpy as np
import pytest
from django.db import connection, transaction

from checkins.demo import history_seed
from wellbeing.close_reads import CloseReads
from wellbeing.demo import organisation_seed
from wellbeing.models import Flag, Organisation, TeamAggregate

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="reads ahead only on PostgreSQL"
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ACCESSORS = ("tree", "people", "earlier", "published_keys", "history_columns")
# the read ahead each accessor takes its answer from
READ = {"earlier": "people"}


def _same_rows(early, inline):
    assert len(early) == len(inline)
    order_e, order_i = np.lexsort(early[::-1]), np.lexsort(inline[::-1])
    for a, b in zip(early, inline, strict=True):
        np.testing.assert_array_equal(a[order_e], b[order_i])


def _same(name, early, inline):
    if name == "tree":
        assert early.teams == inline.teams and early.children == inline.children
    elif name == "people":
        (roster_e, asked_e), (roster_i, asked_i) = early, inline
        assert asked_e and asked_i  # the people the cycle asked, not the memberships
        _same_rows(roster_e, roster_i)
    elif name == "earlier":
        assert len(early) == len(inline)
        for got, want in zip(early, inline, strict=True):
            np.testing.assert_array_equal(got.nodes, want.nodes)
            _same_rows(got.people, want.people)
    elif name == "published_keys":
        np.testing.assert_array_equal(np.sort(early), np.sort(inline))
    else:
        for got, want in zip(early, inline, strict=True):  # aggregates, participation
            assert set(got) == set(want)
            identity = [k for k in ("subtree", "dim", "team", "result") if k in got]
            order_e = np.lexsort([got[k] for k in identity])
            order_i = np.lexsort([want[k] for k in identity])
            for k in got:
                np.testing.assert_array_equal(got[k][order_e], want[k][order_i])


@pytest.fixture
def checked_reads(monkeypatch):
    """Every read the close takes: it must come from the read ahead, and equal what an inline
    read on the close's own connection gives at that moment."""
    calls: list[str] = []
    original = {name: getattr(CloseReads, name) for name in ACCESSORS}

    def checked(name):
        def method(self, *args):
            got = original[name](self, *args)
            assert READ.get(name, name) in self._early, f"{name} was read inline"
            if name == "people":
                # this cycle's roster too
                assert args[0] in self._early["people"]["asked"], "the roster was read inline"
            fresh = CloseReads(
                organisation=self.organisation,
                period_start=self.period_start,
                rosters=self.rosters,
            )
            _same(name, got, original[name](fresh, *args))
            calls.append(name)
            return got

        return method

    for name in ACCESSORS:
        monkeypatch.setattr(CloseReads, name, checked(name))
    get = CloseReads.get

    def checked_get(self, name):
        # the caller's own reads (the invited counts): read ahead, equal to a read now
        got = get(self, name)
        assert name in self._early, f"{name} was read inline"
        assert got == self.first[name]()
        calls.append(name)
        return got

    monkeypatch.setattr(CloseReads, "get", checked_get)
    return calls


@pytest.mark.django_db(transaction=True)
def test_every_close_of_the_demo_takes_reads_ahead_equal_to_inline_reads(checked_reads):
    organisation, _ = organisation_seed(today=date(2026, 11, 25))
    history_seed(organisation=organisation, weeks=12, now=NOW)
    # every one of the twelve closes took the tree (twice: the demo has comments on, and they
    # are guarded over the same tree), the flag window, the people it asked and (from the second
    # on, with earlier published cells to look back to) the previous cells and the previous
    # cycle's layout and people
    assert checked_reads.count("tree") == 24
    assert checked_reads.count("invited") == 12
    assert checked_reads.count("history_columns") == 12
    assert checked_reads.count("people") == 12
    assert checked_reads.count("earlier") >= 10
    assert checked_reads.count("published_keys") >= 10
    assert TeamAggregate.objects.filter(result__organisation=organisation).exists()
    assert Flag.objects.filter(team__organisation=organisation).exists()


@pytest.mark.django_db(transaction=True)
def test_the_reading_threads_close_their_connections():
    organisation = Organisation.objects.create(name="Acme", slug="acme")

    def backends():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    before = backends()
    with CloseReads.ahead(organisation=organisation, period_start=date(2026, 11, 23)) as reads:
        assert reads.tree().teams == {}
    assert backends() == before


@pytest.mark.django_db(transaction=True)
def test_a_failed_read_ahead_is_logged_and_read_inline(monkeypatch, caplog):
    organisation = Organisation.objects.create(name="Acme", slug="acme")

    def fails(self, name, **kwargs):
        raise ConnectionError("no slot")

    monkeypatch.setattr(CloseReads, "_read_ahead", fails)
    with (
        caplog.at_level(logging.WARNING, logger="wellbeing.close_reads"),
        CloseReads.ahead(organisation=organisation, period_start=date(2026, 11, 23)) as reads,
    ):
        assert reads.tree().teams == {}
        assert reads.memberships()[0].size == 0
    for name in ("tree", "people"):
        assert f"event=close_reads status=failed read={name} error=ConnectionError" in caplog.text


@pytest.mark.django_db
def test_inside_a_transaction_nothing_is_read_ahead(monkeypatch):
    organisation = Organisation.objects.create(name="Acme", slug="acme")
    monkeypatch.setattr(
        CloseReads, "_read_ahead", lambda self, name, **kw: pytest.fail("read ahead")
    )
    with (
        transaction.atomic(),
        CloseReads.ahead(organisation=organisation, period_start=date(2026, 11, 23)) as reads,
    ):
        assert reads.tree().teams == {}
