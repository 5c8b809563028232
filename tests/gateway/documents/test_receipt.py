from __future__ import annotations

import dataclasses
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from gateway.documents import ReceiptDocument, render_receipt
from gateway.documents.receipt import printable
from gateway.domain import DomainError

PRODUCED = datetime(2026, 3, 2, 13, 5, tzinfo=UTC)  # 14:05 CET


def document(**changes: Any) -> ReceiptDocument:
    base = ReceiptDocument(
        receipt_id="R-2026-0001",
        credential_number="123456789",
        credential_kind="key",
        holder_first_name="Åsa",
        holder_last_name="Öberg",
        organisation_name="Bygg & Räls AB",
        org_number="556036-0793",
        id06_card="AB123456",
        produced_at=PRODUCED,
        signed_at=None,
        timezone="Europe/Stockholm",
    )
    return dataclasses.replace(base, **changes)


def read(pdf: bytes) -> tuple[PdfReader, str]:
    """The reader and the text of every page, with runs of whitespace made one space."""
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    return reader, " ".join(text.split())


def test_unsigned_receipt_is_a_one_page_a4_pdf_with_every_fact() -> None:
    pdf = render_receipt(document())
    assert pdf.startswith(b"%PDF-")
    reader, text = read(pdf)
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    for expected in (
        "Kvitto på utlämnad nyckel",
        "Key handout receipt",
        "R-2026-0001",
        "123456789",
        "Nyckel / Key",
        "Åsa Öberg",
        "Bygg & Räls AB",
        "556036-0793",
        "AB123456",
        "2026-03-02 14:05 CET",
        "Europe/Stockholm",
        "genast anmäla förlust",
        "report its loss or theft at once",
        "keep it safe",
        "Datum / Date",
        "Namnteckning / Signature",
        "lockgate",
    ):
        assert expected in text, expected
    assert "Signerat" not in text


def test_signed_receipt_prints_the_signing_time_in_the_site_zone() -> None:
    signed = datetime(2026, 3, 31, 6, 30, tzinfo=UTC)  # after the switch to summer time
    _, text = read(render_receipt(document(signed_at=signed)))
    assert "Signerat / Signed" in text
    assert "2026-03-31 08:30 CEST" in text
    assert "Datum / Date" not in text


def test_other_time_zone() -> None:
    _, text = read(render_receipt(document(timezone="America/New_York")))
    assert "2026-03-02 08:05 EST" in text


def test_same_input_same_bytes_and_creation_date_from_produced_at() -> None:
    first = render_receipt(document())
    assert render_receipt(document()) == first
    assert render_receipt(document(credential_number="123456780")) != first
    reader, _ = read(first)
    assert reader.metadata is not None
    assert reader.metadata.creation_date == PRODUCED
    assert "123456789" in str(reader.metadata.title)


def test_letters_outside_the_font_fall_back_to_their_base_letter() -> None:
    _, text = read(
        render_receipt(document(holder_first_name="Łukasz", holder_last_name="Nguyễn Ştefan"))
    )
    assert "Lukasz Nguyen Stefan" in text


def test_printable() -> None:
    assert printable("Åsa  Öberg\tÆøß") == "Åsa Öberg Æøß"
    assert printable("Łódź Đorđe") == "Lódz Dorde"  # ó is in the font, ź is not
    assert printable("O’Brien – Šťastný") == "O’Brien – Štastný"
    assert printable("李") == "?"


def test_longest_values_still_fit_one_page() -> None:
    doc = document(
        receipt_id="R" * 64,
        holder_first_name="Anna-" + "x" * 95,
        holder_last_name="Berg " + "y" * 95,
        organisation_name=" ".join(["Organisation"] * 15)[:200],
        signed_at=PRODUCED + timedelta(days=1),
    )
    reader, text = read(render_receipt(doc))
    assert len(reader.pages) == 1
    flat = re.sub(r"\s+", "", text)
    for value in (doc.holder_first_name, doc.holder_last_name, doc.organisation_name):
        assert re.sub(r"\s+", "", value) in flat
    assert "Utfärdat av / Issued by lockgate" in text  # the footer, last on the page


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"produced_at": datetime(2026, 3, 2, 14, 5)}, "produced_at", "time zone"),
        ({"signed_at": datetime(2026, 3, 3, 9, 0)}, "signed_at", "time zone"),
        ({"signed_at": PRODUCED - timedelta(seconds=1)}, "signed_at", "before produced_at"),
        ({"timezone": "Europe/Nowhere"}, "timezone", "not a known time zone"),
        ({"timezone": "../etc/passwd"}, "timezone", "not a known time zone"),
        ({"credential_kind": "badge"}, "credential_kind", "key, tag, visitor_card"),
        ({"holder_last_name": "  "}, "holder_last_name", "must not be empty"),
        ({"organisation_name": "x" * 201}, "organisation_name", "at most 200"),
    ],
)
def test_invalid_documents_are_refused(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(DomainError) as info:
        document(**changes)
    assert info.value.field == field
    assert reason in info.value.message
