"""Framing of the key-station protocol: pure bytes in, frames out.

Layout (all integers big-endian)::

    0   2  SOF    0xA5 0x5A
    2   1  SEQ    sequence number of the request / notification (0..255)
    3   1  TYPE   message type (codes.MessageType)
    4   2  LEN    payload length, 0..max payload
    6   2  HCRC   CRC-16/CCITT-FALSE (binascii.crc_hqx, init 0xFFFF) of bytes 0..5
    8   LEN PAYLOAD
    8+LEN 4 CRC   CRC-32 (zlib.crc32) of bytes 0..8+LEN-1

The header has its own CRC instead of byte stuffing: the overhead stays a constant 12 bytes
whatever the payload holds, a corrupted LEN is caught before the receiver waits for a
payload that will never come, and resynchronisation is a scan for the next SOF whose header
CRC holds.
"""

from __future__ import annotations

import binascii
import struct
import zlib
from dataclasses import dataclass
from enum import StrEnum

SOF = b"\xa5\x5a"
HEADER_SIZE = 8
TRAILER_SIZE = 4
OVERHEAD = HEADER_SIZE + TRAILER_SIZE
MAX_PAYLOAD_LIMIT = 4096
"""Largest payload any station may announce; receivers refuse longer LEN fields."""

_HEAD = struct.Struct(">2sBBH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def header_crc(head: bytes) -> int:
    """CRC-16/CCITT-FALSE of the first six header bytes."""
    return binascii.crc_hqx(head, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Frame:
    """One intact frame: its sequence number, message type byte and payload."""

    seq: int
    type: int
    payload: bytes

    def encode(self) -> bytes:
        return encode_frame(self.seq, self.type, self.payload)


def encode_frame(seq: int, mtype: int, payload: bytes) -> bytes:
    """The wire bytes of one frame. Raises ``ValueError`` naming the field out of range."""
    if not 0 <= seq <= 0xFF:
        raise ValueError(f"seq: {seq} is outside 0..255")
    if not 0 <= mtype <= 0xFF:
        raise ValueError(f"type: {mtype} is outside 0..255")
    if len(payload) > MAX_PAYLOAD_LIMIT:
        raise ValueError(f"payload: {len(payload)} bytes exceed {MAX_PAYLOAD_LIMIT}")
    head = _HEAD.pack(SOF, seq, mtype, len(payload))
    body = head + _U16.pack(header_crc(head)) + payload
    return body + _U32.pack(zlib.crc32(body))


class FrameErrorKind(StrEnum):
    BAD_CRC = "bad_crc"
    """Intact header, payload CRC-32 wrong."""
    BAD_LENGTH = "bad_length"
    """Intact header announcing more than the maximum payload."""
    TRUNCATED = "truncated"
    """Intact header, the rest did not arrive before :meth:`FrameDecoder.flush`."""


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame whose header was intact (so ``seq`` and ``type`` are trustworthy) but which
    could not be received; the receiver may NAK it."""

    kind: FrameErrorKind
    seq: int
    type: int


@dataclass(slots=True)
class DecoderStats:
    frames: int = 0
    garbage_bytes: int = 0
    bad_headers: int = 0
    bad_crc: int = 0
    bad_length: int = 0
    truncated: int = 0


class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, get frames and errors.

    Never raises on input. Garbage between frames is skipped; after a CRC failure the scan
    restarts one byte after the failed SOF, so a frame that followed a damaged one in the
    same buffer is still found.
    """

    def __init__(self, *, max_payload: int = MAX_PAYLOAD_LIMIT) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        self.stats = DecoderStats()

    @property
    def max_payload(self) -> int:
        return self._max_payload

    @max_payload.setter
    def max_payload(self, value: int) -> None:
        if not 0 < value <= MAX_PAYLOAD_LIMIT:
            raise ValueError(f"max_payload: {value} is outside 1..{MAX_PAYLOAD_LIMIT}")
        self._max_payload = value

    @property
    def partial(self) -> bool:
        """True while bytes of an unfinished frame are buffered."""
        return bool(self._buf)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self._buf += data
        return self._scan()

    def flush(self) -> list[Frame | FrameError]:
        """Give up on a partial frame (the line went idle) and rescan what follows it."""
        out: list[Frame | FrameError] = []
        while self._buf:
            head = self._valid_header()
            if head is not None:
                self.stats.truncated += 1
                out.append(FrameError(FrameErrorKind.TRUNCATED, head[0], head[1]))
            self._drop(1, garbage=head is None)
            out += self._scan()
        return out

    def _drop(self, n: int, *, garbage: bool) -> None:
        del self._buf[:n]
        if garbage:
            self.stats.garbage_bytes += n

    def _valid_header(self) -> tuple[int, int, int] | None:
        buf = self._buf
        if len(buf) < HEADER_SIZE or buf[:2] != SOF:
            return None
        head = bytes(buf[:6])
        if _U16.unpack_from(buf, 6)[0] != header_crc(head):
            return None
        _, seq, mtype, length = _HEAD.unpack(head)
        return seq, mtype, length

    def _scan(self) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        buf = self._buf
        while buf:
            start = buf.find(SOF)
            if start < 0:
                keep = 1 if buf[-1] == SOF[0] else 0
                self._drop(len(buf) - keep, garbage=True)
                break
            if start:
                self._drop(start, garbage=True)
            if len(buf) < HEADER_SIZE:
                break
            head = self._valid_header()
            if head is None:
                self.stats.bad_headers += 1
                self._drop(1, garbage=True)
                continue
            seq, mtype, length = head
            if length > self._max_payload:
                self.stats.bad_length += 1
                out.append(FrameError(FrameErrorKind.BAD_LENGTH, seq, mtype))
                self._drop(HEADER_SIZE, garbage=False)
                continue
            end = HEADER_SIZE + length
            if len(buf) < end + TRAILER_SIZE:
                break
            if _U32.unpack_from(buf, end)[0] != zlib.crc32(buf[:end]):
                self.stats.bad_crc += 1
                out.append(FrameError(FrameErrorKind.BAD_CRC, seq, mtype))
                self._drop(1, garbage=False)
                continue
            self.stats.frames += 1
            out.append(Frame(seq, mtype, bytes(buf[HEADER_SIZE:end])))
            self._drop(end + TRAILER_SIZE, garbage=False)
        return out
