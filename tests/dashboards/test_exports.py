"""CSV export cells are safe from formula injection and keep numbers as numbers."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from wellbeing.exports import csv_safe_cell, csv_text


@pytest.mark.parametrize(
    "value",
    ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"],
)
def test_text_a_spreadsheet_would_run_is_prefixed_with_a_quote(value):
    assert csv_safe_cell(value) == "'" + value


def test_plain_text_numbers_and_dates_are_left_alone():
    assert csv_safe_cell("Support Tier 1") == "Support Tier 1"
    assert csv_safe_cell(-3.5) == "-3.5"
    assert csv_safe_cell(12) == "12"
    assert csv_safe_cell(None) == ""
    assert csv_safe_cell(date(2026, 3, 2)) == "2026-03-02"


def test_csv_document_round_trips_with_safe_cells():
    # given a team name crafted as a formula
    text = csv_text(["team", "stress"], [["=cmd|' /C calc'!A0", 55.25], ['Care, "B"', None]])
    # when read back
    rows = list(csv.reader(io.StringIO(text)))
    # then
    assert rows == [["team", "stress"], ["'=cmd|' /C calc'!A0", "55.2"], ['Care, "B"', ""]]
