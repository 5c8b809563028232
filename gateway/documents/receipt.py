"""The key handout receipt ("kvitto på utlämnad nyckel") as a one-page A4 PDF.

Linking a key to an employment produces a receipt; it is mailed to the contractor's contact,
signed by the key holder and sent back, and only then may the key be activated. The document
is bilingual (Swedish first, English second) and states: key number, holder, organisation and
organisation number, ID06 card, when it was produced (in the site time zone), the holder's
undertaking, and a signature block that shows the signing time once the receipt is signed.

Font: fpdf2 ships no TrueType font, and a system font is not guaranteed to exist, so the
receipt uses the PDF core font Helvetica, whose WinAnsi (Windows-1252) encoding covers the
Swedish, Norwegian, Danish, German and French letters. Characters outside it are printed as
their base letter (``Ł`` as ``L``, ``ș`` as ``s``) or, when there is none, as ``?``.

The output is deterministic: the same :class:`ReceiptDocument` gives the same bytes (the PDF
creation date is ``produced_at``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from gateway.domain import CredentialKind, DomainError
from gateway.domain.errors import NotFound
from gateway.rules.factset import FactSet

ENCODING: Final = "cp1252"
"""The core fonts' text encoding (WinAnsiEncoding in the PDF)."""

KIND_LABELS: Final[dict[str, str]] = {
    CredentialKind.KEY: "Nyckel / Key",
    CredentialKind.TAG: "Tagg / Tag",
    CredentialKind.VISITOR_CARD: "Besökskort / Visitor card",
}

UNDERTAKING_SV: Final = (
    "Jag har tagit emot nyckeln ovan. Nyckeln är personlig och knuten till min anställning. "
    "Jag förbinder mig att förvara den säkert, att inte låna ut eller lämna den till någon "
    "annan, att genast anmäla förlust eller stöld till min arbetsgivare och till "
    "tillträdeshandläggaren, och att återlämna nyckeln när anställningen eller uppdraget "
    "upphör."
)
UNDERTAKING_EN: Final = (
    "I have received the key above. The key is personal and bound to my employment. I "
    "undertake to keep it safe, not to lend or hand it to anyone else, to report its loss or "
    "theft at once to my employer and to the access administrator, and to return the key "
    "when the employment or the assignment ends."
)

# Letters that Unicode does not decompose into a base letter plus marks.
_NO_DECOMPOSITION: Final = str.maketrans(
    {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i", "Ŧ": "T", "ŧ": "t"}
)

# Field lengths: those of the domain facts, and what the one-page layout is tested with.
_TEXT_LIMITS: Final = {
    "receipt_id": 64,
    "credential_number": 10,
    "holder_first_name": 100,
    "holder_last_name": 100,
    "organisation_name": 200,
    "org_number": 11,
    "id06_card": 20,
    "issuer": 100,
}

_MARGIN: Final = 20.0
_LABEL_WIDTH: Final = 62.0
_LINE: Final = 6.0


@dataclass(frozen=True)
class ReceiptDocument:
    """Everything printed on a key handout receipt.

    ``produced_at`` and ``signed_at`` are aware instants (printed in ``timezone``, an IANA
    zone name such as ``Europe/Stockholm``); ``credential_kind`` is a
    :class:`~gateway.domain.CredentialKind` value. Invalid values raise
    :class:`~gateway.domain.DomainError` naming the field.
    """

    receipt_id: str
    credential_number: str
    credential_kind: str
    holder_first_name: str
    holder_last_name: str
    organisation_name: str
    org_number: str
    id06_card: str
    produced_at: datetime
    signed_at: datetime | None
    timezone: str
    issuer: str = "lockgate"

    def __post_init__(self) -> None:
        for name, limit in _TEXT_LIMITS.items():
            value = getattr(self, name)
            if not value.strip():
                raise DomainError("must not be empty", field=name)
            if len(value) > limit:
                raise DomainError(f"must be at most {limit} characters", field=name)
        if self.credential_kind not in KIND_LABELS:
            raise DomainError(
                f"'{self.credential_kind}' is not a credential kind; "
                f"expected one of {', '.join(KIND_LABELS)}",
                field="credential_kind",
            )
        for name in ("produced_at", "signed_at"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise DomainError("must carry a time zone", field=name)
        if self.signed_at is not None and self.signed_at < self.produced_at:
            raise DomainError("must not be before produced_at", field="signed_at")
        self.zone()

    def zone(self) -> ZoneInfo:
        """The site time zone the times are printed in."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise DomainError(
                f"'{self.timezone}' is not a known time zone (for example Europe/Stockholm)",
                field="timezone",
            ) from exc


def receipt_for(facts: FactSet, number: str, timezone: str) -> ReceiptDocument:
    """The handout receipt of credential ``number`` (its latest hand-out), shown in
    ``timezone``; raises :class:`~gateway.domain.errors.NotFound` when it has none."""
    cred = facts.credentials.get(number)
    if cred is None:
        raise NotFound(f"credential {number} is not registered", field="credential_number")
    if cred.employment_id is None:
        raise NotFound(
            f"{cred.kind.value} {number} has not been handed out; no receipt exists",
            field="credential_number",
        )
    receipt = facts.receipts.get((number, cred.employment_id))
    emp = facts.employments.get(cred.employment_id)
    if receipt is None or emp is None:
        raise NotFound(f"no handout receipt is registered for {number}", field="credential_number")
    person = facts.persons.get(emp.person_id)
    org = facts.organisations.get(emp.org_number)
    return ReceiptDocument(
        receipt_id=f"R-{number}-{receipt.produced_at.strftime('%Y%m%d%H%M%S')}",
        credential_number=number,
        credential_kind=cred.kind.value,
        holder_first_name=person.first_name if person else "-",
        holder_last_name=person.last_name if person else "-",
        organisation_name=org.name if org else "-",
        org_number=emp.org_number,
        id06_card=emp.id06.card_number,
        produced_at=receipt.produced_at,
        signed_at=receipt.signed_at,
        timezone=timezone,
    )


def printable(text: str) -> str:
    """``text`` reduced to what the core font can print (see the module docstring)."""
    out: list[str] = []
    for ch in " ".join(text.split()):
        try:
            ch.encode(ENCODING)
            out.append(ch)
            continue
        except UnicodeEncodeError:
            pass
        base = "".join(
            c
            for c in unicodedata.normalize("NFKD", ch.translate(_NO_DECOMPOSITION))
            if not unicodedata.combining(c)
        )
        try:
            base.encode(ENCODING)
            out.append(base or "?")
        except UnicodeEncodeError:
            out.append("?")
    return "".join(out)


def local_time(at: datetime, zone: ZoneInfo) -> str:
    """``2026-03-02 14:05 CET``: an instant as printed on the receipt."""
    local = at.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def render_receipt(doc: ReceiptDocument) -> bytes:
    """Render ``doc`` as a one-page A4 PDF and return its bytes."""
    zone = doc.zone()
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.core_fonts_encoding = ENCODING
    pdf.set_creation_date(doc.produced_at)
    pdf.set_title(f"Kvitto på utlämnad nyckel / Key handout receipt {doc.credential_number}")
    pdf.set_subject(f"Receipt {doc.receipt_id}")
    pdf.set_author(printable(doc.issuer))
    pdf.set_creator(printable(doc.issuer))
    pdf.set_lang("sv-SE")
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 9, "Kvitto på utlämnad nyckel", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 13)
    pdf.cell(0, 7, "Key handout receipt", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(
        0,
        6,
        printable(f"Kvitto-id / Receipt id: {doc.receipt_id}"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    _rule(pdf)

    fields = (
        ("Nyckelnummer / Key number", doc.credential_number),
        ("Typ / Kind", KIND_LABELS[doc.credential_kind]),
        ("Innehavare / Holder", f"{doc.holder_first_name} {doc.holder_last_name}"),
        ("ID06-kort / ID06 card", doc.id06_card),
        ("Organisation / Organisation", doc.organisation_name),
        ("Organisationsnummer / Org. number", doc.org_number),
        ("Utfärdat / Produced", local_time(doc.produced_at, zone)),
    )
    for label, value in fields:
        _field(pdf, label, value)
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 5, printable(f"Tider i tidszon / Times in time zone {doc.timezone}"))
    pdf.ln(5)
    _rule(pdf)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Åtagande / Undertaking", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 5, UNDERTAKING_SV, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.set_font("Helvetica", "I", 10)
    pdf.multi_cell(0, 5, UNDERTAKING_EN, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _rule(pdf)

    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Underskrift / Signature", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    if doc.signed_at is not None:
        _field(pdf, "Signerat / Signed", local_time(doc.signed_at, zone))
    else:
        _blank(pdf, "Datum / Date")
    _blank(pdf, "Namnteckning / Signature")
    _blank(pdf, "Namnförtydligande / Name in print")

    pdf.set_y(-_MARGIN - 5)
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 5, printable(f"Utfärdat av / Issued by {doc.issuer}"), align="C")
    return bytes(pdf.output())


def _field(pdf: FPDF, label: str, value: str) -> None:
    pdf.set_font("Helvetica", "", 10)
    y = pdf.get_y()
    pdf.cell(_LABEL_WIDTH, _LINE, label)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(0, _LINE, printable(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), y + _LINE) + 1)


def _blank(pdf: FPDF, label: str) -> None:
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(_LABEL_WIDTH, _LINE, label)
    x, y = pdf.get_x(), pdf.get_y() + _LINE
    pdf.line(x, y, pdf.w - _MARGIN, y)
    pdf.ln(_LINE + 2)


def _rule(pdf: FPDF) -> None:
    pdf.ln(3)
    y = pdf.get_y()
    pdf.set_line_width(0.3)
    pdf.line(_MARGIN, y, pdf.w - _MARGIN, y)
    pdf.ln(4)
