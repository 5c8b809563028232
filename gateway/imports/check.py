"""Step 2 of a manifest import, *check*: find the columns by their headers and check the
shape of every value, row by row; whether keys and cards exist is step 3
(:mod:`gateway.imports.resolve`).

See :mod:`gateway.imports.manifest` for the accepted headers and the rules of each manifest.
Every problem found is collected and raised together as :class:`ImportRejected`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pydantic import TypeAdapter, ValidationError

from gateway.domain.facts import PersonName
from gateway.domain.identifiers import Id06CardNumber, KeySerial
from gateway.imports.errors import ImportRejected, RowError
from gateway.imports.read import Sheet

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
"""Column name -> the headers accepted for it (see :mod:`gateway.imports.manifest`)."""

RETURNED_COLUMNS: Final = (KEY_NUMBER, FIRST_NAME, LAST_NAME, ID06)
"""The columns a returned manifest needs, in the order of :class:`ReturnedRow`."""

_KEY_SERIAL: Final = TypeAdapter(KeySerial)
_ID06_CARD: Final = TypeAdapter(Id06CardNumber)
_PERSON_NAME: Final = TypeAdapter(PersonName)


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFC", text).casefold()
    return "".join(ch for ch in folded if ch not in " _-\u00a0")


_ALIAS_TO_COLUMN: Final = {
    _fold(alias): column for column, aliases in HEADER_ALIASES.items() for alias in aliases
}


def columns(sheet: Sheet, wanted: Sequence[str]) -> dict[str, int]:
    """Index of each wanted column in the sheet's header; raises :class:`ImportRejected`
    naming every column that is missing or present twice."""
    found, errors = _locate(sheet.header, sheet.header_row, wanted)
    if errors:
        raise ImportRejected(errors)
    return found


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


def delivery_serials(sheet: Sheet) -> list[str]:
    """The key serial numbers of a delivery manifest's sheet, in file order; raises
    :class:`ImportRejected` listing every empty, malformed or repeated key number and a
    missing column."""
    index = columns(sheet, (KEY_NUMBER,))[KEY_NUMBER]
    errors: list[RowError] = []
    serials = _unique_serials(sheet.rows, index, errors)
    if not serials and not errors:
        errors.append(RowError(sheet.header_row, KEY_NUMBER, "the file lists no key numbers"))
    if errors:
        raise ImportRejected(errors)
    return serials


def _unique_serials(
    rows: Sequence[tuple[int, list[str]]], index: int, errors: list[RowError]
) -> list[str]:
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


def returned_rows(sheet: Sheet) -> list[ReturnedRow]:
    """The handed-out keys of a returned manifest's sheet, in file order; rows naming only a
    key are skipped. Raises :class:`ImportRejected` listing every problem."""
    found = columns(sheet, RETURNED_COLUMNS)
    errors: list[RowError] = []
    result: list[ReturnedRow] = []
    for row, cells in sheet.rows:
        returned = _returned_row(row, [_cell(cells, found[c]) for c in RETURNED_COLUMNS], errors)
        if returned is not None:
            result.append(returned)
    if not result and not errors:
        errors.append(
            RowError(
                sheet.header_row,
                FIRST_NAME,
                "no row names a key holder; fill in first name, last name and ID06 "
                "for every handed-out key",
            )
        )
    if errors:
        raise ImportRejected(errors)
    return result


def _returned_row(row: int, values: Sequence[str], errors: list[RowError]) -> ReturnedRow | None:
    """One row of a returned manifest (its values in :data:`RETURNED_COLUMNS` order), or
    ``None`` for a key still in stock or a row with errors (added to ``errors``)."""
    key, first, last, card = values
    if not (first or last or card):
        return None
    serial = _check_key(key, row, errors)
    first_name = _check_name(first, FIRST_NAME, row, errors)
    last_name = _check_name(last, LAST_NAME, row, errors)
    id06_card = _check_id06(card, row, errors)
    if serial and first_name and last_name and id06_card:
        return ReturnedRow(row, serial, first_name, last_name, id06_card)
    return None


__all__ = [
    "FIRST_NAME",
    "HEADER_ALIASES",
    "ID06",
    "KEY_NUMBER",
    "LAST_NAME",
    "RETURNED_COLUMNS",
    "ReturnedRow",
    "columns",
    "delivery_serials",
    "returned_rows",
]
