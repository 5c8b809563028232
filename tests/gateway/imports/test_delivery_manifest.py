from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from gateway.domain import DomainError
from gateway.imports import ImportRejected, RowError, parse_delivery_manifest


def csv_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "delivery.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_serials_in_file_order(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Nyckelnummer;Leveransadress", "223456789;Borlänge", "012345678;")
    assert parse_delivery_manifest(path) == ["223456789", "012345678"]


def test_xlsx_with_numbers_and_text(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Kommentar", "Key Number"])
    ws.append(["first box", 223456789])
    ws.append([None, None])
    ws.append(["second box", "012345678"])
    path = tmp_path / "delivery.xlsx"
    wb.save(path)
    assert parse_delivery_manifest(path) == ["223456789", "012345678"]


@pytest.mark.parametrize(
    "title",
    ["key_number", "Key Number", "KEY-NUMBER", "key", "Nyckelnummer", "nyckel nr", "NYCKELNR"],
)
def test_accepted_headers(tmp_path: Path, title: str) -> None:
    assert parse_delivery_manifest(csv_file(tmp_path, title, "123456789")) == ["123456789"]


def test_missing_column_names_the_accepted_headers(tmp_path: Path) -> None:
    with pytest.raises(ImportRejected) as info:
        parse_delivery_manifest(csv_file(tmp_path, "serial;address", "123456789;x"))
    assert len(info.value.errors) == 1
    error = info.value.errors[0]
    assert (error.row, error.column) == (1, "key_number")
    assert "key_number, key, nyckelnummer, nyckelnr" in error.message


def test_two_key_columns_are_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(ImportRejected, match="'Key' and 'Nyckelnummer'"):
        parse_delivery_manifest(csv_file(tmp_path, "Key;Nyckelnummer", "123456789;123456789"))


def test_every_error_is_reported_and_the_file_rejected(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "key_number;note",
        "123456789;ok",  # row 2
        "12345678;lost zero",  # row 3
        "12345678X;letters",  # row 4
        ";empty key",  # row 5
        "123456789;again",  # row 6
        "223456789;ok",  # row 7
        "1234567890;ten digits",  # row 8
    )
    with pytest.raises(ImportRejected) as info:
        parse_delivery_manifest(path)
    exc = info.value
    assert isinstance(exc, DomainError)
    assert exc.code == "IMPORT_REJECTED"
    assert [(e.row, e.column) for e in exc.errors] == [
        (3, "key_number"),
        (4, "key_number"),
        (5, "key_number"),
        (6, "key_number"),
        (8, "key_number"),
    ]
    by_row = {e.row: e.message for e in exc.errors}
    assert "exactly 9 digits" in by_row[3]
    assert "dropped leading zeros" in by_row[3]
    assert "'12345678X' is not a key number" in by_row[4]
    assert "dropped leading zeros" not in by_row[4]
    assert by_row[5] == "the key number is empty"
    assert by_row[6] == "key 123456789 is listed twice (also on row 2)"
    text = str(exc)
    assert text.splitlines()[0] == "the file was rejected, nothing was imported (5 errors):"
    assert text.splitlines()[1:] == [str(e) for e in exc.errors]
    assert "row 6, column key_number: key 123456789 is listed twice (also on row 2)" in text


def test_header_only_file_lists_no_keys(tmp_path: Path) -> None:
    with pytest.raises(ImportRejected, match="lists no key numbers"):
        parse_delivery_manifest(csv_file(tmp_path, "key"))


def test_row_error_format() -> None:
    assert str(RowError(7, "id06", "is blocked")) == "row 7, column id06: is blocked"


def test_import_rejected_needs_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ImportRejected([])
