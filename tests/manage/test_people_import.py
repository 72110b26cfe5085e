"""People import: parsing, the plan, atomic apply, idempotency, leavers, bad input."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import Workbook

from tests.factories import MembershipFactory, OrganisationFactory, TeamFactory, UserFactory
from tests.workbooks import truncated_sheet, xlsx_bytes
from wellbeing.errors import ServiceError
from wellbeing.models import AuditEntry, Membership, Team, TeamLead, User
from wellbeing.people_import import (
    EMAIL_MAX,
    MAX_BYTES,
    NAME_MAX,
    TEAM_NAME_MAX,
    ImportFileError,
    import_file_read,
    import_plan,
    people_import_apply,
)

TODAY = date(2026, 3, 2)
HEADER = "email,name,team path,lead,start,end\n"


def csv_bytes(*lines: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return (header + "\n".join(lines) + "\n").encode(encoding)


def apply(organisation, data: bytes, filename: str = "people.csv"):
    parsed = import_file_read(data=data, filename=filename)
    assert parsed.issues == []
    return people_import_apply(organisation=organisation, rows=parsed.rows, actor=None, today=TODAY)


def plan_for(organisation, data: bytes, filename: str = "people.csv"):
    parsed = import_file_read(data=data, filename=filename)
    return parsed, import_plan(
        organisation=organisation,
        rows=parsed.rows,
        today=TODAY,
        present_emails=parsed.seen_emails,
    )


GOOD = csv_bytes(
    "ana@acme.test,Ana Alves,Customer Experience / Support Tier 1,yes,2025-01-06,",
    "ben@acme.test,Ben Brandt,Customer Experience / Support Tier 1,no,2025-02-03,",
    "cem@acme.test,Cem Çelik,Customer Experience / Billing,no,,",
)


def test_file_with_errors_lists_each_error_with_its_row_and_applies_nothing(organisation):
    # given a file with a bad e-mail, a bad date, a duplicate and a bad lead value
    data = csv_bytes(
        "ana@acme.test,Ana,CX / Support,yes,2025-01-06,",
        "not-an-email,Bad,CX / Support,no,,",
        "ben@acme.test,Ben,CX / Support,maybe,,",
        "cem@acme.test,Cem,CX / Support,no,06/01/2025,",
        "ana@acme.test,Ana again,CX / Support,no,,",
        "dan@acme.test,Dan,CX / Support,no,2025-05-01,2025-04-01",
    )
    # when it is read
    parsed = import_file_read(data=data, filename="people.csv")
    # then every error names its row and column
    found = {(i.row, i.column) for i in parsed.issues}
    assert found == {(3, "email"), (4, "lead"), (5, "start"), (6, "email"), (7, "end")}
    assert any("row 2" in i.message for i in parsed.issues if i.row == 6)
    # and planning (the preview) writes nothing
    import_plan(organisation=organisation, rows=parsed.rows, today=TODAY)
    assert not User.objects.filter(organisation=organisation).exists()
    assert not Team.objects.filter(organisation=organisation).exists()


def test_valid_email_longer_than_its_column_is_a_row_error(organisation):
    # given an address Django's validator accepts (up to 320 characters) but User.email cannot
    # hold (254)
    email = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 60]) + ".com"
    assert len(email) == 257
    # when it is read
    parsed = import_file_read(data=csv_bytes(f"{email},Long,CX,no,,"))
    # then the row is refused in the preview, before the database would refuse it
    assert [(i.row, i.column) for i in parsed.issues] == [(2, "email")]
    assert "longer than 254 characters" in parsed.issues[0].message
    assert parsed.rows == []


def test_length_limits_are_the_columns_lengths():
    assert User._meta.get_field("email").max_length == EMAIL_MAX
    assert User._meta.get_field("full_name").max_length == NAME_MAX
    assert Team._meta.get_field("name").max_length == TEAM_NAME_MAX


def test_fixed_file_is_applied_with_teams_people_memberships_and_leads(organisation):
    # when a valid file is applied
    result = apply(organisation, GOOD)
    # then teams were created from the paths, people joined them, and Ana leads hers
    cx = Team.objects.get(organisation=organisation, name="Customer Experience", parent=None)
    support = Team.objects.get(parent=cx, name="Support Tier 1")
    assert Team.objects.filter(parent=cx, name="Billing").exists()
    ana = User.objects.get(email="ana@acme.test")
    assert ana.organisation == organisation and ana.full_name == "Ana Alves"
    assert Membership.objects.get(user=ana).team == support
    assert Membership.objects.get(user=ana).started_on == date(2025, 1, 6)
    assert TeamLead.objects.filter(user=ana, team=support).exists()
    assert not ana.has_usable_password()
    assert result.counts["person_create"] == 3 and result.counts["team_create"] == 3
    # and it is audited
    assert AuditEntry.objects.filter(organisation=organisation, action="people.import").exists()
    assert AuditEntry.objects.filter(organisation=organisation, action="person.create").count() == 3
    # the new teams by the service that creates them, as from the teams page and the admin
    created = AuditEntry.objects.filter(organisation=organisation, action="team.create")
    assert sorted(e.after["name"] for e in created) == [
        "Billing",
        "Customer Experience",
        "Support Tier 1",
    ]


def test_reapplying_the_same_file_changes_nothing(organisation):
    apply(organisation, GOOD)
    before = (
        list(User.objects.values_list("id", "full_name", "is_active").order_by("id")),
        list(Membership.objects.values_list("id", "team_id", "started_on", "ended_on")),
        list(TeamLead.objects.values_list("user_id", "team_id")),
        Team.objects.count(),
    )
    entries = AuditEntry.objects.count()
    # when the same file is applied again
    result = apply(organisation, GOOD)
    # then the plan was empty and nothing changed, not even the audit log
    assert result.plan.is_noop
    after = (
        list(User.objects.values_list("id", "full_name", "is_active").order_by("id")),
        list(Membership.objects.values_list("id", "team_id", "started_on", "ended_on")),
        list(TeamLead.objects.values_list("user_id", "team_id")),
        Team.objects.count(),
    )
    assert after == before
    assert AuditEntry.objects.count() == entries


def test_person_absent_from_the_file_is_deactivated_not_deleted(organisation):
    apply(organisation, GOOD)
    # when Ben is missing from the next file
    apply(
        organisation,
        csv_bytes(
            "ana@acme.test,Ana Alves,Customer Experience / Support Tier 1,yes,2025-01-06,",
            "cem@acme.test,Cem Çelik,Customer Experience / Billing,no,,",
        ),
    )
    # then Ben is inactive, his membership ended, and he still exists
    ben = User.objects.get(email="ben@acme.test")
    assert not ben.is_active
    assert Membership.objects.get(user=ben).ended_on == TODAY


def test_person_with_an_end_date_today_or_earlier_is_a_leaver(organisation):
    apply(organisation, GOOD)
    # when Cem's row gets an end date
    apply(
        organisation,
        csv_bytes(
            "ana@acme.test,Ana Alves,Customer Experience / Support Tier 1,yes,2025-01-06,",
            "ben@acme.test,Ben Brandt,Customer Experience / Support Tier 1,no,2025-02-03,",
            "cem@acme.test,Cem Çelik,Customer Experience / Billing,no,,2026-03-02",
        ),
    )
    cem = User.objects.get(email="cem@acme.test")
    assert not cem.is_active
    assert Membership.objects.get(user=cem).ended_on == TODAY


def test_admins_absent_from_the_file_are_kept(organisation):
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    apply(organisation, GOOD)
    admin.refresh_from_db()
    assert admin.is_active


def test_the_admin_running_the_import_cannot_end_their_own_account(organisation):
    # given an admin in a team
    admin = UserFactory(organisation=organisation, is_org_admin=True, email="boss@acme.test")
    MembershipFactory(
        user=admin,
        team=TeamFactory(organisation=organisation, name="Ops"),
        started_on=date(2025, 1, 6),
    )
    # when their own row ends yesterday
    parsed = import_file_read(data=csv_bytes("boss@acme.test,Boss,Ops,no,,2026-03-01"))
    plan = import_plan(organisation=organisation, rows=parsed.rows, today=TODAY, actor=admin)
    # then the preview shows the row's error, and the apply refuses it as the people page does
    assert [(i.row, i.column) for i in plan.issues] == [(2, "end")]
    assert "You cannot deactivate yourself" in plan.issues[0].message
    with pytest.raises(ServiceError):
        people_import_apply(organisation=organisation, rows=parsed.rows, actor=admin, today=TODAY)
    admin.refresh_from_db()
    assert admin.is_active
    assert admin.memberships.get().ended_on is None


def test_move_to_another_team_ends_the_old_membership(organisation):
    apply(organisation, GOOD)
    apply(
        organisation,
        csv_bytes(
            "ana@acme.test,Ana Alves,Customer Experience / Support Tier 1,yes,2025-01-06,",
            "ben@acme.test,Ben Brandt,Customer Experience / Billing,no,2026-03-02,",
            "cem@acme.test,Cem Çelik,Customer Experience / Billing,no,,",
        ),
    )
    ben = User.objects.get(email="ben@acme.test")
    memberships = list(Membership.objects.filter(user=ben).order_by("started_on"))
    assert [m.team.name for m in memberships] == ["Support Tier 1", "Billing"]
    assert memberships[0].ended_on == date(2026, 3, 1)
    assert memberships[1].ended_on is None


def test_path_that_makes_a_team_its_own_ancestor_is_refused(organisation):
    # given an existing tree Customer Experience / Support
    cx = TeamFactory(organisation=organisation, name="Customer Experience")
    TeamFactory(organisation=organisation, name="Support", parent=cx)
    # when one row repeats a team in its own path and another inverts the tree
    parsed, plan = plan_for(
        organisation,
        csv_bytes(
            "ana@acme.test,Ana,Sales / EMEA / Sales,no,,",
            "ben@acme.test,Ben,Support / Customer Experience,no,,",
        ),
    )
    # then both rows are refused as cycles
    assert [(i.row, i.column) for i in parsed.issues] == [(2, "team_path")]
    assert "own ancestor" in parsed.issues[0].message
    assert [(i.row, i.column) for i in plan.issues] == [(3, "team_path")]
    with pytest.raises(ServiceError):
        people_import_apply(organisation=organisation, rows=parsed.rows, actor=None, today=TODAY)
    assert Team.objects.filter(organisation=organisation).count() == 2


def test_path_naming_two_teams_that_differ_only_in_case_is_a_row_error(organisation):
    # given two top-level teams the database tells apart but a path (matched ignoring case)
    # does not (made before the team pages refused such names)
    TeamFactory(organisation=organisation, name="Support")
    TeamFactory(organisation=organisation, name="support")
    # when rows name it, directly or as a parent
    _parsed, plan = plan_for(
        organisation,
        csv_bytes(
            "ana@acme.test,Ana,SUPPORT,no,,",
            "ben@acme.test,Ben,Support / Tier 1,no,,",
            "cem@acme.test,Cem,Billing,no,,",
        ),
    )
    # then those rows are refused rather than given to either team, and the rest is planned
    assert [(i.row, i.column) for i in plan.issues] == [(2, "team_path"), (3, "team_path")]
    assert "names more than one team" in plan.issues[0].message
    assert {c.subject for c in plan.creates} == {"Billing", "cem@acme.test"}


def test_path_that_could_mean_a_team_with_a_slash_in_its_name_is_a_row_error(organisation):
    # given a team whose name contains "/" (made before the team pages refused it)
    TeamFactory(organisation=organisation, name="Sales/Marketing")
    # when a row's path reads as that name split in two
    _parsed, plan = plan_for(
        organisation, csv_bytes("ana@acme.test,Ana,Sales / Marketing / EU,no,,")
    )
    # then it is refused, instead of creating "Sales" / "Marketing" next to the team
    assert [(i.row, i.column) for i in plan.issues] == [(2, "team_path")]
    assert "“Sales/Marketing”, whose name contains “/”" in plan.issues[0].message
    assert plan.creates == []


def test_email_of_another_organisation_is_refused(organisation):
    UserFactory(organisation=OrganisationFactory(), email="ana@acme.test")
    parsed, plan = plan_for(organisation, GOOD)
    assert [(i.row, i.column) for i in plan.issues] == [(2, "email")]


def test_xlsx_upload_works(organisation):
    # given the same people as a workbook, with a real date cell
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["E-mail", "Name", "Team path", "Lead", "Start", "End"])
    sheet.append(["ana@acme.test", "Ana", "CX / Support", "yes", date(2025, 1, 6), None])
    sheet.append(["ben@acme.test", "Ben", "CX / Support", "no", "2025-02-03", None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    # when imported
    apply(organisation, buffer.getvalue(), filename="people.xlsx")
    # then both people exist with their dates
    ana = User.objects.get(email="ana@acme.test")
    assert Membership.objects.get(user=ana).started_on == date(2025, 1, 6)
    assert TeamLead.objects.filter(user=ana, team__name="Support").exists()


def test_windows_1252_file_is_read_and_says_so():
    data = csv_bytes("cem@acme.test,Cem Çelik Müller,CX / Support,no,,", encoding="cp1252")
    parsed = import_file_read(data=data, filename="people.csv")
    assert parsed.encoding == "Windows-1252"
    assert parsed.rows[0].name == "Cem Çelik Müller"


def test_utf8_with_bom_and_semicolons_is_read():
    data = b"\xef\xbb\xbf" + csv_bytes("cem@acme.test;Cem Çelik;CX / Support;no;;").replace(
        b",", b";"
    )
    parsed = import_file_read(data=data, filename="people.csv")
    assert parsed.encoding == "UTF-8 (with BOM)"
    assert parsed.issues == [] and parsed.rows[0].name == "Cem Çelik"


def test_undecodable_file_is_refused():
    with pytest.raises(ImportFileError, match="neither UTF-8 nor Windows-1252"):
        import_file_read(data=HEADER.encode() + b"a@b.test,\x81\x8d\x8f,x,no,,\n")


def test_huge_file_is_refused_before_parsing():
    with pytest.raises(ImportFileError, match="larger than 5 MB"):
        import_file_read(data=b"x" * (MAX_BYTES + 1), filename="people.csv")


def test_too_many_rows_is_refused(monkeypatch):
    monkeypatch.setattr("wellbeing.people_import.MAX_ROWS", 3)
    data = csv_bytes(*(f"p{i}@acme.test,P,CX,no,," for i in range(4)))
    with pytest.raises(ImportFileError, match="more than 3 rows"):
        import_file_read(data=data)


def test_broken_workbook_is_refused():
    with pytest.raises(ImportFileError):
        import_file_read(data=b"PK\x03\x04 not really a zip", filename="people.xlsx")


def test_workbook_with_a_truncated_sheet_is_refused_as_unreadable():
    data = xlsx_bytes([["email", "team path"], ["ana@acme.test", "CX"]], sheet_edit=truncated_sheet)
    with pytest.raises(ImportFileError, match="The workbook cannot be read"):
        import_file_read(data=data, filename="people.xlsx")


def test_unknown_and_missing_columns_are_named():
    parsed = import_file_read(data=b"email,name,shoe size\nana@acme.test,Ana,42\n")
    messages = [(i.row, i.column) for i in parsed.issues]
    assert (1, "shoe size") in messages and (1, "team_path") in messages
    assert parsed.rows == []


def test_stale_preview_is_refused_when_people_changed_since(organisation):
    parsed, plan = plan_for(organisation, GOOD)
    # someone else adds Ana meanwhile
    team = TeamFactory(organisation=organisation, name="Elsewhere")
    MembershipFactory(team=team, user__email="ana@acme.test")
    with pytest.raises(ServiceError) as caught:
        people_import_apply(
            organisation=organisation,
            rows=parsed.rows,
            actor=None,
            today=TODAY,
            expected_digest=plan.digest,
        )
    assert caught.value.code == "stale"
    assert not User.objects.filter(email="ben@acme.test").exists()
