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

Steps
    An import is three steps, each in its own module: *read* the file as a table
    (:mod:`gateway.imports.read`), *check* the columns and the shape of every value
    (:mod:`gateway.imports.check`), and for a returned manifest *resolve* its rows against the
    stored facts (:mod:`gateway.imports.resolve`). The errors are in
    :mod:`gateway.imports.errors`.

Errors
    A file is taken whole or not at all. Every problem found is collected and raised together
    as :class:`ImportRejected`, whose message has one ``row N, column C: reason`` line per
    problem; ``C`` is the column name of the table above.
"""

from __future__ import annotations

from pathlib import Path

from gateway.imports.check import HEADER_ALIASES, ReturnedRow, delivery_serials, returned_rows
from gateway.imports.errors import ImportRejected, RowError, UnreadableFile
from gateway.imports.read import TEXT_SUFFIXES, WORKBOOK_SUFFIXES, Table, read_sheet, read_table
from gateway.imports.resolve import HandoutLink, resolve_returned


def parse_delivery_manifest(path: Path) -> list[str]:
    """The key serial numbers (9 digits each) of a delivery manifest, in file order.

    Needs a ``key_number`` column. Raises :class:`ImportRejected` listing every empty or
    malformed key number, every key listed twice and a missing column.
    """
    return delivery_serials(read_sheet(path))


def parse_returned_manifest(path: Path) -> list[ReturnedRow]:
    """The handed-out keys of a returned manifest, in file order.

    Needs the ``key_number``, ``first_name``, ``last_name`` and ``id06`` columns. Rows naming
    only a key are skipped (the key is still in stock). Checks the shape of every value;
    whether keys and cards exist is for :func:`resolve_returned`. Raises
    :class:`ImportRejected` listing every problem.
    """
    return returned_rows(read_sheet(path))


__all__ = [
    "HEADER_ALIASES",
    "TEXT_SUFFIXES",
    "WORKBOOK_SUFFIXES",
    "HandoutLink",
    "ImportRejected",
    "ReturnedRow",
    "RowError",
    "Table",
    "UnreadableFile",
    "parse_delivery_manifest",
    "parse_returned_manifest",
    "read_table",
    "resolve_returned",
]
