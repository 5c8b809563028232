"""Primitive field codecs shared by messages and images: big-endian integers, LEB128
varints, length-prefixed ASCII strings and unix-second times with sentinels.

Decoding goes through :class:`Reader`, which names the field in every error so that a
refused frame can say exactly what was wrong with it.
"""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta

U32_MAX = 0xFFFFFFFF
TIME_UNBOUNDED_START = 0
"""Wire value of an unbounded start (``valid_from`` of ``None``)."""
TIME_UNBOUNDED_END = U32_MAX
"""Wire value of an unbounded end (``valid_until`` / ``revalidate_by`` of ``None``)."""
MAX_STR = 64
_TEXT_RE = re.compile(r"^[\x21-\x7e]*$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DecodeError(ValueError):
    """Bytes that are not a valid encoding. ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Reader:
    """Reads fields from ``data`` in order; every read names its field for errors."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, n: int, field: str) -> bytes:
        if self.remaining < n:
            raise DecodeError(field, f"needs {n} bytes, only {self.remaining} left")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self, field: str) -> int:
        return self._take(1, field)[0]

    def u16(self, field: str) -> int:
        value: int = struct.unpack(">H", self._take(2, field))[0]
        return value

    def u32(self, field: str) -> int:
        value: int = struct.unpack(">I", self._take(4, field))[0]
        return value

    def raw(self, n: int, field: str) -> bytes:
        return self._take(n, field)

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    def varint(self, field: str, *, maximum: int = U32_MAX) -> int:
        """An unsigned LEB128 integer in its shortest form, at most ``maximum``."""
        value = 0
        for i in range(5):
            byte = self.u8(field)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if i > 0 and byte == 0:
                    raise DecodeError(field, "varint is not in its shortest form")
                if value > maximum:
                    raise DecodeError(field, f"{value} exceeds the maximum {maximum}")
                return value
        raise DecodeError(field, "varint longer than 5 bytes")

    def text(self, field: str, *, min_len: int = 0, max_len: int = MAX_STR) -> str:
        """A length-prefixed (u8) printable-ASCII string without spaces."""
        n = self.u8(field)
        if not min_len <= n <= max_len:
            raise DecodeError(field, f"length {n} is outside {min_len}..{max_len}")
        raw = self._take(n, field)
        try:
            value = raw.decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError(field, "is not ASCII") from None
        if not _TEXT_RE.match(value):
            raise DecodeError(field, "contains spaces or control characters")
        return value

    def end(self, field: str = "payload") -> None:
        """Refuse trailing bytes."""
        if self.remaining:
            raise DecodeError(field, f"{self.remaining} unexpected trailing bytes")


class Writer:
    """Appends fields; values are range-checked so an encoder can never emit bad bytes."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def u8(self, value: int, field: str) -> Writer:
        _check_range(value, 0, 0xFF, field)
        self._buf.append(value)
        return self

    def u16(self, value: int, field: str) -> Writer:
        _check_range(value, 0, 0xFFFF, field)
        self._buf += struct.pack(">H", value)
        return self

    def u32(self, value: int, field: str) -> Writer:
        _check_range(value, 0, U32_MAX, field)
        self._buf += struct.pack(">I", value)
        return self

    def raw(self, value: bytes) -> Writer:
        self._buf += value
        return self

    def varint(self, value: int, field: str) -> Writer:
        _check_range(value, 0, U32_MAX, field)
        while True:
            byte = value & 0x7F
            value >>= 7
            if value:
                self._buf.append(byte | 0x80)
            else:
                self._buf.append(byte)
                return self

    def text(self, value: str, field: str, *, min_len: int = 0, max_len: int = MAX_STR) -> Writer:
        check_text(value, field, min_len=min_len, max_len=max_len)
        self._buf.append(len(value))
        self._buf += value.encode("ascii")
        return self


def _check_range(value: int, lo: int, hi: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: must be an integer, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{field}: {value} is outside {lo}..{hi}")


def check_text(value: str, field: str, *, min_len: int = 0, max_len: int = MAX_STR) -> None:
    """Raise ``ValueError`` naming ``field`` unless :meth:`Writer.text` can encode ``value``."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: must be a string")
    if not min_len <= len(value) <= max_len:
        raise ValueError(f"{field}: length {len(value)} is outside {min_len}..{max_len}")
    if not _TEXT_RE.match(value):
        raise ValueError(f"{field}: only printable ASCII without spaces is allowed")


def varint_size(value: int) -> int:
    """Number of bytes :meth:`Writer.varint` uses for ``value``."""
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _to_seconds(value: datetime, field: str) -> tuple[int, int]:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field}: must be timezone-aware")
    delta = value - _EPOCH
    return delta.days * 86400 + delta.seconds, delta.microseconds


def start_to_wire(value: datetime | None, field: str) -> int:
    """Encode an inclusive start; fractions of a second are rounded *up* (never earlier)."""
    if value is None:
        return TIME_UNBOUNDED_START
    seconds, micros = _to_seconds(value, field)
    if micros:
        seconds += 1
    if not 0 < seconds < U32_MAX:
        raise ValueError(f"{field}: {value.isoformat()} is outside 1970-01-01..2106-02-07")
    return seconds


def end_to_wire(value: datetime | None, field: str) -> int:
    """Encode an exclusive end or deadline; fractions of a second are rounded *down* (never
    later)."""
    if value is None:
        return TIME_UNBOUNDED_END
    seconds, _ = _to_seconds(value, field)
    if not 0 < seconds < U32_MAX:
        raise ValueError(f"{field}: {value.isoformat()} is outside 1970-01-01..2106-02-07")
    return seconds


def start_from_wire(value: int) -> datetime | None:
    return None if value == TIME_UNBOUNDED_START else _EPOCH + timedelta(seconds=value)


def end_from_wire(value: int) -> datetime | None:
    return None if value == TIME_UNBOUNDED_END else _EPOCH + timedelta(seconds=value)


def instant_to_wire(value: datetime, field: str) -> int:
    """Encode an instant (audit time) as whole unix seconds, rounded down."""
    seconds, _ = _to_seconds(value, field)
    _check_range(seconds, 0, U32_MAX, field)
    return seconds


def instant_from_wire(value: int) -> datetime:
    return _EPOCH + timedelta(seconds=value)
