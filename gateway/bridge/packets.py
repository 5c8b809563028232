"""Quick decoding of the two packets a busy gateway receives most: PUBLISH and PUBACK.

paho-mqtt decodes every packet into general objects: a ``Properties`` instance that builds its
tables of property names and types anew (about 5 µs) and a ``ReasonCode`` for each PUBACK, and
it looks up each property's name by scanning those tables. Under a flood that is a tenth of the
gateway's CPU. :func:`install` puts two handlers on one paho-mqtt client that decode the
common forms directly and hand everything else, unchanged, to paho-mqtt's own handlers:

- a PUBLISH of QoS 0 or 1 on MQTT 5 whose properties are each at most once among Payload
  Format Indicator, Message Expiry Interval, Content Type, Response Topic and Correlation
  Data, with a Property Length below 16 384 bytes;
- a PUBACK on MQTT 5 of two bytes (Success) or three (a reason code valid for PUBACK, no
  properties).

A message decoded here is handed over as paho-mqtt's own handler would hand it
(:func:`received_message`), except that received messages share one ``MQTTMessageInfo``:
paho-mqtt makes one, with a ``threading.Condition``, for every message, and uses it only for
messages it publishes.

The decoders (:func:`decode_publish`, :func:`decode_puback`) return ``None`` for anything
else, including every malformed packet, so paho-mqtt raises its own error for those. What
they return equals what paho-mqtt's decoders return for the same bytes;
``tests/gateway/bridge/test_packets.py`` checks that against paho-mqtt for any packet.

The handlers reach paho-mqtt's private state (the packet being read, its map of messages in
flight, its callbacks), the way its own handlers do; this fits paho-mqtt 2.2 as pinned in
``pyproject.toml``, and :func:`install` refuses a client that lacks any of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

_BYTE, _FOUR_BYTES, _TEXT, _BINARY = 0, 2, 5, 4
_PUBLISH_PROPERTIES: dict[int, tuple[str, int]] = {
    1: ("PayloadFormatIndicator", _BYTE),
    2: ("MessageExpiryInterval", _FOUR_BYTES),
    3: ("ContentType", _TEXT),
    8: ("ResponseTopic", _TEXT),
    9: ("CorrelationData", _BINARY),
}
# Characters MQTT forbids in a UTF-8 string (§1.5.4); paho-mqtt checks each one in a loop.
_FORBIDDEN_IN_TEXT = re.compile("[\x00\ud800-\udfff\ufeff]")

_EMPTY_PUBLISH_PROPERTIES: Properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
# Shared by every quick PUBACK: the on_publish callback receives them and must not change them
# (aiomqtt's ignores both).
_NO_PUBACK_PROPERTIES: Properties = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]
_PUBACK_REASONS: dict[int, ReasonCode] = {
    code: ReasonCode(PacketTypes.PUBACK, identifier=code)
    for code in (0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99)
}


class Publish(NamedTuple):
    """A decoded PUBLISH: the fields of paho-mqtt's own ``PublishPacket``."""

    dup: bool
    qos: int
    retain: bool
    topic: bytes
    mid: int
    properties: Properties
    payload: bytes


def decode_publish(header: int, packet: bytes | bytearray) -> Publish | None:
    """Decode an MQTT 5 PUBLISH (``header`` is its first byte, ``packet`` what follows the
    Remaining Length), or return ``None`` when it is not one of the common forms named in the
    module docstring."""
    qos = (header & 0x06) >> 1
    size = len(packet)
    if qos > 1 or size < 2:
        return None
    end = 2 + ((packet[0] << 8) | packet[1])
    if end == 2:
        return None  # an empty topic needs a topic alias
    mid = 0
    if qos:
        if end + 2 > size:
            return None
        mid = (packet[end] << 8) | packet[end + 1]
        at = end + 2
    else:
        at = end
    if at >= size:
        return None
    length = packet[at]
    at += 1
    if length & 0x80:  # a Variable Byte Integer: two bytes at most here
        if at >= size or packet[at] & 0x80:
            return None
        length = (length & 0x7F) | packet[at] << 7
        at += 1
    stop = at + length
    if stop > size:
        return None
    properties = publish_properties()
    while at < stop:
        known = _PUBLISH_PROPERTIES.get(packet[at])
        if known is None:
            return None
        name, kind = known
        at += 1
        if kind == _BYTE:
            if at + 1 > stop:
                return None
            value: object = packet[at]
            at += 1
        elif kind == _FOUR_BYTES:
            if at + 4 > stop:
                return None
            value = int.from_bytes(packet[at : at + 4], "big")
            at += 4
        else:
            if at + 2 > stop:
                return None
            start = at + 2
            at = start + ((packet[at] << 8) | packet[at + 1])
            if at > stop:
                return None
            if kind == _BINARY:
                value = bytes(packet[start:at])
            else:
                try:
                    text = bytes(packet[start:at]).decode("utf-8")
                except UnicodeDecodeError:
                    return None
                if _FORBIDDEN_IN_TEXT.search(text):
                    return None
                value = text
        if name in properties.__dict__:
            return None
        object.__setattr__(properties, name, value)
    return Publish(
        dup=bool(header & 0x08),
        qos=qos,
        retain=bool(header & 0x01),
        topic=bytes(packet[2:end]),
        mid=mid,
        properties=properties,
        payload=bytes(packet[stop:]),
    )


def decode_puback(packet: bytes | bytearray) -> tuple[int, ReasonCode] | None:
    """Decode an MQTT 5 PUBACK (what follows its fixed header) into its message id and reason
    code, or return ``None`` when it carries properties or is malformed. The reason code is a
    shared instance, one per value."""
    size = len(packet)
    if size == 2:
        return (packet[0] << 8) | packet[1], _PUBACK_REASONS[0]
    if size == 3:
        reason = _PUBACK_REASONS.get(packet[2])
        if reason is not None:
            return (packet[0] << 8) | packet[1], reason
    return None


# paho-mqtt gives every message, received ones too, a ``MQTTMessageInfo`` holding a
# ``threading.Condition``; only a published message's is ever used. Received messages share one.
_RECEIVED_INFO = paho.MQTTMessageInfo(0)


def received_message(publish: Publish) -> paho.MQTTMessage:
    """The message paho-mqtt hands to its on_message callback for ``publish``: the fields its
    own handler sets, received now, in state "invalid" (as paho-mqtt leaves a QoS 0 or 1
    message), with the shared :data:`_RECEIVED_INFO`."""
    message: paho.MQTTMessage = object.__new__(paho.MQTTMessage)
    message.timestamp = paho.time_func()
    message.state = paho.mqtt_ms_invalid
    message.dup = publish.dup
    message.mid = publish.mid
    message._topic = publish.topic
    message.payload = publish.payload
    message.qos = publish.qos
    message.retain = publish.retain
    message.info = _RECEIVED_INFO
    message.properties = publish.properties
    return message


def _printable(topic: bytes) -> str:
    try:
        return topic.decode("utf-8")
    except UnicodeDecodeError:
        return f"TOPIC WITH INVALID UTF-8: {topic!r}"


def publish_properties() -> Properties:
    """Empty properties of a PUBLISH, as ``Properties(PacketTypes.PUBLISH)`` makes them.

    paho-mqtt's constructor builds its tables of property names and types for every instance
    (about 5 µs); this copies an empty instance, sharing the tables, which paho-mqtt only
    reads. Set a property valid for PUBLISH (MQTT 5 §3.3.2.3) with ``object.__setattr__``:
    paho-mqtt's own assignment checks the name against those tables each time."""
    props = Properties.__new__(Properties)
    props.__dict__.update(_EMPTY_PUBLISH_PROPERTIES.__dict__)
    return props


_REQUIRED = (
    "_in_packet",
    "_protocol",
    "_manual_ack",
    "_out_messages",
    "_out_message_mutex",
    "_logger",
    "_handle_publish",
    "_handle_pubackcomp",
    "_handle_on_message",
    "_do_on_publish",
    "_send_puback",
    "_easy_log",
)


def install(client: paho.Client) -> None:
    """Put the quick PUBLISH and PUBACK handlers on ``client`` (an MQTT 5 client). Raise
    ``RuntimeError`` when this paho-mqtt version lacks what they use."""
    missing = [name for name in _REQUIRED if not hasattr(client, name)]
    if missing:
        raise RuntimeError(
            f"this paho-mqtt version lacks {', '.join(missing)}: its packet handlers cannot "
            "be replaced"
        )
    inner: Any = client
    paho_publish: Callable[[], MQTTErrorCode] = inner._handle_publish
    paho_pubackcomp: Callable[[str], MQTTErrorCode] = inner._handle_pubackcomp

    def logs_debug() -> bool:
        logger = inner._logger
        return inner.on_log is not None or (
            logger is not None and logger.isEnabledFor(logging.DEBUG)
        )

    def handle_publish() -> MQTTErrorCode:
        received = inner._in_packet
        result = None
        if inner._protocol == paho.MQTTv5:
            result = decode_publish(received["command"], received["packet"])
        if result is None:
            return paho_publish()
        message = received_message(result)
        if logs_debug():
            inner._easy_log(
                paho.MQTT_LOG_DEBUG,
                "Received PUBLISH (d%d, q%d, r%d, m%d), '%s', properties=%s, ...  (%d bytes)",
                message.dup,
                message.qos,
                message.retain,
                message.mid,
                _printable(result.topic),
                message.properties,
                len(message.payload),
            )
        inner._handle_on_message(message)
        if message.qos == 0 or inner._manual_ack:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        result_code: MQTTErrorCode = inner._send_puback(message.mid)
        return result_code

    def handle_pubackcomp(command: str) -> MQTTErrorCode:
        received = inner._in_packet
        decoded = None
        if command == "PUBACK" and inner._protocol == paho.MQTTv5:
            decoded = decode_puback(received["packet"])
        if decoded is None:
            return paho_pubackcomp(command)
        mid, reason = decoded
        if logs_debug():
            inner._easy_log(paho.MQTT_LOG_DEBUG, "Received PUBACK (Mid: %d)", mid)
        with inner._out_message_mutex:
            if mid in inner._out_messages:
                result_code: MQTTErrorCode = inner._do_on_publish(
                    mid, reason, _NO_PUBACK_PROPERTIES
                )
                return result_code
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    inner._handle_publish = handle_publish
    inner._handle_pubackcomp = handle_pubackcomp


__all__ = [
    "Publish",
    "decode_puback",
    "decode_publish",
    "install",
    "publish_properties",
    "received_message",
]
