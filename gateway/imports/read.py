"""Step 1 of a manifest import, *read*: a CSV or XLSX file as a table of stripped text cells.

See :mod:`gateway.imports.manifest` for the file types, encodings and row numbering.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Final

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from gateway.imports.errors import ImportRejected, RowError, UnreadableFile

TEXT_SUFFIXES: Final = frozenset({".csv", ".tsv", ".txt"})
WORKBOOK_SUFFIXES: Final = frozenset({".xlsx", ".xlsm"})

_DELIMITERS: Final = ";,\t"
_SNIFF_LINES: Final = 50
# What a damaged workbook makes openpyxl raise (SyntaxError covers XML parse errors).
_WORKBOOK_ERRORS: Final = (
    OSError,
    KeyError,
    ValueError,
    SyntaxError,
    zipfile.BadZipFile,
    InvalidFileException,
)

Table = tuple[list[str], list[tuple[int, list[str]]]]


@dataclass(frozen=True)
class Sheet:
    """A file read as a table: the header, its row number, and the data rows as
    ``(row number, cells)``; blank rows are left out."""

    header: list[str]
    header_row: int
    rows: list[tuple[int, list[str]]]


def read_table(path: Path) -> Table:
    """Read a CSV or XLSX file as ``(header, [(row number, cells), ...])``.

    Cells are stripped strings; blank rows are skipped; row numbers are 1-based spreadsheet
    rows (see :mod:`gateway.imports.manifest`). Raises :class:`UnreadableFile` for a file that
    is not a readable CSV/XLSX file and :class:`ImportRejected` for a file without any row.
    """
    sheet = read_sheet(path)
    return sheet.header, sheet.rows


def read_sheet(path: Path) -> Sheet:
    """Read a CSV or XLSX file as a :class:`Sheet`; the errors of :func:`read_table`."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        records = _csv_records(path)
    elif suffix in WORKBOOK_SUFFIXES:
        records = _xlsx_records(path)
    else:
        kind = f"'{path.suffix}' files" if path.suffix else "files without an extension"
        hint = " (the old binary Excel format)" if suffix == ".xls" else ""
        raise UnreadableFile(
            path, f"{kind}{hint} cannot be imported; save the list as .csv or .xlsx"
        )
    rows = [(n, cells) for n, cells in records if any(cells)]
    if not rows:
        raise ImportRejected(
            [RowError(1, "header", "the file has no rows; expected a header row and data rows")]
        )
    (header_row, header), *data = rows
    return Sheet(header, header_row, data)


def _csv_records(path: Path) -> list[tuple[int, list[str]]]:
    raw = _read_bytes(path)
    if b"\x00" in raw:
        raise UnreadableFile(path, "is not a text file (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(
                path, f"is neither UTF-8 nor Windows-1252 text (byte {exc.start})"
            ) from exc
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    try:
        return [
            (number, [cell.strip() for cell in record])
            for number, record in enumerate(reader, start=1)
        ]
    except csv.Error as exc:
        raise UnreadableFile(path, f"line {reader.line_num}: {exc}") from exc


def _sniff_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][:_SNIFF_LINES]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        # Typical for a single-column file or ragged rows: go by the header line alone.
        best = max(_DELIMITERS, key=lines[0].count)
        return best if lines[0].count(best) else ","


def _xlsx_records(path: Path) -> list[tuple[int, list[str]]]:
    _require_file(path)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except _WORKBOOK_ERRORS as exc:
        raise UnreadableFile(path, f"is not a readable .xlsx workbook ({exc})") from exc
    try:
        if not workbook.worksheets:
            raise UnreadableFile(path, "the workbook has no worksheet")
        sheet = workbook.worksheets[0]
        # Exporters often write a wrong sheet size; read every row there is.
        sheet.reset_dimensions()
        return [
            (number, [_cell_text(value) for value in values])
            for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1)
        ]
    except _WORKBOOK_ERRORS as exc:
        raise UnreadableFile(path, f"the first worksheet cannot be read ({exc})") from exc
    finally:
        workbook.close()


def _require_file(path: Path) -> None:
    if not path.exists():
        raise UnreadableFile(path, "no such file")
    if not path.is_file():
        raise UnreadableFile(path, "is not a file")


def _read_bytes(path: Path) -> bytes:
    _require_file(path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(path, f"cannot be read ({exc.strerror or exc})") from exc


def _cell_text(value: object) -> str:
    """The text a person sees in a workbook cell, for the values openpyxl returns."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and value.time() == time(0, 0):
        return value.date().isoformat()
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value).strip()


__all__ = ["TEXT_SUFFIXES", "WORKBOOK_SUFFIXES", "Sheet", "Table", "read_sheet", "read_table"]
