"""The simulator's own wire codec: BCD fields round-trip, framing errors name the field."""

from __future__ import annotations

import struct
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.uhppote.packets import (
    PacketError,
    Reply,
    decode_date,
    decode_datetime,
    encode_date,
    encode_datetime,
    parse_request,
)

DATES = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))


@given(DATES)
def test_dates_round_trip(value: date) -> None:
    assert decode_date(encode_date(value), "d") == value


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_datetimes_round_trip(value: datetime) -> None:
    value = value.replace(microsecond=0)
    assert decode_datetime(encode_datetime(value), "t") == value


def test_bcd_is_digit_per_nibble() -> None:
    assert encode_date(date(2024, 5, 1)) == bytes.fromhex("20240501")
    assert encode_datetime(datetime(2024, 5, 1, 17, 30, 9)) == bytes.fromhex("20240501173009")
    assert decode_date(bytes(4), "d") is None


@pytest.mark.parametrize(
    ("raw", "field"),
    [(bytes.fromhex("2024a501"), "from"), (bytes.fromhex("20241301"), "from")],
)
def test_bad_dates_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(PacketError) as err:
        decode_date(raw, field)
    assert err.value.field == field


def _request(function: int, serial: int = 7) -> bytes:
    packet = bytearray(64)
    packet[0], packet[1] = 0x17, function
    struct.pack_into("<I", packet, 4, serial)
    return bytes(packet)


def test_framing_is_checked() -> None:
    assert parse_request(_request(0x94)).serial == 7
    with pytest.raises(PacketError, match="length"):
        parse_request(_request(0x94)[:63])
    with pytest.raises(PacketError, match="som"):
        parse_request(b"\x18" + _request(0x94)[1:])
    with pytest.raises(PacketError, match="function: unknown function code 0x99"):
        parse_request(_request(0x99))


@given(st.integers(0, 999_999))
def test_pins_are_24_bit_little_endian(pin: int) -> None:
    packet = Reply(0x5A, 1).pin(24, pin).bytes()
    assert int.from_bytes(packet[24:27], "little") == pin
    assert parse_request(packet[:1] + bytes([0x5A]) + packet[2:]).pin(24) == pin
