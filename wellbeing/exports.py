"""CSV exports of what the dashboards show.  Pure: no Django import.

Two rules: an export carries only figures the page itself shows (stored, published aggregates —
the caller passes nothing else), and it is safe to open in a spreadsheet: a cell that a
spreadsheet would read as a formula (starting with ``= + - @``, a tab or a carriage return) is
prefixed with a single quote (OWASP "CSV injection").  Team names are typed by admins and an
imported name like ``=HYPERLINK(...)`` must not run on a colleague's machine.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_cell(value: object) -> str:
    """The cell as text, neutralised when a spreadsheet would treat it as a formula.

    Numbers are written as plain numbers (a negative change like -3.5 is data, not a formula);
    only text is prefixed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:.1f}" if isinstance(value, float) else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A whole CSV document (RFC 4180 quoting, CRLF line ends) with every cell made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow([csv_safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_safe_cell(cell) for cell in row])
    return buffer.getvalue()
