"""Reading a spreadsheet upload (CSV or XLSX) into validated rows, for the imports that take one
(``wellbeing.people_import``, ``wellbeing.customer_metrics``).

What is shared here: the size limit, the file's format and text encoding (UTF-8 with or without
BOM, then Windows-1252, and it says which), a workbook's unpacked size (zip bombs), the header
mapped through column aliases, blank rows skipped and the row limit, per-row issue records, the
digest of a plan and the compact text that carries rows from a preview to its confirm step.
What each import keeps: its columns, the validation of one row, and what a row means.

Pure: no database, and it never logs cell contents.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TypeVar

from django.utils.translation import gettext as _

from .errors import ServiceError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

MAX_BYTES = 5 * 1024 * 1024
MAX_XLSX_UNCOMPRESSED = 100 * 1024 * 1024  # a zip bomb stops here, before openpyxl opens it
MAX_CELL_CHARS = 1000


class ImportFileError(Exception):
    """The file as a whole cannot be read (too big, not a CSV/XLSX, undecodable)."""


@dataclass(frozen=True)
class ImportIssue:
    row: int | None  # spreadsheet row number (the header is row 1); None for the whole file
    column: str
    message: str


# --- Cells ------------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = cell_text(value)
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise ValueError(text)


def header_key(name: Any) -> str:
    return re.sub(r"[\s\-_]+", "_", cell_text(name).lower()).strip("_")


# --- Records ----------------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "UTF-8 (with BOM)"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        raise ImportFileError(
            _("The file is neither UTF-8 nor Windows-1252 text. Save it as CSV UTF-8 and retry.")
        )


def _csv_records(data: bytes) -> tuple[Iterator[list[str]], str]:
    text, encoding = _decode(data)
    if "\x00" in text:
        raise ImportFileError(_("The file contains binary data; upload a CSV or XLSX file."))
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    return reader, encoding


def _xlsx_records(data: bytes) -> Iterator[list[Any]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ImportFileError(_("The file is not a valid XLSX workbook."))
    if unpacked > MAX_XLSX_UNCOMPRESSED:
        raise ImportFileError(_("The workbook unpacks to more than 100 MB; it is refused."))
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        rows = workbook.worksheets[0].iter_rows(values_only=True)
    except Exception as exc:  # openpyxl raises a zoo of types for broken workbooks
        raise _unreadable_workbook(exc)
    # A read-only workbook parses its sheet lazily, row by row: a broken sheet (truncated XML,
    # say) surfaces only here, while the rows are being read.
    while True:
        try:
            values = next(rows, None)
        except Exception as exc:  # the same zoo, from the XML parser this time
            raise _unreadable_workbook(exc)
        if values is None:
            return
        yield ["" if v is None else v for v in values]


def _unreadable_workbook(exc: Exception) -> ImportFileError:
    return ImportFileError(
        _("The workbook cannot be read: %(error)s") % {"error": type(exc).__name__}
    )


# --- A whole file -----------------------------------------------------------------------------


RowT = TypeVar("RowT")


@dataclass
class TabularFile(Generic[RowT]):
    """An upload read: its fingerprint and format, the rows that passed the caller's
    validation, and the issues (header first, then row by row)."""

    sha256: str
    file_format: str  # "csv" or "xlsx"
    encoding: str  # how a CSV was decoded; "" for XLSX
    rows: list[RowT] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)
    row_count: int = 0  # non-blank rows below the header


FileT = TypeVar("FileT", bound=TabularFile[Any])
RowValidate = Callable[[int, dict[str, Any]], tuple[Any | None, list[ImportIssue]]]


def tabular_file_read(
    *,
    data: bytes,
    filename: str,
    file_type: type[FileT],
    too_large: str,
    aliases: Mapping[str, str],
    required: Sequence[str],
    unknown_column: Callable[[str, Any], ImportIssue],
    max_rows: int,
    row_validate: RowValidate,
) -> FileT:
    """Read an upload into a ``file_type``: each non-blank row goes to
    ``row_validate(row_number, cells)`` (cells keyed by canonical column name), which returns
    the row or ``None``, and its issues.

    ``too_large`` is the message for a file over ``MAX_BYTES`` (with ``%(mb)d``);
    ``unknown_column(key, raw_header)`` makes the issue for a header that no alias names.
    When the header has issues, no row is read (row errors would be noise then).  Raises
    ``ImportFileError`` when the file as a whole is unusable."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(too_large % {"mb": MAX_BYTES // (1024 * 1024)})
    if not data.strip():
        raise ImportFileError(_("The file is empty."))
    is_xlsx = data[:4] == b"PK\x03\x04" or filename.lower().endswith((".xlsx", ".xlsm"))
    records: Iterable[list[Any]]
    if is_xlsx:
        records, file_format, encoding = _xlsx_records(data), "xlsx", ""
    else:
        records, encoding = _csv_records(data)
        file_format = "csv"
    result = file_type(
        sha256=hashlib.sha256(data).hexdigest(), file_format=file_format, encoding=encoding
    )
    try:
        _read_records(
            iter(records),
            result,
            aliases=aliases,
            required=required,
            unknown_column=unknown_column,
            max_rows=max_rows,
            row_validate=row_validate,
        )
    except csv.Error as exc:
        raise ImportFileError(_("The CSV file is malformed: %(error)s") % {"error": str(exc)})
    return result


def _read_records(
    records: Iterator[list[Any]],
    result: TabularFile[Any],
    *,
    aliases: Mapping[str, str],
    required: Sequence[str],
    unknown_column: Callable[[str, Any], ImportIssue],
    max_rows: int,
    row_validate: RowValidate,
) -> None:
    header = next(records, None)
    if header is None:
        raise ImportFileError(_("The file is empty."))
    columns: list[str | None] = []
    for raw in header:
        key = header_key(raw)
        if not key:
            columns.append(None)
            continue
        canonical = aliases.get(key)
        if canonical is None:
            result.issues.append(unknown_column(key, raw))
        elif canonical in columns:
            result.issues.append(ImportIssue(1, canonical, _("The column appears twice.")))
            canonical = None
        columns.append(canonical)
    for name in required:
        if name not in columns:
            result.issues.append(
                ImportIssue(1, name, _("The column “%(name)s” is missing.") % {"name": name})
            )
    if result.issues:
        return
    for index, values in enumerate(records, start=2):
        if all(cell_text(v) == "" for v in values):
            continue
        result.row_count += 1
        if result.row_count > max_rows:
            raise ImportFileError(
                _("The file has more than %(rows)d rows; split it.") % {"rows": max_rows}
            )
        cells = {
            name: values[i] if i < len(values) else ""
            for i, name in enumerate(columns)
            if name is not None
        }
        row, issues = row_validate(index, cells)
        result.issues.extend(issues)
        if row is not None:
            result.rows.append(row)


# --- Plans --------------------------------------------------------------------------------------


ChangeT = TypeVar("ChangeT", bound="DataclassInstance")


@dataclass
class TabularPlan(Generic[ChangeT]):
    """The changes an import's rows imply (dataclasses) and the issues only the database
    reveals.  The confirm step applies a plan only if its digest is the one previewed."""

    changes: list[ChangeT] = field(default_factory=list)
    issues: list[ImportIssue] = field(default_factory=list)

    @property
    def digest(self) -> str:
        body = json.dumps([asdict(c) for c in self.changes], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def is_noop(self) -> bool:
        return not self.changes


def issues_error(issues: Iterable[ImportIssue], message: str) -> ServiceError:
    """One "invalid" ``ServiceError`` listing every issue under "row N" (or "file")."""
    fields: dict[str, list[str]] = defaultdict(list)
    for issue in issues:
        fields[f"row {issue.row}" if issue.row else "file"].append(
            f"{issue.column}: {issue.message}"
        )
    return ServiceError("invalid", message, fields=dict(fields))


# --- Carrying rows between the preview and the confirm step ----------------------------------


class JsonRow(Protocol):
    def to_json(self) -> dict[str, Any]: ...

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self: ...


JsonRowT = TypeVar("JsonRowT", bound=JsonRow)


def rows_dump(rows: Sequence[JsonRow]) -> str:
    """Compact text for the session: zlib-compressed JSON in base64."""
    body = json.dumps([r.to_json() for r in rows], separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(body, 6)).decode("ascii")


def rows_load(text: str, *, row_type: type[JsonRowT]) -> list[JsonRowT]:
    body = zlib.decompress(base64.b64decode(text.encode("ascii")), bufsize=MAX_BYTES)
    return [row_type.from_json(d) for d in json.loads(body)]
