"""Card data from a reader (an ``osdp_RAW`` reply) to a 32-bit credential number.

``raw``
    The card's bits as one unsigned number, most significant bit first (1..32 bits): what
    readers report for a card serial number.
``wiegand26``
    The 26-bit H10301 layout: even parity over the first 12 data bits, 8-bit facility code,
    16-bit card number, odd parity over the last 12; the credential is
    ``facility << 16 | card``. A parity error rejects the read.

Bits sent backwards (``direction`` 1) are turned around first. Anything else is refused
with :class:`CardDataError`, which names the field and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

CardFormat = Literal["raw", "wiegand26"]
CARD_FORMATS: tuple[CardFormat, ...] = ("raw", "wiegand26")

OSDP_FORMAT_RAW_UNSPECIFIED = 0
OSDP_FORMAT_RAW_WIEGAND = 1
MAX_RAW_BITS = 32
MAX_CARD_BYTES = 64


class CardDataError(ValueError):
    """Card data that is not a credential number; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _bits(data: bytes, count: int, backwards: bool) -> str:
    text = "".join(f"{b:08b}" for b in data)[:count]
    return text[::-1] if backwards else text


def credential_from_read(event: Mapping[str, Any], card_format: CardFormat) -> int:
    """The credential number of a card-read event (a dict as the OSDP library reports it)."""
    fmt = event.get("format")
    if fmt not in (OSDP_FORMAT_RAW_UNSPECIFIED, OSDP_FORMAT_RAW_WIEGAND):
        raise CardDataError("format", f"card data format {fmt!r} is not raw bits")
    direction = event.get("direction", 0)
    if direction not in (0, 1):
        raise CardDataError("direction", f"must be 0 (forward) or 1 (backward), got {direction!r}")
    data = event.get("data")
    count = event.get("length")
    if not isinstance(data, bytes) or len(data) > MAX_CARD_BYTES:
        raise CardDataError("data", "missing or longer than 64 bytes")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise CardDataError("length", f"bit count must be a positive integer, got {count!r}")
    if (count + 7) // 8 != len(data):
        raise CardDataError("length", f"{count} bits do not fit {len(data)} data bytes")
    bits = _bits(data, count, direction == 1)
    if card_format == "raw":
        if count > MAX_RAW_BITS:
            raise CardDataError("length", f"{count} bits do not fit a 32-bit credential")
        value = int(bits, 2)
        if value == 0:
            raise CardDataError("data", "all bits are zero")
        return value
    if count != 26:
        raise CardDataError("length", f"wiegand26 needs 26 bits, got {count}")
    if bits[:13].count("1") % 2 != 0:
        raise CardDataError("data", "wiegand26 leading (even) parity error")
    if bits[13:].count("1") % 2 != 1:
        raise CardDataError("data", "wiegand26 trailing (odd) parity error")
    value = int(bits[1:25], 2)
    if value == 0:
        raise CardDataError("data", "facility and card number are both zero")
    return value


def wiegand26_bits(credential: int) -> tuple[bytes, int]:
    """Encode ``credential`` (facility << 16 | card, at most 24 bits) as H10301 card data:
    the data bytes (bits left-aligned) and the bit count."""
    if not 0 < credential < 1 << 24:
        raise ValueError(f"credential: wiegand26 carries 1..{(1 << 24) - 1}, got {credential}")
    body = f"{credential:024b}"
    lead = "1" if body[:12].count("1") % 2 else "0"
    trail = "0" if body[12:].count("1") % 2 else "1"
    bits = lead + body + trail
    return int(bits + "000000", 2).to_bytes(4, "big"), 26


def raw_bits(credential: int, bits: int = 32) -> tuple[bytes, int]:
    """Encode ``credential`` as ``bits`` raw bits, most significant first, left-aligned."""
    if not 0 < credential < 1 << bits:
        raise ValueError(f"credential: {bits} bits carry 1..{(1 << bits) - 1}, got {credential}")
    size = (bits + 7) // 8
    return (credential << (size * 8 - bits)).to_bytes(size, "big"), bits


__all__ = [
    "CARD_FORMATS",
    "CardDataError",
    "CardFormat",
    "credential_from_read",
    "raw_bits",
    "wiegand26_bits",
]
