"""Customer metric import through the service: planning, bad input, atomicity, idempotency,
and the organisation-level association from published aggregates."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.factories import TeamFactory
from tests.impact.conftest import CSAT_SLOPE, LAG, csat_rows, import_rows, week
from tests.workbooks import truncated_sheet, xlsx_bytes
from wellbeing.customer_metrics import (
    MetricRow,
    customer_metric_create,
    metric_file_read,
    metric_values_plan,
    organisation_impact,
    organisation_impact_cards,
)
from wellbeing.errors import ServiceError
from wellbeing.models import AuditEntry, CustomerMetric, CustomerMetricValue
from wellbeing.tabular_import import ImportFileError


def test_import_defines_the_standard_metric_and_stores_one_value_per_team_and_week(world):
    org, teams, _lead, _admin = world
    csat = CustomerMetric.objects.get(organisation=org, key="csat")
    assert csat.higher_is_better and (csat.min_value, csat.max_value) == (0, 100)
    assert CustomerMetricValue.objects.filter(metric=csat).count() == len(teams) * 12
    assert AuditEntry.objects.filter(organisation=org, action="customer_metrics.import").exists()


def test_the_same_rows_twice_change_nothing(world):
    org, teams, _lead, _admin = world
    result = import_rows(org, csat_rows(teams))
    assert result.counts["value_create"] == 0 and result.counts["value_update"] == 0
    assert result.counts["unchanged"] == len(teams) * 12


def test_a_changed_value_is_an_update_not_a_second_row(world):
    org, teams, _lead, _admin = world
    row = MetricRow(2, "csat", str(teams[1].public_id), week(3), 55.5)
    result = import_rows(org, [row])
    assert result.counts["value_update"] == 1
    stored = CustomerMetricValue.objects.get(team=teams[1], week_start=week(3))
    assert stored.value == 55.5


def test_bad_rows_are_listed_with_their_row_numbers_and_nothing_is_applied(bare_world):
    org, teams, _lead, _admin = bare_world
    good = MetricRow(2, "csat", str(teams[0].public_id), week(1), 80.0)
    rows = [
        good,
        MetricRow(3, "csat", "No Such Team", week(1), 80.0),
        MetricRow(4, "csat", str(teams[0].public_id), date.today() + timedelta(weeks=2), 80.0),
        MetricRow(5, "csat", str(teams[0].public_id), week(-60), 80.0),
        MetricRow(6, "csat", str(teams[0].public_id), week(2), 140.0),
        MetricRow(7, "nps_of_agents", str(teams[0].public_id), week(2), 10.0),
        # the same team by path instead of id, same week as row 2: a duplicate
        MetricRow(8, "csat", "support tier 1", week(1), 81.0),
    ]
    plan = metric_values_plan(organisation=org, rows=rows, today=date.today())
    by_row = {(i.row, i.column) for i in plan.issues}
    assert by_row == {
        (3, "team"),
        (4, "week_start"),
        (5, "week_start"),
        (6, "value"),
        (7, "metric"),
        (8, "team"),
    }
    with pytest.raises(ServiceError) as refused:
        import_rows(org, rows)
    assert refused.value.code == "invalid" and "row 6" in refused.value.fields
    assert not CustomerMetricValue.objects.exists()
    assert not CustomerMetric.objects.filter(organisation=org).exists()


def test_a_team_path_naming_two_teams_that_differ_only_in_case_is_refused(bare_world):
    # given a second top-level "support tier 1" (made before the team pages refused it)
    org, teams, _lead, _admin = bare_world
    twin = TeamFactory(organisation=org, name="support tier 1")
    rows = [
        MetricRow(2, "csat", "Support Tier 1", week(1), 80.0),
        MetricRow(3, "csat", str(twin.public_id), week(1), 70.0),
    ]
    # when values name it by path, then the row is refused instead of going to either team
    plan = metric_values_plan(organisation=org, rows=rows, today=date.today())
    assert [(i.row, i.column) for i in plan.issues] == [(2, "team")]
    assert "names more than one team" in plan.issues[0].message
    assert "give the team's id" in plan.issues[0].message
    # while the team's id still names it
    assert [c.team_id for c in plan.changes if c.kind == "value_create"] == [twin.pk]


def test_a_file_with_personal_data_columns_is_refused_before_any_row_is_read():
    data = b"metric,team,week_start,value,agent_email,Customer Name\ncsat,A,2025-09-01,80,a@b.c,X\n"
    parsed = metric_file_read(data=data, filename="export.csv")
    assert parsed.rows == []
    messages = {i.column: i.message for i in parsed.issues}
    assert set(messages) == {"agent_email", "Customer Name"}
    assert all("personal data" in m for m in messages.values())


def test_file_rows_with_bad_cells_are_each_reported():
    data = (
        b"metric;team;week_start;value\n"
        b"csat;Support Tier 1;2025-09-03;81,5\n"  # decimal comma, a Wednesday -> its Monday
        b"csat;Support Tier 1;2025-09-01;lots\n"
        b"csat;Support Tier 1;01.09.2025;80\n"  # same week as row 2 -> duplicate
        b"csat;someone@example.com;2025-09-08;80\n"
        b"csat;Support Tier 1;next week;80\n"
    )
    parsed = metric_file_read(data=data)
    assert [r.row for r in parsed.rows] == [2]
    assert parsed.rows[0].value == 81.5 and parsed.rows[0].week_start == date(2025, 9, 1)
    assert {(i.row, i.column) for i in parsed.issues} == {
        (3, "value"),
        (4, "week_start"),
        (5, "team"),
        (6, "week_start"),
    }


def test_xlsx_upload_is_read_like_csv():
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Metric", "Team", "Week start", "Value"])
    sheet.append(["fcr", "Support Tier 2", date(2025, 9, 8), 71.25])
    buffer = io.BytesIO()
    book.save(buffer)
    parsed = metric_file_read(data=buffer.getvalue(), filename="fcr.xlsx")
    assert parsed.issues == []
    assert parsed.rows == [MetricRow(2, "fcr", "Support Tier 2", date(2025, 9, 8), 71.25)]


def test_xlsx_cell_with_an_integer_beyond_any_float_is_not_a_number():
    # openpyxl will not write such a number, but a workbook may hold one
    data = xlsx_bytes(
        [
            ["metric", "team", "week_start", "value"],
            ["csat", "Support Tier 1", "2025-09-08", 12345],
        ],
        sheet_edit=lambda xml: xml.replace(b"<v>12345</v>", b"<v>" + b"9" * 400 + b"</v>"),
    )
    parsed = metric_file_read(data=data, filename="csat.xlsx")
    assert parsed.rows == []
    assert [(i.row, i.column, i.message) for i in parsed.issues] == [(2, "value", "Not a number.")]


def test_xlsx_with_a_truncated_sheet_is_refused_as_unreadable():
    data = xlsx_bytes(
        [["metric", "team", "week_start", "value"], ["csat", "Support Tier 1", "2025-09-08", 80]],
        sheet_edit=truncated_sheet,
    )
    with pytest.raises(ImportFileError, match="The workbook cannot be read"):
        metric_file_read(data=data, filename="csat.xlsx")


def test_defining_a_taken_key_is_refused_with_a_field_error(bare_world):
    org, _teams, _lead, admin = bare_world
    customer_metric_create(organisation=org, key="qa_tone", name="QA tone", actor=admin)
    with pytest.raises(ServiceError) as excinfo:
        customer_metric_create(organisation=org, key="QA_Tone", name="Again", actor=admin)
    assert excinfo.value.code == "duplicate" and excinfo.value.fields == {"key": ["Already used."]}
    assert org.customer_metrics.get().name == "QA tone"
    assert AuditEntry.objects.filter(action="customer_metric.create").count() == 1


def test_a_key_taken_by_a_concurrent_request_is_the_same_field_error(bare_world, monkeypatch):
    # given another request that defines the same key just before this one writes
    org, _teams, _lead, admin = bare_world
    create = CustomerMetric.objects.create

    def create_after_a_concurrent_define(**fields):
        CustomerMetric(organisation=org, key=fields["key"], name="Concurrent").save()
        return create(**fields)

    monkeypatch.setattr(CustomerMetric.objects, "create", create_after_a_concurrent_define)
    # when the metric is defined, then the unique key's refusal is the usual field error
    with pytest.raises(ServiceError) as excinfo:
        customer_metric_create(organisation=org, key="qa_tone", name="QA tone", actor=admin)
    assert excinfo.value.fields == {"key": ["Already used."]}
    # and nothing of this request was written
    assert not AuditEntry.objects.filter(action="customer_metric.create").exists()


def test_organisation_association_recovers_the_built_in_two_week_effect(world):
    org, teams, _lead, _admin = world
    stress = next(
        i for i in organisation_impact(organisation=org) if i.dimension == "stress"
    ).summary
    assert stress.enough and stress.association
    assert stress.headline.lag == LAG
    assert stress.headline.ci_low <= CSAT_SLOPE <= stress.headline.ci_high
    assert stress.headline.n_teams == len(teams)


def test_the_admin_sentence_names_the_lag_the_interval_and_the_caution(world):
    org, _teams, _lead, _admin = world
    card = next(
        c for c in organisation_impact_cards(organisation=org) if c["dimension"] == "stress"
    )
    assert card["status"] == "association"
    assert card["sentence"].startswith("A 10-point rise in team stress is followed two weeks later")
    assert "95 % interval" in card["sentence"] and "across 5 teams" in card["sentence"]
    assert "not proof" in card["caution"]


def test_suppressed_cycles_do_not_feed_the_association(db):
    # given five teams of 4 people with k = 5: every stored cycle is suppressed
    from tests.dashboards.conftest import record_history
    from tests.factories import OrganisationFactory, team_with_members
    from tests.impact.conftest import stress_level

    org = OrganisationFactory(anonymity_threshold=5)
    teams = [
        team_with_members(organisation=org, size=4, name=f"Small {i}", customer_facing=True)
        for i in range(5)
    ]
    record_history(organisation=org, teams=teams, cycles=12, level=stress_level)
    import_rows(org, csat_rows(teams, value=lambda team, i: 80.0 + i % 3))
    # when
    stress = next(i for i in organisation_impact(organisation=org) if i.dimension == "stress")
    # then nothing was paired: no stress figure below k exists to pair with
    assert not stress.summary.enough
    assert all(e.n_team_weeks == 0 for e in stress.summary.lags)
