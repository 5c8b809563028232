"""The UHPPOTE wire format, as the simulated controller reads and writes it.

Every request and every reply is one 64-byte packet::

    offset 0   start of message, 0x17
    offset 1   function code (:class:`Function`)
    offset 2   two bytes, zero
    offset 4   controller serial number, uint32 little-endian
    offset 8   the function's fields (zero where unused)

Integers are little-endian; dates and times are packed BCD (``2024-05-01`` is
``20 24 05 01``, ``17:30`` is ``17 30``); a PIN is a 24-bit little-endian integer; booleans
are one byte, 0 or 1. Functions that erase something (delete all cards, clear the time
profiles, set the event index, set the IP address) carry the magic word ``0x55AAAA55``.

This module is the simulator's own implementation of the format, written from the protocol
description in ``docs/protocols/uhppote.md``; it does not use the client library, so that the
conformance tests check one implementation against another.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import IntEnum

SOM = 0x17
PACKET_SIZE = 64
MAGIC = 0x55AAAA55
U32_MAX = 0xFFFF_FFFF


class Function(IntEnum):
    """Function codes of the requests the simulator answers."""

    GET_STATUS = 0x20
    SET_TIME = 0x30
    GET_TIME = 0x32
    OPEN_DOOR = 0x40
    PUT_CARD = 0x50
    DELETE_CARD = 0x52
    DELETE_ALL_CARDS = 0x54
    GET_CARDS = 0x58
    GET_CARD = 0x5A
    GET_CARD_BY_INDEX = 0x5C
    SET_DOOR_CONTROL = 0x80
    GET_DOOR_CONTROL = 0x82
    SET_TIME_PROFILE = 0x88
    CLEAR_TIME_PROFILES = 0x8A
    RECORD_SPECIAL_EVENTS = 0x8E
    SET_LISTENER = 0x90
    GET_LISTENER = 0x92
    GET_CONTROLLER = 0x94
    SET_IP = 0x96
    GET_TIME_PROFILE = 0x98
    GET_EVENT = 0xB0
    SET_EVENT_INDEX = 0xB2
    GET_EVENT_INDEX = 0xB4


EVENT_FUNCTION = 0x20
"""Function code of an event pushed to the listener (the layout of a status reply)."""


class PacketError(ValueError):
    """A packet that is not valid protocol; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request: function, addressed serial number and the whole packet."""

    function: Function
    serial: int
    packet: bytes

    def u8(self, offset: int) -> int:
        return self.packet[offset]

    def u16(self, offset: int) -> int:
        return int(struct.unpack_from("<H", self.packet, offset)[0])

    def u32(self, offset: int) -> int:
        return int(struct.unpack_from("<I", self.packet, offset)[0])

    def flag(self, offset: int, field: str) -> bool:
        value = self.packet[offset]
        if value not in (0, 1):
            raise PacketError(field, f"must be 0 or 1, got {value}")
        return value == 1

    def pin(self, offset: int) -> int:
        return int.from_bytes(self.packet[offset : offset + 3], "little")

    def bcd_date(self, offset: int, field: str) -> date | None:
        return decode_date(self.packet[offset : offset + 4], field)

    def bcd_datetime(self, offset: int, field: str) -> datetime | None:
        return decode_datetime(self.packet[offset : offset + 7], field)

    def hhmm(self, offset: int, field: str) -> time:
        return decode_hhmm(self.packet[offset : offset + 2], field)

    def ipv4(self, offset: int) -> str:
        return ".".join(str(b) for b in self.packet[offset : offset + 4])


def parse_request(data: bytes) -> Request:
    """Check the framing of a request and return it; raise :class:`PacketError` otherwise."""
    if len(data) != PACKET_SIZE:
        raise PacketError("length", f"a packet is {PACKET_SIZE} bytes, got {len(data)}")
    if data[0] != SOM:
        raise PacketError("som", f"start of message must be 0x{SOM:02x}, got 0x{data[0]:02x}")
    try:
        function = Function(data[1])
    except ValueError:
        raise PacketError("function", f"unknown function code 0x{data[1]:02x}") from None
    serial = int(struct.unpack_from("<I", data, 4)[0])
    return Request(function, serial, bytes(data))


class Reply:
    """A reply packet under construction: SOM, function and serial already in place."""

    def __init__(self, function: int, serial: int) -> None:
        self.buf = bytearray(PACKET_SIZE)
        self.buf[0] = SOM
        self.buf[1] = function
        struct.pack_into("<I", self.buf, 4, serial)

    def u8(self, offset: int, value: int) -> Reply:
        self.buf[offset] = value
        return self

    def u16(self, offset: int, value: int) -> Reply:
        struct.pack_into("<H", self.buf, offset, value)
        return self

    def u32(self, offset: int, value: int) -> Reply:
        struct.pack_into("<I", self.buf, offset, value)
        return self

    def flag(self, offset: int, value: bool) -> Reply:
        self.buf[offset] = 1 if value else 0
        return self

    def pin(self, offset: int, value: int) -> Reply:
        self.buf[offset : offset + 3] = value.to_bytes(3, "little")
        return self

    def bcd_date(self, offset: int, value: date | None) -> Reply:
        self.buf[offset : offset + 4] = encode_date(value)
        return self

    def bcd_datetime(self, offset: int, value: datetime | None) -> Reply:
        self.buf[offset : offset + 7] = encode_datetime(value)
        return self

    def short_date(self, offset: int, value: date) -> Reply:
        self.buf[offset : offset + 3] = _bcd(f"{value:%y%m%d}")
        return self

    def hhmmss(self, offset: int, value: time) -> Reply:
        self.buf[offset : offset + 3] = _bcd(f"{value:%H%M%S}")
        return self

    def hhmm(self, offset: int, value: time) -> Reply:
        self.buf[offset : offset + 2] = _bcd(f"{value:%H%M}")
        return self

    def ipv4(self, offset: int, value: str) -> Reply:
        self.buf[offset : offset + 4] = bytes(int(part) for part in value.split("."))
        return self

    def raw(self, offset: int, value: bytes) -> Reply:
        self.buf[offset : offset + len(value)] = value
        return self

    def bytes(self) -> bytes:
        return bytes(self.buf)


# --------------------------------------------------------------------------- BCD


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits)


def _digits(raw: bytes, field: str) -> str:
    text = raw.hex()
    if not text.isdigit():
        raise PacketError(field, f"not BCD digits: {text}")
    return text


def encode_date(value: date | None) -> bytes:
    """``yyyymmdd`` in four BCD bytes; ``None`` is all zero."""
    if value is None:
        return bytes(4)
    return _bcd(f"{value.year:04d}{value.month:02d}{value.day:02d}")


def decode_date(raw: bytes, field: str) -> date | None:
    """Inverse of :func:`encode_date`; all zero is ``None``."""
    if not any(raw):
        return None
    text = _digits(raw, field)
    try:
        return date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise PacketError(field, f"not a date: {text}") from None


def encode_datetime(value: datetime | None) -> bytes:
    """``yyyymmddHHMMSS`` in seven BCD bytes; ``None`` is all zero."""
    if value is None:
        return bytes(7)
    return encode_date(value.date()) + _bcd(f"{value:%H%M%S}")


def decode_datetime(raw: bytes, field: str) -> datetime | None:
    if not any(raw):
        return None
    text = _digits(raw, field)
    try:
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
        )
    except ValueError:
        raise PacketError(field, f"not a date and time: {text}") from None


def decode_hhmm(raw: bytes, field: str) -> time:
    text = _digits(raw, field)
    try:
        return time(int(text[0:2]), int(text[2:4]))
    except ValueError:
        raise PacketError(field, f"not a time of day: {text}") from None


__all__ = [
    "EVENT_FUNCTION",
    "MAGIC",
    "PACKET_SIZE",
    "SOM",
    "U32_MAX",
    "Function",
    "PacketError",
    "Reply",
    "Request",
    "decode_date",
    "decode_datetime",
    "decode_hhmm",
    "encode_date",
    "encode_datetime",
    "parse_request",
]
