"""Validated identifiers: organisation numbers, key serials, credential numbers, ID06 cards.

Each is an ``Annotated[str, ...]`` usable as a pydantic field type; validation failures become
pydantic errors that name the field and the reason. The plain functions are usable on their own.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, JsonValue

_ORG_RE = re.compile(r"^(\d{6})-?(\d{4})$")
_KEY_SERIAL_RE = re.compile(r"^\d{9}$")
_RFID_RE = re.compile(r"^\d{1,10}$")
_ID06_RE = re.compile(r"^[A-Z0-9]{6,20}$")
_MOBILE_RE = re.compile(r"^\+?[0-9]{7,15}$")
_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

RFID_MAX = 0xFFFFFFFF

# JSON Schema patterns of the canonical forms (ECMA-262 and Python ``re`` read them alike).
# They describe what the validators below accept, written the way a sender should write it.
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
ORG_NUMBER_PATTERN = r"^[0-9]{6}-?[0-9]{4}$"
KEY_SERIAL_PATTERN = r"^[0-9]{9}$"
RFID_PATTERN = (
    r"^([1-9][0-9]{0,8}|[1-3][0-9]{9}|4[01][0-9]{8}|42[0-8][0-9]{7}|429[0-3][0-9]{6}"
    r"|4294[0-8][0-9]{5}|42949[0-5][0-9]{4}|429496[0-6][0-9]{3}|4294967[01][0-9]{2}"
    r"|42949672[0-8][0-9]|429496729[0-5])$"
)
"""1 to 4294967295, decimal, without leading zeros."""
ID06_PATTERN = r"^[A-Za-z0-9]{6,20}$"
MOBILE_PATTERN = r"^\+?[0-9]{7,15}$"
TEXT_PATTERN = r"^[^\x00-\x08\x0a-\x1f]*[^\s\x00-\x1f\x85][^\x00-\x08\x0a-\x1f]*$"
"""Text with something besides spaces, and no control characters but tabs."""


def luhn_valid(digits: str) -> bool:
    """Return True when the digit string passes the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def normalize_org_number(value: str) -> str:
    """Normalise a Swedish organisation number to ``NNNNNN-NNNN`` and check its Luhn digit.

    Accepts ``5560360793`` and ``556036-0793``. The third digit of an organisation number
    is at least 2 (so it cannot be mistaken for a birth month); personal numbers of sole
    traders are accepted as long as the check digit holds.
    """
    m = _ORG_RE.match(value.strip())
    if not m:
        raise ValueError("must be 10 digits, written NNNNNN-NNNN or NNNNNNNNNN")
    digits = m.group(1) + m.group(2)
    if not luhn_valid(digits):
        raise ValueError("check digit (Luhn) does not match")
    return f"{m.group(1)}-{m.group(2)}"


def org_number_with_check_digit(first_nine: str) -> str:
    """Complete nine digits with their Luhn check digit, formatted ``NNNNNN-NNNN``."""
    if not re.fullmatch(r"\d{9}", first_nine):
        raise ValueError("must be exactly 9 digits")
    for d in "0123456789":
        if luhn_valid(first_nine + d):
            full = first_nine + d
            return f"{full[:6]}-{full[6:]}"
    raise AssertionError("unreachable: one check digit always exists")


def _check_key_serial(value: str) -> str:
    if not _KEY_SERIAL_RE.match(value):
        raise ValueError("a key serial number is exactly 9 digits")
    return value


def _check_rfid(value: str) -> str:
    if not _RFID_RE.match(value) or not 0 < int(value) <= RFID_MAX:
        raise ValueError("an RFID credential number is a decimal number from 1 to 4294967295")
    return str(int(value))


def _check_id06(value: str) -> str:
    v = value.strip().upper().replace(" ", "")
    if not _ID06_RE.match(v):
        raise ValueError("an ID06 card number is 6 to 20 letters or digits")
    return v


def _check_mobile(value: str) -> str:
    v = re.sub(r"[\s-]", "", value)
    if not _MOBILE_RE.match(v):
        raise ValueError("a mobile number is 7 to 15 digits, optionally starting with +")
    return v


def _check_slug(value: str) -> str:
    if not _SLUG_RE.match(value):
        raise ValueError(
            "an identifier is 1 to 64 characters: letters, digits and . _ : -, "
            "starting with a letter or digit"
        )
    return value


def _strip(value: object) -> object:
    if isinstance(value, str):
        if any(ord(ch) < 32 and ch not in "\t" for ch in value):
            raise ValueError("must not contain control characters (line breaks, NUL, ...)")
        return value.strip()
    return value


def _coerce_str(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _schema(pattern: str, **extra: JsonValue) -> Any:
    return Field(json_schema_extra={"pattern": pattern, **extra})


OrgNumber = Annotated[
    str,
    BeforeValidator(_strip),
    AfterValidator(normalize_org_number),
    _schema(ORG_NUMBER_PATTERN, examples=["556677-8899"]),
]
"""Swedish organisation number, normalised to ``NNNNNN-NNNN``, Luhn-checked."""

KeySerial = Annotated[
    str,
    BeforeValidator(_coerce_str),
    AfterValidator(_check_key_serial),
    _schema(KEY_SERIAL_PATTERN),
]
"""Serial number of a CLIQ-style key: exactly 9 digits."""

RfidNumber = Annotated[
    str, BeforeValidator(_coerce_str), AfterValidator(_check_rfid), _schema(RFID_PATTERN)
]
"""Number of an RFID tag or visitor card: 1..2**32-1, decimal, no leading zeros."""

CylinderId = Annotated[
    str, BeforeValidator(_coerce_str), AfterValidator(_check_rfid), _schema(RFID_PATTERN)
]
"""Hardware number of an offline cylinder: 1..2**32-1, decimal, no leading zeros."""

Id06CardNumber = Annotated[str, AfterValidator(_check_id06), _schema(ID06_PATTERN)]
"""ID06 card number: 6-20 letters or digits, upper-cased, spaces removed."""

Mobile = Annotated[str, AfterValidator(_check_mobile), _schema(MOBILE_PATTERN)]
"""Mobile phone number: 7-15 digits, optional leading +."""

Ident = Annotated[str, BeforeValidator(_strip), AfterValidator(_check_slug), _schema(IDENT_PATTERN)]
"""Identifier of a fact chosen by the system that owns it (a central system, an operator)."""

Name = Annotated[str, BeforeValidator(_strip), _schema(TEXT_PATTERN)]
