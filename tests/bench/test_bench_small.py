"""The benchmark suite runs end to end at the "ci" size and produces every figure.

Speed is not asserted here (benchmarks report ratios, never pass/fail timings); the test checks
that the generator, the real gunicorn and Celery worker, and every benchmark ran and reported.
Needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); it uses a database of its own, dropped
afterwards, and a free port, so runs beside it on the same machine do not meet it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import CLOSE_ROUNDS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench_env(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("the benchmark needs PostgreSQL: set DATABASE_URL")
    if not redis_url:
        pytest.skip("the benchmark needs Redis: set REDIS_URL")
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    database = f"bench_ci_test_{os.getpid()}"

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    drop()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["REDIS_URL"] = redis_url
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield env, tmp_path, database, port
    drop()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.timeout(280)
def test_ci_size_benchmark_runs_end_to_end_and_reports_every_figure(bench_env):
    # given an empty database and free ports
    env, results, database, port = bench_env
    # when the whole suite runs at the ci size
    completed = subprocess.run(
        [sys.executable, "bench/run.py", "--size", "ci", "--database", database,
         "--port", str(port), "--results", str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=270,
    )  # fmt: skip
    # then it succeeded and wrote JSON and Markdown with a value for every benchmark
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((results / "pulse_ci.json").read_text())
    assert (results / "pulse_ci.md").read_text().count("| ") > 10
    labels = [row["benchmark"] for row in report["table"]]
    # 12 targets and four informational rows: the whole close, the organisation's first close,
    # the late opening and the submits under it
    assert len(labels) == 16
    for row in report["table"]:
        assert isinstance(row["value"], int | float), row
    figures = report["figures"]
    # every submit went through the real form and was accepted (302 to the thanks page)
    assert figures["submit"]["statuses"]["form"] == {"302": 60}
    assert figures["submit"]["statuses"]["loaded"] == {"302": 60}
    assert figures["submit"]["statuses"]["loaded_late"] == {"302": 60}
    assert figures["fanout"]["main"]["invitations"] == 400
    assert figures["fanout"]["main"]["messages"] == 400
    # the generator's writes were flushed before anything was timed
    assert report["checkpoint"] is True
    assert set(figures["close"]) == {"q", "h", "main"}
    for close in figures["close"].values():
        # the analytic part is timed inside the close, so it is part of the whole close
        assert 0 < close["analytic_seconds"] <= close["close_seconds"]
        assert close["ratio"] <= close["whole_close_ratio"]
        # both sides timed in alternating rounds, each figure the median of its rounds
        assert len(close["rounds"]) == CLOSE_ROUNDS
        assert all(r["analytic_seconds"] > 0 for r in close["rounds"])
        assert all(len(r["group_by_seconds_by_plan"]) == 2 for r in close["rounds"])
    assert figures["dashboards"]["statuses"]["heatmap"] == {"200": 10}


@pytest.mark.django_db
def test_generated_history_aggregates_match_the_products_summary():
    """The vectorised history aggregates equal ``summarise`` over the same per-person indices."""
    import numpy as np

    from bench.generate import (
        AGGREGATE_COLUMNS,
        BANDS,
        Aggregator,
        AnswerModel,
        Org,
        library_survey,
    )
    from wellbeing.models import Organisation, Team, TeamAggregate
    from wellbeing.stats.summary import summarise

    assert list(TeamAggregate.BANDS) == BANDS
    assert AGGREGATE_COLUMNS[9:14] == BANDS

    # given a tiny organisation: two leaf teams under one parent
    organisation = Organisation.objects.create(name="Agg", slug="agg", anonymity_threshold=5)
    parent = Team.objects.create(organisation=organisation, name="Parent")
    a = Team.objects.create(organisation=organisation, name="A", parent=parent)
    b = Team.objects.create(
        organisation=organisation, name="B", parent=parent, customer_facing=True
    )
    org = Org(
        organisation_id=organisation.pk, slug="agg", team_ids=[parent.pk, a.pk, b.pk],
        leaf_ids=np.array([a.pk, b.pk]), leaf_cf=np.array([False, True]),
        user_ids=np.arange(1, 41), user_leaf=np.array([0] * 22 + [1] * 18), admin_id=99,
    )  # fmt: skip
    survey = library_survey()
    answers = AnswerModel(org, survey, participation=0.65, weeks=4, seed=3).cycle(
        number=0, cycle_index=0, json_needed=True
    )
    # when the aggregator computes the rows
    rows, _ = Aggregator(org, 5).rows(1, answers)
    # then each published stress row equals summarise() of the same indices
    stress = answers.index["stress"]
    for team_index, team in enumerate([a, b]):
        values = stress[(org.user_leaf == team_index) & ~np.isnan(stress)].tolist()
        expected = summarise(values)
        line = next(
            r for r in rows if r.startswith("team\tstress\t") and r.endswith(f"\t{team.pk}")
        )
        fields = line.split("\t")
        assert fields[2] == "t"
        assert int(fields[4]) == expected.n
        assert float(fields[5]) == pytest.approx(expected.mean)
        assert float(fields[6]) == pytest.approx(expected.sd)
        assert float(fields[7]) == pytest.approx(expected.ci_low)
        assert float(fields[8]) == pytest.approx(expected.ci_high)
        assert [int(f) for f in fields[9:14]] == list(expected.distribution)
