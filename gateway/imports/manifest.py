"""Import of key manifests: the delivery manifest and the returned handout list.

A key delivery comes with a *delivery manifest* ("förteckning över utdelade nycklar"): the
serial numbers of the delivered, inactive keys. The contractor fills in the holder of each key
it hands out and sends the list back: the *returned manifest*. Both arrive as spreadsheets.

Files
    ``.csv``, ``.tsv`` and ``.txt`` are read as delimited text: UTF-8 with or without a byte
    order mark, else Windows-1252 (what older spreadsheet programs write); the delimiter (``;``,
    ``,`` or tab) is sniffed. ``.xlsx`` and ``.xlsm`` workbooks are read from their first
    worksheet; whole numbers are turned into digit strings without ``.0``, text cells keep
    their leading zeros. Other file types are refused with :class:`UnreadableFile`.

Rows
    The first non-blank row is the header. Blank rows are skipped. Rows are numbered as a
    person sees them in a spreadsheet program: the first line of the file is row 1, blank rows
    count. Other columns than the ones below are ignored.

Accepted headers
    Matched case-insensitively, ignoring spaces, underscores and hyphens:

    ============  ==============================================  ========================
    column        headers                                          needed in
    ============  ==============================================  ========================
    key_number    ``key_number``, ``key``, ``nyckelnummer``,       both manifests
                  ``nyckelnr``
    first_name    ``first_name``, ``förnamn``, ``fornamn``         returned manifest
    last_name     ``last_name``, ``efternamn``                     returned manifest
    id06          ``id06``, ``id06_card``, ``id06-kort``,          returned manifest
                  ``id06kort``
    ============  ==============================================  ========================

    In a returned manifest a row that names only a key (first name, last name and ID06 all
    empty) is a key the contractor still holds in stock: it is skipped.

Errors
    A file is taken whole or not at all. Every problem found is collected and raised together
    as :class:`ImportRejected`, whose message has one ``row N, column C: reason`` line per
    problem; ``C`` is the column name of the table above.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Final

import openpyxl
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import TypeAdapter, ValidationError

from gateway.domain import (
    Credential,
    CredentialKind,
    CredentialState,
    DomainError,
    Employment,
    Id06Status,
    Person,
)
from gateway.domain.facts import PersonName
from gateway.domain.identifiers import Id06CardNumber, KeySerial

TEXT_SUFFIXES: Final = frozenset({".csv", ".tsv", ".txt"})
WORKBOOK_SUFFIXES: Final = frozenset({".xlsx", ".xlsm"})

KEY_NUMBER: Final = "key_number"
FIRST_NAME: Final = "first_name"
LAST_NAME: Final = "last_name"
ID06: Final = "id06"

HEADER_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    KEY_NUMBER: ("key_number", "key", "nyckelnummer", "nyckelnr"),
    FIRST_NAME: ("first_name", "förnamn", "fornamn"),
    LAST_NAME: ("last_name", "efternamn"),
    ID06: ("id06", "id06_card", "id06-kort", "id06kort"),
}
"""Column name -> the headers accepted for it (see the module docstring)."""

_DELIMITERS: Final = ";,\t"
_SNIFF_LINES: Final = 50
_KEY_SERIAL: Final = TypeAdapter(KeySerial)
_ID06_CARD: Final = TypeAdapter(Id06CardNumber)
_PERSON_NAME: Final = TypeAdapter(PersonName)
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


# --------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class RowError:
    """One problem in an imported file.

    ``row`` is the row number as a person sees it in a spreadsheet program (the header is
    row 1 when the file starts with it, the first data row is 2); ``column`` the column name
    (``key_number``, ``first_name``, ``last_name``, ``id06``) or ``header``.
    """

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.message}"


class ImportRejected(DomainError):
    """The whole file was rejected; ``errors`` lists every problem found, by row."""

    code = "IMPORT_REJECTED"

    def __init__(self, errors: Iterable[RowError]) -> None:
        self.errors: list[RowError] = sorted(errors, key=lambda e: e.row)
        if not self.errors:
            raise ValueError("ImportRejected needs at least one RowError")
        count = len(self.errors)
        lines = "\n".join(str(e) for e in self.errors)
        super().__init__(
            f"the file was rejected, nothing was imported ({count} "
            f"{'error' if count == 1 else 'errors'}):\n{lines}"
        )


class UnreadableFile(DomainError):
    """The file cannot be read as a table at all: unsupported type, missing, damaged."""

    code = "UNREADABLE_FILE"

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}", field="file")
        self.path = path


# --------------------------------------------------------------------------------- tables


def read_table(path: Path) -> Table:
    """Read a CSV or XLSX file as ``(header, [(row number, cells), ...])``.

    Cells are stripped strings; blank rows are skipped; row numbers are 1-based spreadsheet
    rows (see the module docstring). Raises :class:`UnreadableFile` for a file that is not a
    readable CSV/XLSX file and :class:`ImportRejected` for a file without any row.
    """
    header, _, rows = _read_table(path)
    return header, rows


def _read_table(path: Path) -> tuple[list[str], int, list[tuple[int, list[str]]]]:
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
    return header, header_row, data


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


# --------------------------------------------------------------------------------- columns


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFC", text).casefold()
    return "".join(ch for ch in folded if ch not in " _-\u00a0")


_ALIAS_TO_COLUMN: Final = {
    _fold(alias): column for column, aliases in HEADER_ALIASES.items() for alias in aliases
}


def _locate(
    header: Sequence[str], header_row: int, wanted: Sequence[str]
) -> tuple[dict[str, int], list[RowError]]:
    """Index of each wanted column in ``header``, and the errors for missing/doubled ones."""
    found: dict[str, int] = {}
    errors: list[RowError] = []
    for index, title in enumerate(header):
        column = _ALIAS_TO_COLUMN.get(_fold(title))
        if column is None or column not in wanted:
            continue
        if column in found:
            first = header[found[column]]
            errors.append(
                RowError(
                    header_row,
                    column,
                    f"two columns mean the same: '{first}' and '{title}'; keep one",
                )
            )
        else:
            found[column] = index
    for column in wanted:
        if column not in found:
            accepted = ", ".join(HEADER_ALIASES[column])
            errors.append(
                RowError(header_row, column, f"the column is missing; name it one of: {accepted}")
            )
    return found, errors


def _cell(cells: Sequence[str], index: int) -> str:
    return cells[index] if index < len(cells) else ""


def _reason(exc: ValidationError) -> str:
    """The domain's own sentence from a pydantic error (or pydantic's when there is none)."""
    error = exc.errors()[0]
    ctx = error.get("ctx", {})
    if "error" in ctx:
        return str(ctx["error"])
    if "max_length" in ctx:
        return f"longer than {ctx['max_length']} characters"
    return str(error["msg"])


def _check_key(value: str, row: int, errors: list[RowError]) -> str | None:
    if not value:
        errors.append(RowError(row, KEY_NUMBER, "the key number is empty"))
        return None
    try:
        return _KEY_SERIAL.validate_python(value)
    except ValidationError as exc:
        message = f"'{value}' is not a key number: {_reason(exc)}"
        if value.isdigit() and len(value) < 9:
            message += (
                f" (it has {len(value)}; a spreadsheet may have dropped leading zeros: "
                "format the column as text)"
            )
        errors.append(RowError(row, KEY_NUMBER, message))
        return None


def _check_id06(value: str, row: int, errors: list[RowError]) -> str | None:
    if not value:
        errors.append(RowError(row, ID06, "the ID06 card number is empty"))
        return None
    try:
        return _ID06_CARD.validate_python(value)
    except ValidationError as exc:
        errors.append(RowError(row, ID06, f"'{value}' is not an ID06 card number: {_reason(exc)}"))
        return None


def _check_name(value: str, column: str, row: int, errors: list[RowError]) -> str | None:
    label = "first name" if column == FIRST_NAME else "last name"
    if not value:
        errors.append(RowError(row, column, f"the {label} is empty"))
        return None
    try:
        return _PERSON_NAME.validate_python(value)
    except ValidationError as exc:
        errors.append(RowError(row, column, f"the {label} is not valid: {_reason(exc)}"))
        return None


# --------------------------------------------------------------------------------- delivery


def parse_delivery_manifest(path: Path) -> list[str]:
    """The key serial numbers (9 digits each) of a delivery manifest, in file order.

    Needs a ``key_number`` column. Raises :class:`ImportRejected` listing every empty or
    malformed key number, every key listed twice and a missing column.
    """
    header, header_row, rows = _read_table(path)
    found, errors = _locate(header, header_row, (KEY_NUMBER,))
    if errors:
        raise ImportRejected(errors)
    index = found[KEY_NUMBER]
    serials: list[str] = []
    first_row: dict[str, int] = {}
    for row, cells in rows:
        serial = _check_key(_cell(cells, index), row, errors)
        if serial is None:
            continue
        if serial in first_row:
            errors.append(
                RowError(
                    row,
                    KEY_NUMBER,
                    f"key {serial} is listed twice (also on row {first_row[serial]})",
                )
            )
            continue
        first_row[serial] = row
        serials.append(serial)
    if not serials and not errors:
        errors.append(RowError(header_row, KEY_NUMBER, "the file lists no key numbers"))
    if errors:
        raise ImportRejected(errors)
    return serials


# --------------------------------------------------------------------------------- returned


@dataclass(frozen=True)
class ReturnedRow:
    """One handed-out key of a returned manifest: row number, key serial (9 digits), the
    holder's names as written, and the ID06 card number (upper-cased, spaces removed)."""

    row: int
    key_serial: str
    first_name: str
    last_name: str
    id06_card: str


def parse_returned_manifest(path: Path) -> list[ReturnedRow]:
    """The handed-out keys of a returned manifest, in file order.

    Needs the ``key_number``, ``first_name``, ``last_name`` and ``id06`` columns. Rows naming
    only a key are skipped (the key is still in stock). Checks the shape of every value;
    whether keys and cards exist is for :func:`resolve_returned`. Raises
    :class:`ImportRejected` listing every problem.
    """
    header, header_row, rows = _read_table(path)
    found, errors = _locate(header, header_row, (KEY_NUMBER, FIRST_NAME, LAST_NAME, ID06))
    if errors:
        raise ImportRejected(errors)
    result: list[ReturnedRow] = []
    for row, cells in rows:
        key, first, last, card = (
            _cell(cells, found[c]) for c in (KEY_NUMBER, FIRST_NAME, LAST_NAME, ID06)
        )
        if not (first or last or card):
            continue
        serial = _check_key(key, row, errors)
        first_name = _check_name(first, FIRST_NAME, row, errors)
        last_name = _check_name(last, LAST_NAME, row, errors)
        id06_card = _check_id06(card, row, errors)
        if serial and first_name and last_name and id06_card:
            result.append(ReturnedRow(row, serial, first_name, last_name, id06_card))
    if not result and not errors:
        errors.append(
            RowError(
                header_row,
                FIRST_NAME,
                "no row names a key holder; fill in first name, last name and ID06 "
                "for every handed-out key",
            )
        )
    if errors:
        raise ImportRejected(errors)
    return result


@dataclass(frozen=True)
class HandoutLink:
    """A key to hand out: link ``credential_number`` to ``employment_id`` (from file row
    ``row``). Linking produces the key handout receipt."""

    row: int
    credential_number: str
    employment_id: str


def _same_name(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return " ".join(unicodedata.normalize("NFC", s).casefold().split())

    return norm(a) == norm(b)


def resolve_returned(
    rows: Sequence[ReturnedRow],
    *,
    credential: Callable[[str], Credential | None],
    employment_by_id06: Callable[[str], Employment | None],
    person: Callable[[str], Person | None],
    keys_of_employment: Callable[[str], list[Credential]],
) -> list[HandoutLink]:
    """Check a returned manifest against the stored facts and say which key goes to whom.

    The look-ups are: ``credential`` by number, ``employment_by_id06`` by ID06 card number,
    ``person`` by id and ``keys_of_employment`` (every credential linked to an employment).
    For every row: the key exists, is a key, and is ``delivered`` (in stock); the ID06 card is
    registered to an employment and not terminated; first and last name match that
    employment's person (case-insensitive, whitespace-normalised); the employment holds no
    other key that is not terminal (one physical key per employment); no key and no employment
    appears twice in the file. Raises :class:`ImportRejected` with every problem at once;
    nothing is linked unless the whole file is right.
    """
    errors: list[RowError] = []
    links: list[HandoutLink] = []
    key_rows: dict[str, int] = {}
    employment_rows: dict[str, int] = {}
    for r in rows:
        _check_key_in_stock(r, credential(r.key_serial), errors)
        if r.key_serial in key_rows:
            errors.append(
                RowError(
                    r.row,
                    KEY_NUMBER,
                    f"key {r.key_serial} is listed twice (also on row {key_rows[r.key_serial]})",
                )
            )
        else:
            key_rows[r.key_serial] = r.row

        employment = employment_by_id06(r.id06_card)
        if employment is None:
            errors.append(
                RowError(
                    r.row,
                    ID06,
                    f"ID06 card {r.id06_card} is not registered to any "
                    "employment; register the card first",
                )
            )
            continue
        _check_holder(r, employment, person(employment.person_id), errors)
        _check_no_other_key(r, employment, keys_of_employment(employment.id), errors)
        if employment.id in employment_rows:
            errors.append(
                RowError(
                    r.row,
                    ID06,
                    f"employment {employment.id} (ID06 card {r.id06_card}) "
                    f"gets two keys (also on row {employment_rows[employment.id]}); "
                    "one physical key per employment",
                )
            )
        else:
            employment_rows[employment.id] = r.row
        links.append(HandoutLink(r.row, r.key_serial, employment.id))
    if errors:
        raise ImportRejected(errors)
    return links


def _check_key_in_stock(r: ReturnedRow, found: Credential | None, errors: list[RowError]) -> None:
    if found is None:
        errors.append(
            RowError(
                r.row,
                KEY_NUMBER,
                f"key {r.key_serial} is not known; import its delivery manifest first",
            )
        )
        return
    if found.kind is not CredentialKind.KEY:
        errors.append(
            RowError(r.row, KEY_NUMBER, f"{r.key_serial} is a {found.kind.value}, not a key")
        )
        return
    if found.state is not CredentialState.DELIVERED:
        holder = f" to employment {found.employment_id}" if found.employment_id else ""
        errors.append(
            RowError(
                r.row,
                KEY_NUMBER,
                f"key {r.key_serial} is {found.state.value}{holder}; "
                "only a delivered key in stock can be handed out",
            )
        )


def _check_holder(
    r: ReturnedRow, employment: Employment, holder: Person | None, errors: list[RowError]
) -> None:
    if employment.id06.status is Id06Status.TERMINATED:
        errors.append(RowError(r.row, ID06, f"ID06 card {r.id06_card} is terminated"))
    if holder is None:
        errors.append(
            RowError(
                r.row,
                ID06,
                f"ID06 card {r.id06_card} belongs to employment "
                f"{employment.id}, whose person {employment.person_id} is not known",
            )
        )
        return
    for column, written, registered in (
        (FIRST_NAME, r.first_name, holder.first_name),
        (LAST_NAME, r.last_name, holder.last_name),
    ):
        if not _same_name(written, registered):
            errors.append(
                RowError(
                    r.row,
                    column,
                    f"'{written}' does not match the name registered for "
                    f"ID06 card {r.id06_card} ('{registered}')",
                )
            )


def _check_no_other_key(
    r: ReturnedRow, employment: Employment, held: list[Credential], errors: list[RowError]
) -> None:
    other = sorted(
        c.number
        for c in held
        if c.kind is CredentialKind.KEY and not c.terminal and c.number != r.key_serial
    )
    if other:
        errors.append(
            RowError(
                r.row,
                ID06,
                f"employment {employment.id} (ID06 card {r.id06_card}) "
                f"already holds key {', '.join(other)}; one physical key per employment: "
                "return or report the old key first",
            )
        )
