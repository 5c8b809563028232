from __future__ import annotations

import zipfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from gateway.imports import ImportRejected, UnreadableFile, read_table


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_semicolon_with_bom_keeps_leading_zeros_and_counts_blank_rows(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "manifest.csv",
        "Nyckelnummer;Förnamn\r\n012345678; Åsa \r\n\r\n;;\r\n123456789;Örjan\r\n",
        encoding="utf-8-sig",
    )
    header, rows = read_table(path)
    assert header == ["Nyckelnummer", "Förnamn"]
    assert rows == [(2, ["012345678", "Åsa"]), (5, ["123456789", "Örjan"])]


def test_csv_in_windows_1252_is_decoded(tmp_path: Path) -> None:
    path = write_text(tmp_path / "m.csv", "Förnamn;Efternamn\nÅsa;Öst\n", encoding="cp1252")
    header, rows = read_table(path)
    assert header == ["Förnamn", "Efternamn"]
    assert rows == [(2, ["Åsa", "Öst"])]


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_csv_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    lines = [["key", "first_name", "last_name"], ["123456789", "Anna", "Berg"]]
    text = "\n".join(delimiter.join(cells) for cells in lines) + "\n"
    header, rows = read_table(write_text(tmp_path / "m.csv", text))
    assert header == lines[0]
    assert rows == [(2, lines[1])]


def test_csv_semicolon_file_with_commas_in_values(tmp_path: Path) -> None:
    text = "key;last_name;note\n123456789;Berg, Jr;a, b\n223456789;Ek;c, d\n"
    header, rows = read_table(write_text(tmp_path / "m.csv", text))
    assert header == ["key", "last_name", "note"]
    assert rows[0] == (2, ["123456789", "Berg, Jr", "a, b"])


def test_csv_single_column(tmp_path: Path) -> None:
    header, rows = read_table(write_text(tmp_path / "m.csv", "Nyckelnummer\n123456789\n"))
    assert header == ["Nyckelnummer"]
    assert rows == [(2, ["123456789"])]


def test_csv_quoted_cell_over_two_lines_is_one_row(tmp_path: Path) -> None:
    text = 'key;note\n123456789;"line one\nline two"\n223456789;x\n'
    _, rows = read_table(write_text(tmp_path / "m.csv", text))
    assert rows == [(2, ["123456789", "line one\nline two"]), (3, ["223456789", "x"])]


def test_csv_leading_blank_rows_shift_the_header(tmp_path: Path) -> None:
    _, rows = read_table(write_text(tmp_path / "m.csv", "\n\nkey\n123456789\n"))
    assert rows == [(4, ["123456789"])]


def test_xlsx_first_sheet_numbers_text_and_blank_rows(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Nycklar"
    ws.append(["Nyckelnr", "ID06", "Antal", "Datum"])
    ws.append([123456789, "ab 123456", 1.0, datetime(2026, 3, 2)])
    ws.append([None, None, None, None])
    ws.append(["012345678", 987654, 2.5, datetime(2026, 3, 2, 14, 30)])
    other = wb.create_sheet("Other")
    other.append(["not", "this"])
    wb.active = 1
    path = tmp_path / "m.xlsx"
    wb.save(path)

    header, rows = read_table(path)
    assert header == ["Nyckelnr", "ID06", "Antal", "Datum"]
    assert rows == [
        (2, ["123456789", "ab 123456", "1", "2026-03-02"]),
        (4, ["012345678", "987654", "2.5", "2026-03-02T14:30:00"]),
    ]


def test_xlsx_float_that_is_whole_has_no_decimal(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["key"])
    ws.append([123456789.0])
    ws.append([True])
    ws.append([date(2026, 1, 2)])
    path = tmp_path / "m.xlsx"
    wb.save(path)
    _, rows = read_table(path)
    assert [cells[0] for _, cells in rows] == ["123456789", "TRUE", "2026-01-02"]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("list.ods", "'.ods' files"),
        ("list.xls", "old binary Excel format"),
        ("list.pdf", "'.pdf' files"),
        ("list", "without an extension"),
    ],
)
def test_other_file_types_are_refused_by_type(tmp_path: Path, name: str, fragment: str) -> None:
    path = write_text(tmp_path / name, "key\n123456789\n")
    with pytest.raises(UnreadableFile) as info:
        read_table(path)
    assert fragment in str(info.value)
    assert info.value.field == "file"
    assert info.value.code == "UNREADABLE_FILE"


def test_missing_file(tmp_path: Path) -> None:
    for name in ("absent.csv", "absent.xlsx"):
        with pytest.raises(UnreadableFile, match="no such file"):
            read_table(tmp_path / name)


def test_damaged_workbook(tmp_path: Path) -> None:
    path = write_text(tmp_path / "m.xlsx", "key;first_name\n123456789;Anna\n")
    with pytest.raises(UnreadableFile, match=r"m\.xlsx: is not a readable \.xlsx workbook"):
        read_table(path)


def test_binary_file_named_csv(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.save(tmp_path / "real.xlsx")
    path = tmp_path / "m.csv"
    path.write_bytes((tmp_path / "real.xlsx").read_bytes())
    with pytest.raises(UnreadableFile, match="not a text file"):
        read_table(path)


def test_undecodable_text(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"key\n\x81\x8d\n")
    with pytest.raises(UnreadableFile, match="neither UTF-8 nor Windows-1252"):
        read_table(path)


@pytest.mark.parametrize("text", ["", "\n\n", ";;\n ; \n"])
def test_file_without_rows_is_rejected(tmp_path: Path, text: str) -> None:
    with pytest.raises(ImportRejected) as info:
        read_table(write_text(tmp_path / "m.csv", text))
    assert [(e.row, e.column) for e in info.value.errors] == [(1, "header")]


def test_xlsx_with_a_wrong_sheet_size_is_read_whole(tmp_path: Path) -> None:
    # Some exporters write <dimension ref="A1"/> whatever the sheet holds.
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["key", "first_name"])
    ws.append(["123456789", "Anna"])
    ws.append(["223456789", "Bo"])
    source = tmp_path / "source.xlsx"
    wb.save(source)
    path = tmp_path / "m.xlsx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b'<dimension ref="A1:B3" />' in data
                data = data.replace(b'<dimension ref="A1:B3" />', b'<dimension ref="A1"/>')
            dst.writestr(item, data)
    header, rows = read_table(path)
    assert header == ["key", "first_name"]
    assert rows == [(2, ["123456789", "Anna"]), (3, ["223456789", "Bo"])]


def test_empty_workbook_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "m.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(ImportRejected, match="the file has no rows"):
        read_table(path)
