"""XLSX uploads for the import tests, including broken ones that openpyxl would never write."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from openpyxl import Workbook

SHEET = "xl/worksheets/sheet1.xml"


def xlsx_bytes(
    rows: Iterable[Sequence[Any]], *, sheet_edit: Callable[[bytes], bytes] | None = None
) -> bytes:
    """A workbook whose first sheet holds ``rows``; ``sheet_edit`` rewrites that sheet's XML."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    if sheet_edit is None:
        return buffer.getvalue()
    edited = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(edited, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            target.writestr(info, sheet_edit(content) if info.filename == SHEET else content)
    return edited.getvalue()


def truncated_sheet(xml: bytes) -> bytes:
    """The sheet cut in the middle, as a failed save or transfer leaves it."""
    return xml[: len(xml) // 2]
