"""Serial key-station protocol: a binary, CRC-checked, windowed request/response protocol
between the gateway and a programming station for offline keys, and the
:class:`SerialKeyStation` driver that speaks it.

Layers (each usable on its own): :mod:`~drivers.serialstation.frames` (framing codec),
:mod:`~drivers.serialstation.messages` (message payloads),
:mod:`~drivers.serialstation.image` (key-image encoding, checksum, deltas),
:mod:`~drivers.serialstation.link` (sequence numbers, ACK/NAK, retransmission),
:mod:`~drivers.serialstation.transport` (non-blocking port I/O) and
:mod:`~drivers.serialstation.driver`. The specification is ``docs/protocols/key-station.md``.
"""

from __future__ import annotations

from drivers.serialstation.codes import (
    PROTOCOL_VERSION,
    AuditOutcomeCode,
    AuditReason,
    AuditSource,
    Capability,
    ErrorCode,
    MessageType,
    Mounting,
    WriteMode,
)
from drivers.serialstation.driver import SerialKeyStation
from drivers.serialstation.frames import (
    MAX_PAYLOAD_LIMIT,
    OVERHEAD,
    Frame,
    FrameDecoder,
    FrameError,
    FrameErrorKind,
    encode_frame,
)
from drivers.serialstation.image import (
    ImageDelta,
    apply_delta,
    canonical,
    decode_delta,
    decode_image,
    diff,
    encode_image,
    image_checksum,
)
from drivers.serialstation.link import HostLink, LinkStats, StationRefused, wire_seconds
from drivers.serialstation.messages import (
    MESSAGE_CLASSES,
    Message,
    decode_message,
    encode_message,
    message_from_dict,
    message_to_dict,
)
from drivers.serialstation.wire import DecodeError

__all__ = [
    "MAX_PAYLOAD_LIMIT",
    "MESSAGE_CLASSES",
    "OVERHEAD",
    "PROTOCOL_VERSION",
    "AuditOutcomeCode",
    "AuditReason",
    "AuditSource",
    "Capability",
    "DecodeError",
    "ErrorCode",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "FrameErrorKind",
    "HostLink",
    "ImageDelta",
    "LinkStats",
    "Message",
    "MessageType",
    "Mounting",
    "SerialKeyStation",
    "StationRefused",
    "WriteMode",
    "apply_delta",
    "canonical",
    "decode_delta",
    "decode_image",
    "decode_message",
    "diff",
    "encode_frame",
    "encode_image",
    "encode_message",
    "image_checksum",
    "message_from_dict",
    "message_to_dict",
    "wire_seconds",
]
