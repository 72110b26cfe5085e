"""The /manage/metrics/ upload (preview, confirm), the lead's overlay and the admin's figure."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.impact.conftest import week
from tests.workbooks import truncated_sheet, xlsx_bytes
from wellbeing.models import CustomerMetricValue


def upload(client, text: str | bytes, name: str = "csat.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        "/manage/metrics/", {"form": "upload", "file": SimpleUploadedFile(name, data, "text/csv")}
    )


def csv_for(teams, weeks=range(4), value=82) -> str:
    lines = ["metric,team,week_start,value"]
    lines += [f"csat,{t.name},{week(i).isoformat()},{value}" for t in teams for i in weeks]
    return "\n".join(lines) + "\n"


def test_upload_shows_a_preview_and_confirm_applies_it(client, bare_world):
    _org, teams, _lead, admin = bare_world
    client.force_login(admin)
    preview = upload(client, csv_for(teams[:2]))
    assert preview.status_code == 200
    assert "8 new values" in preview.content.decode()
    assert not CustomerMetricValue.objects.exists()  # nothing until confirmed
    confirm = client.post(
        "/manage/metrics/confirm/",
        {"sha256": preview.context["parsed"].sha256, "digest": preview.context["plan"].digest},
    )
    assert confirm.status_code == 302
    assert CustomerMetricValue.objects.count() == 8
    again = upload(client, csv_for(teams[:2]))
    assert "there is nothing to apply" in again.content.decode()


def test_preview_with_errors_lists_rows_and_offers_no_confirm(client, bare_world):
    _org, teams, _lead, admin = bare_world
    client.force_login(admin)
    text = (
        csv_for(teams[:1], weeks=[0])
        + "csat,Nowhere,2025-09-01,80\ncsat,Field Sales,2025-09-01,-5\n"
    )
    preview = upload(client, text)
    body = preview.content.decode()
    assert "2 errors — nothing will be imported" in body
    assert "Unknown team" in body and "outside the valid range" in body
    assert "Apply these values" not in body
    stale = client.post("/manage/metrics/confirm/", {"sha256": "x", "digest": "y"})
    assert stale.status_code == 302
    assert not CustomerMetricValue.objects.exists()


def test_a_workbook_with_a_truncated_sheet_is_refused_next_to_the_field(client, bare_world):
    _org, teams, _lead, admin = bare_world
    client.force_login(admin)
    data = xlsx_bytes(
        [["metric", "team", "week_start", "value"], ["csat", teams[0].name, week(0), 80]],
        sheet_edit=truncated_sheet,
    )
    response = upload(client, data, name="csat.xlsx")
    assert response.status_code == 400
    assert "The workbook cannot be read" in response.content.decode()
    assert not CustomerMetricValue.objects.exists()


def test_a_stale_preview_is_not_applied(client, bare_world):
    _org, teams, _lead, admin = bare_world
    client.force_login(admin)
    preview = upload(client, csv_for(teams[:1], weeks=[0]))
    # someone else posts a different value for the same week in between
    from datetime import date

    from tests.impact.conftest import import_rows
    from wellbeing.customer_metrics import MetricRow

    import_rows(_org, [MetricRow(2, "csat", teams[0].name, week(0), 50.0)])
    response = client.post(
        "/manage/metrics/confirm/",
        {"sha256": preview.context["parsed"].sha256, "digest": preview.context["plan"].digest},
    )
    assert response.status_code == 409
    assert CustomerMetricValue.objects.get().value == 50.0
    assert date.today()  # the clock is irrelevant here; the digest decides


def test_personal_columns_in_the_upload_are_named(client, bare_world):
    _org, _teams, _lead, admin = bare_world
    client.force_login(admin)
    body = upload(client, "metric,team,week_start,value,agent\ncsat,A,2025-09-01,1,Sam\n").content
    assert "looks like personal data" in body.decode()


def test_an_admin_defines_a_custom_metric(client, bare_world):
    org, _teams, _lead, admin = bare_world
    client.force_login(admin)
    response = client.post(
        "/manage/metrics/",
        {
            "form": "define",
            "key": "qa_tone",
            "name": "QA tone",
            "unit": "points",
            "direction": "higher_is_better",
            "min_value": "1",
            "max_value": "10",
        },
    )
    assert response.status_code == 302
    assert org.customer_metrics.get(key="qa_tone").max_value == 10


def test_the_lead_sees_the_metric_overlaid_on_the_team_stress(client, world):
    _org, teams, lead, _admin = world
    client.force_login(lead)
    body = client.get(f"/dashboards/teams/{teams[0].public_id}/").content.decode()
    assert 'id="impact-csat"' in body
    assert "CSAT (% satisfied), % (right axis)" in body
    assert body.count('class="point point-metric"') == 12
    # another team's dashboard is not the lead's to see
    assert client.get(f"/dashboards/teams/{teams[1].public_id}/").status_code == 404


def test_the_admin_overview_states_the_organisation_level_association(client, world):
    _org, _teams, _lead, admin = world
    client.force_login(admin)
    body = client.get("/dashboards/organisation/").content.decode()
    assert "A 10-point rise in team stress is followed two weeks later by a CSAT" in body
    assert "not proof" in body
