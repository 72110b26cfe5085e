"""``manage.py import_people``: dry run by default, --apply writes, errors abort."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.workbooks import truncated_sheet, xlsx_bytes
from wellbeing.models import Team, User

GOOD = (
    "email,name,team path,lead,start,end\n"
    "ana@acme.test,Ana,Customer Experience / Support Tier 1,yes,2025-01-06,\n"
    "ben@acme.test,Ben,Customer Experience / Billing,no,,\n"
)


@pytest.fixture
def people_file(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(GOOD, encoding="utf-8")
    return path


def test_dry_run_prints_the_plan_and_writes_nothing(organisation, people_file, capsys):
    call_command("import_people", str(people_file), "--organisation", organisation.slug)
    out = capsys.readouterr().out
    assert "Dry run: 2 people to create" in out
    assert "2 rows (csv, encoding UTF-8)" in out
    assert not User.objects.filter(organisation=organisation).exists()


def test_apply_writes_and_a_second_apply_is_a_no_op(organisation, people_file, capsys):
    call_command("import_people", str(people_file), "--apply", "--organisation", organisation.slug)
    assert "Applied: 2 people to create" in capsys.readouterr().out
    assert User.objects.filter(organisation=organisation).count() == 2
    assert Team.objects.filter(organisation=organisation).count() == 3
    call_command("import_people", str(people_file), "--apply", "--organisation", organisation.slug)
    assert "Applied: 0 people to create, 0 updates, 0 to deactivate" in capsys.readouterr().out


def test_errors_abort_with_row_numbers(organisation, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(GOOD + "broken,Bad,CX,perhaps,,\n", encoding="utf-8")
    with pytest.raises(CommandError, match="2 errors"):
        call_command("import_people", str(path), "--apply", "--organisation", organisation.slug)
    err = capsys.readouterr().err
    assert "row 4, email" in err and "row 4, lead" in err
    assert not User.objects.filter(organisation=organisation).exists()


def test_workbook_with_a_truncated_sheet_is_a_command_error(organisation, tmp_path):
    path = tmp_path / "people.xlsx"
    path.write_bytes(
        xlsx_bytes([["email", "team path"], ["ana@acme.test", "CX"]], sheet_edit=truncated_sheet)
    )
    with pytest.raises(CommandError, match="The workbook cannot be read"):
        call_command("import_people", str(path), "--organisation", organisation.slug)
    assert not User.objects.filter(organisation=organisation).exists()
