"""The people import pages: upload → preview with row errors → confirm, atomically."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.workbooks import truncated_sheet, xlsx_bytes
from wellbeing.models import AuditEntry, Team, User

HEADER = "email,name,team path,lead,start,end\n"
GOOD = (
    HEADER
    + "ana@acme.test,Ana,Customer Care / Frontline Alpha,yes,2025-01-06,\n"
    + "ben@acme.test,Ben,Customer Care / Frontline Beta,no,,\n"
)


def upload(client, text: str | bytes, name: str = "people.csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(
        reverse("manage:people_import"), {"file": SimpleUploadedFile(name, data, "text/csv")}
    )


def test_file_with_errors_shows_each_row_error_and_no_confirm_button(admin_client, world):
    response = upload(
        admin_client, GOOD + "broken,Bad,Customer Care,maybe,,\nana@acme.test,Ana,X,no,,\n"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "3 errors — nothing will be imported" in body
    assert "<td>4</td><td>email</td>" in body and "<td>4</td><td>lead</td>" in body
    assert "<td>5</td><td>email</td>" in body and "already on row 2" in body
    assert "Apply these changes" not in body
    assert not User.objects.filter(email="ben@acme.test").exists()
    assert not Team.objects.filter(name="Frontline Beta").exists()


def test_preview_then_confirm_applies_everything_and_deactivates_leavers(admin_client, world):
    # given a file listing the lead, the employee and two new people (the admin is absent)
    text = (
        GOOD
        + f"{world.lead.email},Lead,Customer Care / Frontline Alpha,yes,,\n"
        + f"{world.employee.email},Emp,Customer Care / Frontline Alpha,no,,2020-06-30\n"
    )
    preview = upload(admin_client, text)
    body = preview.content.decode()
    assert "Apply these changes" in body
    assert "new team Customer Care / Frontline Beta" in body
    assert not User.objects.filter(email="ana@acme.test").exists()  # preview writes nothing
    # when confirmed
    digest = preview.context["plan"].digest
    sha = preview.context["parsed"].sha256
    response = admin_client.post(
        reverse("manage:people_import_confirm"), {"sha256": sha, "digest": digest}, follow=True
    )
    # then it is applied: new people, the new team, the leaver deactivated, the admin kept
    assert "Import applied" in response.content.decode()
    assert User.objects.get(email="ben@acme.test").memberships.get().team.name == "Frontline Beta"
    world.employee.refresh_from_db()
    world.admin.refresh_from_db()
    assert not world.employee.is_active and world.admin.is_active
    assert AuditEntry.objects.get(action="people.import").actor == world.admin
    # and uploading the same file again shows nothing to apply
    again = upload(admin_client, text).content.decode()
    assert "nothing to apply" in again


def test_own_row_with_an_end_date_is_an_error_in_the_preview(admin_client, world):
    text = GOOD + f"{world.admin.email},Admin,Customer Care / Frontline Alpha,no,,2020-06-30\n"
    body = upload(admin_client, text).content.decode()
    assert "You cannot deactivate yourself" in body
    assert "Apply these changes" not in body
    world.admin.refresh_from_db()
    assert world.admin.is_active


def test_confirm_without_a_matching_preview_applies_nothing(admin_client, world):
    response = admin_client.post(
        reverse("manage:people_import_confirm"), {"sha256": "0" * 64, "digest": "x"}, follow=True
    )
    assert "preview has expired" in response.content.decode()
    assert not User.objects.filter(email="ana@acme.test").exists()


def test_confirm_after_the_organisation_changed_shows_a_fresh_preview(admin_client, world):
    preview = upload(admin_client, GOOD)
    Team.objects.create(
        organisation=world.organisation, name="Frontline Beta", parent=world.support.parent
    )
    response = admin_client.post(
        reverse("manage:people_import_confirm"),
        {"sha256": preview.context["parsed"].sha256, "digest": preview.context["plan"].digest},
    )
    assert response.status_code == 409
    assert "changed since the preview" in response.content.decode()
    assert not User.objects.filter(email="ana@acme.test").exists()


def test_undecodable_or_binary_upload_is_refused_next_to_the_field(admin_client, world):
    response = upload(admin_client, HEADER.encode() + b"a@b.test,\x81\x8d,x,no,,\n")
    assert "neither UTF-8 nor Windows-1252" in response.content.decode()


def test_workbook_with_a_truncated_sheet_is_refused_next_to_the_field(admin_client, world):
    data = xlsx_bytes(
        [["email", "team path"], ["ana@acme.test", "Billing"]], sheet_edit=truncated_sheet
    )
    response = upload(admin_client, data, name="people.xlsx")
    assert response.status_code == 200
    assert "The workbook cannot be read" in response.content.decode()
    assert not User.objects.filter(email="ana@acme.test").exists()


def test_cycle_in_team_paths_is_shown_with_its_row(admin_client, world):
    response = upload(
        admin_client, HEADER + "ana@acme.test,Ana,Frontline Alpha / Customer Care,no,,\n"
    )
    body = response.content.decode()
    assert "<td>2</td><td>team_path</td>" in body and "own ancestor" in body
