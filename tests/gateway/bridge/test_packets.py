"""The quick PUBLISH and PUBACK decoders against paho-mqtt's own, and on a live session."""

from __future__ import annotations

import asyncio
import struct
import uuid
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.bridge import packets
from gateway.bridge.client import (
    BrokerSession,
    ConnectOptions,
    LastWill,
    OutboundMessage,
    _paho,
)
from gateway.demo.broker import PrivateMosquitto

V5 = MQTTProtocolVersion.MQTTv5

# MQTT forbids U+0000 and U+FEFF in its strings: paho-mqtt refuses them on receipt.
mqtt_text = st.characters(blacklist_characters="\x00\ufeff", blacklist_categories=("Cs",))
text = st.text(mqtt_text, max_size=40) | st.text(mqtt_text, min_size=120, max_size=140)
any_text = st.text(max_size=40)
COMMON = {
    "PayloadFormatIndicator": st.integers(0, 1),
    "MessageExpiryInterval": st.integers(0, 2**32 - 1),
    "ContentType": text,
    "ResponseTopic": text,
    "CorrelationData": st.binary(max_size=40),
}
OTHER = {
    "ContentType": any_text,
    "UserProperty": st.tuples(text, text),
    "TopicAlias": st.integers(1, 65535),
    "SubscriptionIdentifier": st.integers(1, 268435455),
}


def properties_of(values: list[tuple[str, Any]]) -> bytes:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values:
        setattr(props, name, value)
    packed: bytes = props.pack()  # type: ignore[no-untyped-call]
    return packed


def publish_packet(topic: bytes, mid: int | None, props: bytes, payload: bytes) -> bytearray:
    body = struct.pack("!H", len(topic)) + topic
    if mid is not None:
        body += struct.pack("!H", mid)
    return bytearray(body + props + payload)


@st.composite
def publishes(draw: st.DrawFn, names: dict[str, st.SearchStrategy[Any]]) -> tuple[int, bytearray]:
    qos = draw(st.integers(0, 2))
    header = 0x30 | draw(st.integers(0, 1)) << 3 | qos << 1 | draw(st.integers(0, 1))
    topic = draw(st.text(min_size=1, max_size=30)).encode()
    chosen = draw(st.lists(st.sampled_from(sorted(names)), max_size=5, unique=True))
    props = properties_of([(name, draw(names[name])) for name in chosen])
    mid = draw(st.integers(1, 65535)) if qos else None
    return header, publish_packet(topic, mid, props, draw(st.binary(max_size=60)))


def same_publish(quick: packets.Publish, header: int, packet: bytearray) -> None:
    reference = _packet.decode_publish(header, bytearray(packet), V5)
    assert reference.properties is not None
    assert (quick.dup, quick.qos, quick.retain, quick.topic, quick.mid, quick.payload) == (
        reference.dup,
        reference.qos,
        reference.retain,
        reference.topic,
        reference.mid,
        reference.payload,
    )
    assert type(quick.payload) is type(reference.payload)
    assert quick.properties.json() == reference.properties.json()  # type: ignore[no-untyped-call]
    assert quick.properties.pack() == reference.properties.pack()  # type: ignore[no-untyped-call]


@given(publishes(COMMON))
def test_a_common_publish_decodes_quickly_as_paho_decodes_it(
    publish: tuple[int, bytearray],
) -> None:
    header, packet = publish
    quick = packets.decode_publish(header, packet)
    if (header >> 1) & 3 == 2:
        assert quick is None, "QoS 2 is left to paho-mqtt"
        return
    assert quick is not None
    same_publish(quick, header, packet)


@given(publishes({**COMMON, **OTHER}), st.data())
def test_any_other_publish_is_left_to_paho_or_decoded_as_paho_decodes_it(
    publish: tuple[int, bytearray], data: st.DataObject
) -> None:
    header, packet = publish
    damage = data.draw(st.sampled_from(["none", "cut", "byte", "duplicate"]))
    if damage == "cut" and packet:
        del packet[data.draw(st.integers(0, len(packet) - 1)) :]
    elif damage == "byte" and packet:
        packet[data.draw(st.integers(0, len(packet) - 1))] = data.draw(st.integers(0, 255))
    elif damage == "duplicate":
        # the same property twice within the Property Length
        at = 2 + (packet[0] << 8 | packet[1]) + (2 if (header >> 1) & 3 else 0)
        if at < len(packet) and packet[at] < 100:
            twice = data.draw(st.sampled_from([b"\x09\x00\x01x", b"\x01\x01", b"\x08\x00\x01t"]))
            packet[at] += 2 * len(twice)
            packet[at + 1 : at + 1] = twice + twice
    quick = packets.decode_publish(header, packet)
    if quick is None:
        return
    same_publish(quick, header, packet)  # paho-mqtt accepts it and agrees


@given(publishes(COMMON))
def test_a_received_message_is_the_one_paho_would_hand_over(publish: tuple[int, bytearray]) -> None:
    header, packet = publish
    decoded = packets.decode_publish(header, packet)
    if decoded is None:
        return
    reference = paho.MQTTMessage(mid=decoded.mid, topic=decoded.topic)
    reference.dup, reference.qos, reference.retain = decoded.dup, decoded.qos, decoded.retain
    reference.properties, reference.payload = decoded.properties, decoded.payload
    made = packets.received_message(decoded)
    for slot in paho.MQTTMessage.__slots__:
        if slot not in ("timestamp", "info"):
            assert getattr(made, slot) == getattr(reference, slot), slot
    assert made.topic == reference.topic
    assert isinstance(made.info, paho.MQTTMessageInfo)
    assert abs(made.timestamp - paho.time_func()) < 5


@pytest.mark.parametrize("forbidden", ["\x00", "\ufeff"])
def test_a_string_with_a_character_mqtt_forbids_is_left_to_paho(forbidden: str) -> None:
    packet = publish_packet(b"t", 7, properties_of([("ResponseTopic", f"a{forbidden}b")]), b"")
    assert packets.decode_publish(0x32, packet) is None
    with pytest.raises(MalformedPacket, match=r"MQTT-1\.5\.4"):
        _packet.decode_publish(0x32, packet, V5)


@example(b"\x12\x34\x10")
@example(b"\x12\x34")
@example(b"\x12\x34\x10\x00")
@given(
    st.binary(max_size=6)
    | st.builds(
        lambda mid, code: mid + bytes([code]),
        st.binary(min_size=2, max_size=2),
        st.sampled_from([0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99])
        | st.integers(0, 255),
    )
)
def test_a_puback_decodes_quickly_as_paho_decodes_it(packet: bytes) -> None:
    quick = packets.decode_puback(bytearray(packet))
    try:
        reference = _packet.decode_puback(0x40, bytearray(packet), V5)
    except MalformedPacket:
        assert quick is None
        return
    if len(packet) == 2 or (len(packet) == 3 and quick is not None):
        assert quick is not None
    if quick is None:
        return
    mid, reason = quick
    assert mid == reference.mid
    assert reason == reference.reason and reason.getName() == reference.reason.getName()
    assert reference.properties.isEmpty()  # type: ignore[no-untyped-call]


def test_install_refuses_a_client_it_does_not_fit() -> None:
    with pytest.raises(RuntimeError, match="lacks _in_packet"):
        packets.install(object())  # type: ignore[arg-type]


async def test_a_session_receives_every_form_of_request_and_its_publications_are_acknowledged(
    broker: PrivateMosquitto,
) -> None:
    """Requests in the quick form and in forms left to paho-mqtt (a user property, QoS 2)
    arrive whole through a real broker; the session's own publications are acknowledged both
    with a plain PUBACK and with 'no matching subscribers'."""
    topic = f"p{uuid.uuid4().hex[:8]}"
    options = ConnectOptions(host=broker.host, port=broker.port, client_id=f"s-{topic}")
    quick = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    quick.ResponseTopic = f"{topic}/reply"
    quick.CorrelationData = b"\x00\x01"
    quick.ContentType = "application/json"
    other = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    other.ResponseTopic = f"{topic}/reply"
    other.CorrelationData = b"\x02"
    other.UserProperty = ("k", "v")
    sent = [(b"quick", 1, quick), (b"other", 1, other), (b"twice", 2, quick), (b"zero", 0, None)]
    async with BrokerSession(options, will=LastWill(f"{topic}/will", b"gone")) as session:
        handlers = vars(_paho(session._mqtt))  # type: ignore[arg-type]
        assert "install" in handlers["_handle_publish"].__qualname__
        assert "install" in handlers["_handle_pubackcomp"].__qualname__
        await session.subscribe([f"{topic}/in"], qos=2)
        async with aiomqtt.Client(
            broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as out:
            for payload, qos, props in sent:
                await out.publish(f"{topic}/in", payload, qos=qos, properties=props)
            got = []
            while len(got) < len(sent):
                got += await asyncio.wait_for(session.buffer.take(10), 5)
            await out.subscribe(f"{topic}/heard", qos=1)
            await session.publish_many(
                [
                    OutboundMessage(f"{topic}/heard", b"1", 1, False, b"c"),
                    OutboundMessage(f"{topic}/nobody", b"2", 1, False, None),
                ]
            )
    by_payload = {m.payload: m for m in got}
    assert sorted(by_payload) == sorted(p for p, _, _ in sent)
    assert by_payload[b"quick"].correlation_data == b"\x00\x01"
    assert by_payload[b"other"].correlation_data == b"\x02"
    assert by_payload[b"twice"].qos == 2
    assert {by_payload[p].response_topic for p in (b"quick", b"other", b"twice")} == {
        f"{topic}/reply"
    }
    assert by_payload[b"zero"].qos == 0 and by_payload[b"zero"].response_topic is None
