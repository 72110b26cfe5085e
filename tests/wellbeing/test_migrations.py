"""Migrations that carry stored figures over: what was stored is there afterwards, both ways."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("wellbeing", "0013_team_rows_without_database_constraint")]
AFTER = [("wellbeing", "0014_distribution_bands")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_distribution_lists_become_band_columns_and_back():
    try:
        # given cells stored as the JSON list of counts: one published, one suppressed
        apps = _migrate(BEFORE)
        organisation = apps.get_model("wellbeing", "Organisation").objects.create(
            name="Migrated", slug="migrated"
        )
        result = apps.get_model("wellbeing", "CycleResult").objects.create(
            organisation=organisation,
            cycle_key=uuid.uuid4(),
            period_start=date(2026, 1, 5),
            closed_at=datetime(2026, 1, 12, tzinfo=UTC),
            k=5,
        )
        aggregate = apps.get_model("wellbeing", "TeamAggregate").objects
        aggregate.create(
            result=result, scope="organisation", dimension="stress", published=True,
            n=12, index=41.5, sd=9.0, ci_low=35.0, ci_high=48.0, distribution=[1, 4, 5, 2, 0],
        )  # fmt: skip
        aggregate.create(result=result, scope="organisation", dimension="workload")

        # when the bands migration runs
        apps = _migrate(AFTER)
        # then each count is in its band's column, and the suppressed cell has none
        rows = apps.get_model("wellbeing", "TeamAggregate").objects.order_by("dimension")
        bands = ["band_0_20", "band_20_40", "band_40_60", "band_60_80", "band_80_100"]
        assert [list(r) for r in rows.values_list(*bands)] == [
            [1, 4, 5, 2, 0],
            [None] * 5,
        ]

        # and reversing it gives the lists back
        apps = _migrate(BEFORE)
        rows = apps.get_model("wellbeing", "TeamAggregate").objects.order_by("dimension")
        assert list(rows.values_list("distribution", flat=True)) == [[1, 4, 5, 2, 0], None]
    finally:
        _migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )  # leave the schema as the other tests expect it


@pytest.mark.django_db(transaction=True)
def test_flag_settings_beyond_a_year_are_brought_to_the_limit():
    try:
        # given settings stored before the limit: one beyond it, one within
        apps = _migrate([("wellbeing", "0016_team_comments")])
        organisations = apps.get_model("wellbeing", "Organisation").objects
        settings = apps.get_model("wellbeing", "FlagSettings").objects
        settings.create(
            organisation=organisations.create(name="Patient", slug="patient"),
            high_stress_consecutive=400,
            resolve_after_cycles=9000,
        )
        settings.create(
            organisation=organisations.create(name="Usual", slug="usual"),
            high_stress_consecutive=3,
            resolve_after_cycles=52,
        )

        # when the limit's migration runs
        apps = _migrate([("wellbeing", "0018_flag_cycles_at_most_a_year")])

        # then the one beyond it holds the limit, the other is untouched
        rows = apps.get_model("wellbeing", "FlagSettings").objects.order_by("organisation__slug")
        assert list(rows.values_list("high_stress_consecutive", "resolve_after_cycles")) == [
            (52, 52),
            (3, 52),
        ]
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_stored_regional_or_unknown_languages_are_brought_to_supported_ones():
    try:
        apps = _migrate([("wellbeing", "0019_organisation_comment_threshold_default")])
        organisations = apps.get_model("wellbeing", "Organisation").objects
        people = apps.get_model("wellbeing", "User").objects
        austrian = organisations.create(name="Wien", slug="wien", locale="de-AT")
        organisations.create(name="Paris", slug="paris", locale="fr")
        people.create(email="a@wien.test", organisation=austrian, language="de_AT")
        people.create(email="b@wien.test", organisation=austrian, language="fr-FR")
        people.create(email="c@wien.test", organisation=austrian, language="")

        apps = _migrate([("wellbeing", "0020_language_choices")])
        organisations = apps.get_model("wellbeing", "Organisation").objects
        people = apps.get_model("wellbeing", "User").objects
        assert dict(organisations.values_list("slug", "locale")) == {"wien": "de", "paris": "en"}
        assert dict(people.values_list("email", "language")) == {
            "a@wien.test": "de",
            "b@wien.test": "",
            "c@wien.test": "",
        }
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
