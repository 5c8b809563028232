"""Messages of the key-station protocol and their payload codecs (pure, no I/O).

Each message is a frozen dataclass with a ``TYPE``; :func:`encode_message` turns one into a
frame, :func:`decode_message` turns a received :class:`~drivers.serialstation.frames.Frame`
back into a message and raises :class:`~drivers.serialstation.wire.DecodeError` naming the
field when the payload is not valid. Field values are wire-level (integers, ASCII strings,
bytes); converting them to the contract's data types is the driver's job.
"""

from __future__ import annotations

import dataclasses
import typing
import zlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Self

from drivers.serialstation.codes import (
    NAK_CODES,
    AuditOutcomeCode,
    AuditReason,
    AuditSource,
    Capability,
    ErrorCode,
    MessageType,
    Mounting,
    WriteMode,
)
from drivers.serialstation.frames import MAX_PAYLOAD_LIMIT, Frame, encode_frame
from drivers.serialstation.wire import DecodeError, Reader, Writer

MAX_SERIAL = 32
MAX_WINDOW = 32
MIN_PAYLOAD = 64
"""Smallest maximum frame payload a station may announce (room for every fixed message)."""
REVISION_SIZE = 8


def _enum(enum: type[IntEnum], value: int, field: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise DecodeError(field, f"{value} is not a known {enum.__name__}") from None


def _check(condition: bool, field: str, reason: str) -> None:
    if not condition:
        raise DecodeError(field, reason)


class Message:
    """Base of every message. Subclasses are dataclasses with a ``TYPE``."""

    TYPE: ClassVar[MessageType]
    __slots__ = ()

    def encode_payload(self) -> bytes:
        return b""

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        Reader(payload).end()
        return cls()


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Hello(Message):
    """Host opens the link; the station resets its duplicate cache and pending writes."""

    TYPE: ClassVar[MessageType] = MessageType.HELLO
    version: int

    def encode_payload(self) -> bytes:
        return Writer().u8(self.version, "version").getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(r.u8("version"))
        r.end()
        return msg


@dataclass(frozen=True, slots=True)
class KeyInfo(Message):
    """Ask for the inserted key's serial, revision, image checksum and length."""

    TYPE: ClassVar[MessageType] = MessageType.KEY_INFO


@dataclass(frozen=True, slots=True)
class ReadKey(Message):
    """Read ``length`` bytes of the key's canonical image starting at ``offset``."""

    TYPE: ClassVar[MessageType] = MessageType.READ_KEY
    offset: int
    length: int

    def encode_payload(self) -> bytes:
        if not 0 < self.length <= MAX_PAYLOAD_LIMIT:
            raise ValueError(f"length: {self.length} is outside 1..{MAX_PAYLOAD_LIMIT}")
        return Writer().u32(self.offset, "offset").u16(self.length, "length").getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        offset, length = r.u32("offset"), r.u16("length")
        _check(0 < length <= MAX_PAYLOAD_LIMIT, "length", f"must be 1..{MAX_PAYLOAD_LIMIT}")
        r.end()
        return cls(offset, length)


@dataclass(frozen=True, slots=True)
class WriteBegin(Message):
    """Start staging a write of ``length`` bytes whose result has CRC-32 ``checksum``.

    For a delta, ``base_checksum`` is the checksum of the image the delta applies to and
    the station refuses at once (STALE_DELTA_BASE) when the key holds another one; for a
    full write it is 0."""

    TYPE: ClassVar[MessageType] = MessageType.WRITE_BEGIN
    mode: WriteMode
    length: int
    checksum: int
    base_checksum: int = 0

    def encode_payload(self) -> bytes:
        return (
            Writer()
            .u8(WriteMode(self.mode), "mode")
            .u32(self.length, "length")
            .u32(self.checksum, "checksum")
            .u32(self.base_checksum, "base_checksum")
            .getvalue()
        )

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        mode = _enum(WriteMode, r.u8("mode"), "mode")
        msg = cls(mode, r.u32("length"), r.u32("checksum"), r.u32("base_checksum"))
        _check(msg.length > 0, "length", "must be at least 1")
        r.end()
        return msg


@dataclass(frozen=True, slots=True)
class WriteChunk(Message):
    """Stage ``data`` at ``offset`` of the announced write. Chunks may arrive in any order
    and a repeated chunk is harmless."""

    TYPE: ClassVar[MessageType] = MessageType.WRITE_CHUNK
    offset: int
    data: bytes

    def encode_payload(self) -> bytes:
        if not self.data:
            raise ValueError("data: a chunk carries at least one byte")
        return Writer().u32(self.offset, "offset").raw(self.data).getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        offset = r.u32("offset")
        data = r.rest()
        _check(bool(data), "data", "a chunk carries at least one byte")
        return cls(offset, data)


@dataclass(frozen=True, slots=True)
class WriteCommit(Message):
    """Apply the staged write atomically if its result has CRC-32 ``checksum``."""

    TYPE: ClassVar[MessageType] = MessageType.WRITE_COMMIT
    checksum: int

    def encode_payload(self) -> bytes:
        return Writer().u32(self.checksum, "checksum").getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(r.u32("checksum"))
        r.end()
        return msg


@dataclass(frozen=True, slots=True)
class WriteAbort(Message):
    """Discard a staged write (the key keeps its image)."""

    TYPE: ClassVar[MessageType] = MessageType.WRITE_ABORT


@dataclass(frozen=True, slots=True)
class ReadAudit(Message):
    """Read up to ``max_records`` audit records starting at trail position ``index``."""

    TYPE: ClassVar[MessageType] = MessageType.READ_AUDIT
    index: int
    max_records: int

    def encode_payload(self) -> bytes:
        if self.max_records < 1:
            raise ValueError("max_records: must be at least 1")
        return Writer().u16(self.index, "index").u8(self.max_records, "max_records").getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(r.u16("index"), r.u8("max_records"))
        _check(msg.max_records >= 1, "max_records", "must be at least 1")
        r.end()
        return msg


@dataclass(frozen=True, slots=True)
class ClearAudit(Message):
    """Erase the first ``count`` records of the trail, the ones the host read; ``digest`` is
    :func:`audit_digest` of them. The station erases nothing when its first ``count`` records
    are not those (ERROR ``AUDIT_CHANGED``)."""

    TYPE: ClassVar[MessageType] = MessageType.CLEAR_AUDIT
    count: int
    digest: int

    def encode_payload(self) -> bytes:
        return Writer().u16(self.count, "count").u32(self.digest, "digest").getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(r.u16("count"), r.u32("digest"))
        r.end()
        return msg


# --------------------------------------------------------------------------- notifications


@dataclass(frozen=True, slots=True)
class KeyInsertedNotice(Message):
    """A key was inserted (station to host, answered by ACK)."""

    TYPE: ClassVar[MessageType] = MessageType.KEY_INSERTED
    serial: str

    def encode_payload(self) -> bytes:
        return Writer().text(self.serial, "serial", min_len=1, max_len=MAX_SERIAL).getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(r.text("serial", min_len=1, max_len=MAX_SERIAL))
        r.end()
        return msg


@dataclass(frozen=True, slots=True)
class KeyRemovedNotice(Message):
    """A key was removed (station to host, answered by ACK)."""

    TYPE: ClassVar[MessageType] = MessageType.KEY_REMOVED
    serial: str

    def encode_payload(self) -> bytes:
        return Writer().text(self.serial, "serial", min_len=1, max_len=MAX_SERIAL).getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(r.text("serial", min_len=1, max_len=MAX_SERIAL))
        r.end()
        return msg


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class Ack(Message):
    """Positive answer to a request that returns no data, or the host's receipt of a
    notification."""

    TYPE: ClassVar[MessageType] = MessageType.ACK


@dataclass(frozen=True, slots=True)
class HelloReply(Message):
    """The station's identity, limits and the key that is in it now ("" for none)."""

    TYPE: ClassVar[MessageType] = MessageType.HELLO_REPLY
    version: int
    mounting: Mounting
    capabilities: int
    max_access_entries: int
    max_payload: int
    window: int
    station_id: str
    firmware: str
    key_serial: str

    def encode_payload(self) -> bytes:
        if not MIN_PAYLOAD <= self.max_payload <= MAX_PAYLOAD_LIMIT:
            raise ValueError(f"max_payload: must be {MIN_PAYLOAD}..{MAX_PAYLOAD_LIMIT}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window: must be 1..{MAX_WINDOW}")
        if self.capabilities & ~int(Capability(0xF)):
            raise ValueError("capabilities: unknown bits set")
        return (
            Writer()
            .u8(self.version, "version")
            .u8(Mounting(self.mounting), "mounting")
            .u8(self.capabilities, "capabilities")
            .u16(self.max_access_entries, "max_access_entries")
            .u16(self.max_payload, "max_payload")
            .u8(self.window, "window")
            .text(self.station_id, "station_id", min_len=1, max_len=MAX_SERIAL)
            .text(self.firmware, "firmware", max_len=MAX_SERIAL)
            .text(self.key_serial, "key_serial", max_len=MAX_SERIAL)
            .getvalue()
        )

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        version = r.u8("version")
        mounting = _enum(Mounting, r.u8("mounting"), "mounting")
        caps = r.u8("capabilities")
        _check(not caps & ~0xF, "capabilities", f"unknown bits in {caps:#04x}")
        max_entries = r.u16("max_access_entries")
        max_payload = r.u16("max_payload")
        _check(
            MIN_PAYLOAD <= max_payload <= MAX_PAYLOAD_LIMIT,
            "max_payload",
            f"{max_payload} is outside {MIN_PAYLOAD}..{MAX_PAYLOAD_LIMIT}",
        )
        window = r.u8("window")
        _check(1 <= window <= MAX_WINDOW, "window", f"{window} is outside 1..{MAX_WINDOW}")
        msg = cls(
            version,
            mounting,
            caps,
            max_entries,
            max_payload,
            window,
            r.text("station_id", min_len=1, max_len=MAX_SERIAL),
            r.text("firmware", max_len=MAX_SERIAL),
            r.text("key_serial", max_len=MAX_SERIAL),
        )
        r.end()
        return msg


@dataclass(frozen=True, slots=True)
class KeyInfoReply(Message):
    """The inserted key: serial, image revision, CRC-32 and length of its canonical image,
    number of audit records it holds."""

    TYPE: ClassVar[MessageType] = MessageType.KEY_INFO_REPLY
    serial: str
    revision: bytes
    checksum: int
    length: int
    audit_records: int

    def encode_payload(self) -> bytes:
        if len(self.revision) != REVISION_SIZE:
            raise ValueError(f"revision: must be {REVISION_SIZE} bytes")
        return (
            Writer()
            .text(self.serial, "serial", min_len=1, max_len=MAX_SERIAL)
            .raw(self.revision)
            .u32(self.checksum, "checksum")
            .u32(self.length, "length")
            .u16(self.audit_records, "audit_records")
            .getvalue()
        )

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(
            r.text("serial", min_len=1, max_len=MAX_SERIAL),
            r.raw(REVISION_SIZE, "revision"),
            r.u32("checksum"),
            r.u32("length"),
            r.u16("audit_records"),
        )
        _check(msg.length > 0, "length", "an image is at least 1 byte")
        r.end()
        return msg


@dataclass(frozen=True, slots=True)
class KeyData(Message):
    """A slice of the key's canonical image; ``checksum`` and ``total`` describe the whole
    image so the host notices when it changed between slices."""

    TYPE: ClassVar[MessageType] = MessageType.KEY_DATA
    checksum: int
    total: int
    offset: int
    data: bytes

    def encode_payload(self) -> bytes:
        return (
            Writer()
            .u32(self.checksum, "checksum")
            .u32(self.total, "total")
            .u32(self.offset, "offset")
            .raw(self.data)
            .getvalue()
        )

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(r.u32("checksum"), r.u32("total"), r.u32("offset"), r.rest())
        _check(msg.offset + len(msg.data) <= msg.total, "data", "extends beyond total")
        return msg


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record as it travels (times in unix seconds, codes from :mod:`codes`)."""

    sequence: int
    at: int
    cylinder: int
    outcome: AuditOutcomeCode
    reason: AuditReason
    source: AuditSource
    blacklist_version: int
    key_serial: str

    def encode(self, w: Writer, field: str) -> None:
        (
            w.u32(self.sequence, f"{field}.sequence")
            .u32(self.at, f"{field}.at")
            .u32(self.cylinder, f"{field}.cylinder")
            .u8(AuditOutcomeCode(self.outcome), f"{field}.outcome")
            .u8(AuditReason(self.reason), f"{field}.reason")
            .u8(AuditSource(self.source), f"{field}.source")
            .u32(self.blacklist_version, f"{field}.blacklist_version")
            .text(self.key_serial, f"{field}.key_serial", min_len=1, max_len=MAX_SERIAL)
        )

    @classmethod
    def decode(cls, r: Reader, field: str) -> AuditEntry:
        return cls(
            r.u32(f"{field}.sequence"),
            r.u32(f"{field}.at"),
            r.u32(f"{field}.cylinder"),
            _enum(AuditOutcomeCode, r.u8(f"{field}.outcome"), f"{field}.outcome"),
            _enum(AuditReason, r.u8(f"{field}.reason"), f"{field}.reason"),
            _enum(AuditSource, r.u8(f"{field}.source"), f"{field}.source"),
            r.u32(f"{field}.blacklist_version"),
            r.text(f"{field}.key_serial", min_len=1, max_len=MAX_SERIAL),
        )

    @staticmethod
    def size(serial: str) -> int:
        return 19 + 1 + len(serial)


def audit_digest(entries: typing.Iterable[AuditEntry]) -> int:
    """CRC-32 of the records' encodings as AUDIT_DATA carries them, oldest first: what
    CLEAR_AUDIT names the records to erase by."""
    w = Writer()
    for i, entry in enumerate(entries):
        entry.encode(w, f"records[{i}]")
    return zlib.crc32(w.getvalue())


@dataclass(frozen=True, slots=True)
class AuditData(Message):
    """Records ``index .. index+len(records)-1`` of a trail of ``total`` records."""

    TYPE: ClassVar[MessageType] = MessageType.AUDIT_DATA
    total: int
    index: int
    records: tuple[AuditEntry, ...]

    def encode_payload(self) -> bytes:
        w = Writer().u16(self.total, "total").u16(self.index, "index")
        w.u8(len(self.records), "count")
        for i, rec in enumerate(self.records):
            rec.encode(w, f"records[{i}]")
        return w.getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        total, index, count = r.u16("total"), r.u16("index"), r.u8("count")
        _check(index + count <= total, "count", f"{index}+{count} exceeds total {total}")
        records = tuple(AuditEntry.decode(r, f"records[{i}]") for i in range(count))
        r.end()
        return cls(total, index, records)


@dataclass(frozen=True, slots=True)
class AuditCleared(Message):
    """How many records CLEAR_AUDIT erased and how many remain."""

    TYPE: ClassVar[MessageType] = MessageType.AUDIT_CLEARED
    erased: int
    remaining: int

    def encode_payload(self) -> bytes:
        return Writer().u16(self.erased, "erased").u16(self.remaining, "remaining").getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        msg = cls(r.u16("erased"), r.u16("remaining"))
        r.end()
        return msg


@dataclass(frozen=True, slots=True)
class Nak(Message):
    """The frame with this SEQ arrived damaged: send it again."""

    TYPE: ClassVar[MessageType] = MessageType.NAK
    code: ErrorCode

    def encode_payload(self) -> bytes:
        if self.code not in NAK_CODES:
            raise ValueError(f"code: {self.code!r} is not a NAK code")
        return Writer().u8(self.code, "code").getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        code = _enum(ErrorCode, r.u8("code"), "code")
        _check(code in NAK_CODES, "code", f"{code.name} is not a NAK code")
        r.end()
        return cls(code)


@dataclass(frozen=True, slots=True)
class ErrorReply(Message):
    """The request with this SEQ was refused; ``detail`` names the field or capability."""

    TYPE: ClassVar[MessageType] = MessageType.ERROR
    code: ErrorCode
    detail: str = ""

    def encode_payload(self) -> bytes:
        if self.code in NAK_CODES:
            raise ValueError(f"code: {self.code!r} travels in NAK, not ERROR")
        return Writer().u8(ErrorCode(self.code), "code").text(self.detail, "detail").getvalue()

    @classmethod
    def decode_payload(cls, payload: bytes) -> Self:
        r = Reader(payload)
        code = _enum(ErrorCode, r.u8("code"), "code")
        _check(code not in NAK_CODES, "code", f"{code.name} travels in NAK, not ERROR")
        msg = cls(code, r.text("detail"))
        r.end()
        return msg


# --------------------------------------------------------------------------- registry

MESSAGE_CLASSES: dict[MessageType, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        KeyInfo,
        ReadKey,
        WriteBegin,
        WriteChunk,
        WriteCommit,
        WriteAbort,
        ReadAudit,
        ClearAudit,
        KeyInsertedNotice,
        KeyRemovedNotice,
        Ack,
        HelloReply,
        KeyInfoReply,
        KeyData,
        AuditData,
        AuditCleared,
        Nak,
        ErrorReply,
    )
}


def encode_message(seq: int, message: Message) -> bytes:
    """The frame bytes of ``message`` with sequence number ``seq``."""
    return encode_frame(seq, message.TYPE, message.encode_payload())


def decode_message(frame: Frame) -> Message:
    """Decode an intact frame's payload; raises :class:`DecodeError` naming the field."""
    try:
        mtype = MessageType(frame.type)
    except ValueError:
        raise DecodeError("type", f"unknown message type {frame.type:#04x}") from None
    return MESSAGE_CLASSES[mtype].decode_payload(frame.payload)


# --------------------------------------------------------------------------- JSON form


def _to_json(value: Any) -> Any:
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def message_to_dict(message: Message) -> dict[str, Any]:
    """A JSON-able form: ``{"type": NAME, field: value, ...}`` with enums by name and bytes
    as hex (used by the golden vectors of the specification)."""
    return {"type": message.TYPE.name, **_to_json(message)}


def _from_json(hint: Any, value: Any, field: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item_hint, _) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ValueError(f"{field}: must be a list")
        return tuple(_from_json(item_hint, v, f"{field}[{i}]") for i, v in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        if isinstance(value, str):
            try:
                return hint[value]
            except KeyError:
                raise ValueError(f"{field}: {value!r} is not a {hint.__name__}") from None
        return hint(value)
    if hint is bytes:
        return bytes.fromhex(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, field)
    return value


def _build(cls: type[Any], data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _from_json(hints[f.name], data[f.name], f"{prefix}{f.name}")
    return cls(**kwargs)


def message_from_dict(data: dict[str, Any]) -> Message:
    """Inverse of :func:`message_to_dict`."""
    try:
        cls = MESSAGE_CLASSES[MessageType[data["type"]]]
    except KeyError:
        raise ValueError(f"type: unknown message type {data.get('type')!r}") from None
    fields = {k: v for k, v in data.items() if k != "type"}
    message: Message = _build(cls, fields, "")
    return message
