"""Card data (osdp_RAW) to credential numbers: raw bits and 26-bit Wiegand (H10301)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.osdp.cards import CardDataError, credential_from_read, raw_bits, wiegand26_bits

# H10301 worked by hand: facility 18, card 12345, even parity 0 over the first 12 data bits
# (four ones), odd parity 1 over the last 12 (four ones):
# 0 00010010 0011000000111001 1, left-aligned in four bytes.
H10301_18_12345 = bytes.fromhex("09181cc0")


def _read(data: bytes, bits: int, **extra: Any) -> dict[str, Any]:
    return {
        "event": 1,
        "reader_no": 0,
        "format": 1,
        "direction": 0,
        "length": bits,
        "data": data,
        **extra,
    }


def test_wiegand26_known_card() -> None:
    assert credential_from_read(_read(H10301_18_12345, 26), "wiegand26") == 18 << 16 | 12345
    assert wiegand26_bits(18 << 16 | 12345) == (H10301_18_12345, 26)


def test_raw_bits_are_the_number_most_significant_first() -> None:
    assert credential_from_read(_read(bytes.fromhex("003d0a5b"), 32), "raw") == 0x003D0A5B
    # 12 bits left-aligned in two bytes: 0xABC.
    assert credential_from_read(_read(bytes.fromhex("abc0"), 12), "raw") == 0xABC
    # Sent backwards: the same 12 bits reversed.
    backwards = int(f"{0xABC:012b}"[::-1] + "0000", 2).to_bytes(2, "big")
    assert credential_from_read(_read(backwards, 12, direction=1), "raw") == 0xABC


@given(st.integers(1, (1 << 24) - 1))
def test_wiegand26_round_trip(credential: int) -> None:
    data, bits = wiegand26_bits(credential)
    assert credential_from_read(_read(data, bits), "wiegand26") == credential


@given(st.integers(1, (1 << 24) - 1), st.integers(0, 25))
def test_wiegand26_any_single_bit_error_is_caught(credential: int, flip: int) -> None:
    data, bits = wiegand26_bits(credential)
    value = int.from_bytes(data, "big") ^ (1 << (31 - flip))
    with pytest.raises(CardDataError, match="parity"):
        credential_from_read(_read(value.to_bytes(4, "big"), bits), "wiegand26")


@given(st.integers(1, 32).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, (1 << n) - 1))))
def test_raw_round_trip(sized: tuple[int, int]) -> None:
    bits, credential = sized
    data, count = raw_bits(credential, bits)
    assert credential_from_read(_read(data, count), "raw") == credential


@pytest.mark.parametrize(
    ("event", "card_format", "field"),
    [
        (_read(bytes(5), 40), "raw", "length"),
        (_read(b"\x00\x00\x00\x00", 32), "raw", "data"),
        (_read(b"\x01\x02", 12), "wiegand26", "length"),
        (_read(b"\x01\x02\x03", 12), "raw", "length"),  # 12 bits are two bytes, not three
        (_read(b"\x01", 0), "raw", "length"),
        (_read(b"\x01", 8, format=2), "raw", "format"),
        (_read(b"\x01", 8, direction=2), "raw", "direction"),
        ({"event": 1, "format": 1, "length": 8}, "raw", "data"),
        (_read(b"\x01", 8, length=True), "raw", "length"),
    ],
)
def test_malformed_reads_name_the_field(
    event: dict[str, Any], card_format: Any, field: str
) -> None:
    with pytest.raises(CardDataError) as err:
        credential_from_read(event, card_format)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")
