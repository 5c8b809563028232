"""Numbers of the key-station protocol: message types, error codes and field enumerations.

Every number here is part of the wire format documented in ``docs/protocols/key-station.md``;
changing one is a protocol version change.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

PROTOCOL_VERSION = 2
"""The highest protocol version this package speaks (offered first in HELLO)."""
PROTOCOL_VERSIONS = (2, 1)
"""Every version this package speaks, highest first: the host offers them in this order
until the station accepts one (a station answers HELLO with a version it does not speak
with ERROR BAD_VERSION). Version 2 adds the compact delta format (format 2)."""


class MessageType(IntEnum):
    """The TYPE byte of a frame.

    ``0x01..0x3F`` are requests (host to station), ``0x40..0x7F`` notifications (station to
    host), ``0x80..0xFF`` responses. A response carries the SEQ of the request it answers; the
    host answers a notification with an ``ACK`` carrying the notification's SEQ.
    """

    HELLO = 0x01
    KEY_INFO = 0x02
    READ_KEY = 0x03
    WRITE_BEGIN = 0x04
    WRITE_CHUNK = 0x05
    WRITE_COMMIT = 0x06
    WRITE_ABORT = 0x07
    READ_AUDIT = 0x08
    CLEAR_AUDIT = 0x09

    KEY_INSERTED = 0x40
    KEY_REMOVED = 0x41

    ACK = 0x80
    HELLO_REPLY = 0x81
    KEY_INFO_REPLY = 0x82
    KEY_DATA = 0x83
    AUDIT_DATA = 0x88
    AUDIT_CLEARED = 0x89
    NAK = 0xFE
    ERROR = 0xFF

    @property
    def is_request(self) -> bool:
        return self < 0x40

    @property
    def is_notification(self) -> bool:
        return 0x40 <= self < 0x80

    @property
    def is_response(self) -> bool:
        return self >= 0x80


class ErrorCode(IntEnum):
    """Reason codes of ``NAK`` (the frame was not received intact: send it again) and
    ``ERROR`` (the request was received and refused: do not repeat it unchanged)."""

    BAD_CRC = 0x01
    """NAK: the frame's header was intact but its CRC-32 did not match."""
    TRUNCATED = 0x02
    """NAK: the frame's header was intact but the rest did not arrive in time."""
    BAD_LENGTH = 0x10
    """The LEN field exceeds the receiver's maximum frame payload."""
    UNKNOWN_TYPE = 0x11
    """The TYPE byte is not a request this station knows."""
    BAD_PAYLOAD = 0x12
    """The payload does not decode; the detail names the field."""
    BAD_VERSION = 0x13
    """HELLO asked for a protocol version the station does not speak."""
    NO_KEY = 0x20
    """No key is inserted."""
    KEY_REMOVED = 0x21
    """The key was pulled out during the operation; a staged write was discarded."""
    WRONG_KEY = 0x22
    """The image is for another key than the one inserted."""
    NO_WRITE = 0x30
    """WRITE_CHUNK or WRITE_COMMIT without a WRITE_BEGIN (or after it was discarded)."""
    BAD_OFFSET = 0x31
    """A chunk or read lies outside the image."""
    INCOMPLETE = 0x32
    """WRITE_COMMIT before every byte announced in WRITE_BEGIN was staged."""
    CHECKSUM_MISMATCH = 0x33
    """The staged image's CRC-32 differs from the checksum of WRITE_BEGIN / WRITE_COMMIT."""
    STALE_DELTA_BASE = 0x34
    """A delta's base checksum is not the checksum of the image the key holds."""
    BAD_IMAGE = 0x35
    """The staged image or delta does not decode; the detail names the field."""
    CAPACITY_EXCEEDED = 0x36
    """The image has more access entries or bytes than the station or key can hold."""
    UNSUPPORTED = 0x37
    """The request needs a capability the station lacks; the detail names it."""
    AUDIT_RANGE = 0x40
    """READ_AUDIT index beyond the end of the trail."""
    AUDIT_CHANGED = 0x41
    """CLEAR_AUDIT: the trail does not start with the records the host read (fewer than
    ``count`` records, or their digest differs); nothing was erased."""


NAK_CODES = frozenset({ErrorCode.BAD_CRC, ErrorCode.TRUNCATED})
"""Codes that travel in NAK and make the sender retransmit."""


class Capability(IntFlag):
    """Bits of the HELLO_REPLY capabilities byte."""

    DELTA = 0x01
    AUDIT = 0x02
    BLACKLIST = 0x04
    REVALIDATION = 0x08


class Mounting(IntEnum):
    DESK = 0
    WALL = 1


class WriteMode(IntEnum):
    FULL = 0
    DELTA = 1


class AuditOutcomeCode(IntEnum):
    GRANTED = 0
    DENIED = 1
    BLACKLIST_APPLIED = 2


class AuditSource(IntEnum):
    KEY = 0
    CYLINDER = 1


class AuditReason(IntEnum):
    """Why a cylinder refused a key (``NONE`` for grants and blacklist records)."""

    NONE = 0
    NOT_PROGRAMMED = 1
    KEY_DISABLED = 2
    OUTSIDE_VALIDITY = 3
    OUTSIDE_SCHEDULE = 4
    REVALIDATION_LAPSED = 5
    BLACKLISTED = 6
