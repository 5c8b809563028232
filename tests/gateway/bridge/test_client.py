"""The broker session on the private broker: manual acknowledgement in arrival order,
redelivery, flow control by Receive Maximum, the persistent session, ordered publishing."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.bridge.client import (
    BrokerSession,
    ConnectionLost,
    ConnectOptions,
    InboundBuffer,
    InboundMessage,
    LastWill,
    OutboundMessage,
    SessionRecycled,
    _correlated,
)
from gateway.demo.broker import PrivateMosquitto, free_port
from tests.gateway.bridge.harness import poll_until


def message(topic: str, order: int) -> InboundMessage:
    return InboundMessage(topic, b"{}", 1, False, None, None, order + 1, 1, order)


async def test_the_buffer_hands_out_urgent_messages_first_in_arrival_order() -> None:
    buffer = InboundBuffer(100, lambda t: t.startswith("urgent"))
    for i, topic in enumerate(["a", "urgent/1", "b", "urgent/2", "c"]):
        buffer.put(message(topic, i))
    assert [m.topic for m in await buffer.take(3)] == ["urgent/1", "urgent/2", "a"]
    assert [m.topic for m in await buffer.take(10)] == ["b", "c"]
    waiter = asyncio.ensure_future(buffer.take(1))
    await asyncio.sleep(0)
    assert not waiter.done()
    buffer.put(message("d", 9))
    assert [m.topic for m in await waiter] == ["d"]


def qos0(topic: str, order: int) -> InboundMessage:
    return InboundMessage(topic, b"{}", 0, False, None, None, 0, 1, order)


async def test_the_buffer_refuses_qos0_at_its_limit() -> None:
    buffer = InboundBuffer(10, lambda t: False)
    assert all(buffer.put(message("t", i)) for i in range(10))
    assert not buffer.put(qos0("t", 10)), "QoS 0 is not flow controlled: dropped when full"
    assert buffer.put(message("t", 11)), "QoS 1 is bounded by the session"
    assert len(buffer) == 11 and buffer.high_water == 11
    await buffer.take(5)
    assert buffer.put(qos0("t", 21))
    with pytest.raises(ValueError, match="limit"):
        InboundBuffer(0, lambda t: False)


def options(broker: PrivateMosquitto, client_id: str, **kw: int) -> ConnectOptions:
    return ConnectOptions(
        host=broker.host, port=broker.port, client_id=client_id, session_expiry_s=600, **kw
    )


@contextlib.asynccontextmanager
async def session_of(
    broker: PrivateMosquitto, client_id: str, topic: str, **kw: int
) -> AsyncIterator[BrokerSession]:
    will = LastWill(f"{topic}/will", b"gone")
    async with BrokerSession(options(broker, client_id, **kw), will=will) as session:
        await session.subscribe([f"{topic}/in/#"])
        yield session


@contextlib.asynccontextmanager
async def sender(broker: PrivateMosquitto) -> AsyncIterator[aiomqtt.Client]:
    client = aiomqtt.Client(
        broker.host, broker.port, protocol=aiomqtt.ProtocolVersion.V5, max_inflight_messages=50
    )
    client.pending_calls_threshold = 1 << 30
    async with client:
        yield client


async def test_unacknowledged_messages_are_redelivered_and_acks_follow_arrival_order(
    broker: PrivateMosquitto,
) -> None:
    topic = f"c{uuid.uuid4().hex[:8]}"
    cid = f"s-{topic}"
    async with session_of(broker, cid, topic) as first:
        assert not first.session_present
        async with sender(broker) as out:
            for i in range(3):
                await out.publish(f"{topic}/in/x", f"{i}".encode(), qos=1)
        got = await first.buffer.take(3)
        assert [m.payload for m in got] == [b"0", b"1", b"2"]
        first.ack(got[2])  # held back: 0 and 1 are not acknowledged yet
        assert first.unacknowledged == 3
        first.ack(got[0])
        assert first.unacknowledged == 2
    async with session_of(broker, cid, topic) as second:
        assert second.session_present
        await poll_until(lambda: len(second.buffer) >= 2)
        again = await second.buffer.take(10)
        assert sorted(m.payload for m in again) == [b"1", b"2"]
        for m in again:
            second.ack(m)
        second.ack(got[1])  # a message of an earlier session: ignored
        assert second.unacknowledged == 0
    async with session_of(broker, cid, topic) as third:
        await asyncio.sleep(0.3)
        assert len(third.buffer) == 0


async def test_receive_maximum_bounds_the_buffer_and_nothing_is_lost(
    broker: PrivateMosquitto,
) -> None:
    topic = f"c{uuid.uuid4().hex[:8]}"
    async with session_of(broker, f"s-{topic}", topic, max_pending=20) as session:
        async with sender(broker) as out:
            await asyncio.gather(
                *(out.publish(f"{topic}/in/x", str(i).encode(), qos=1) for i in range(400))
            )
        await poll_until(lambda: len(session.buffer) == 20)
        await asyncio.sleep(0.3)  # the broker has more, and keeps it until we acknowledge
        assert len(session.buffer) == 20
        received: list[bytes] = []
        while len(received) < 400:
            batch = await asyncio.wait_for(session.buffer.take(7), 10)
            received += [m.payload for m in batch]
            for m in batch:
                session.ack(m)
        assert received == [str(i).encode() for i in range(400)]
        assert session.unacked_high_water == 20
        assert session.unacknowledged == 0


async def test_a_backlog_waiting_at_connect_does_not_hold_back_the_suback(
    broker: PrivateMosquitto,
) -> None:
    """The broker sends a persistent session's backlog before the SUBACK: the session must
    read on (10 x Receive Maximum waiting here)."""
    topic = f"c{uuid.uuid4().hex[:8]}"
    cid = f"s-{topic}"
    async with session_of(broker, cid, topic, max_pending=20):
        pass
    async with sender(broker) as out:
        await asyncio.gather(
            *(out.publish(f"{topic}/in/x", str(i).encode(), qos=1) for i in range(200))
        )
    will = LastWill(f"{topic}/will", b"gone")
    async with BrokerSession(options(broker, cid, max_pending=20), will=will) as session:
        await poll_until(lambda: len(session.buffer) == 20)
        await asyncio.wait_for(session.subscribe([f"{topic}/in/#"]), 10)
        received = 0
        while received < 200:
            batch = await asyncio.wait_for(session.buffer.take(50), 10)
            received += len(batch)
            for m in batch:
                session.ack(m)
        assert session.unacked_high_water == 20


async def test_an_overflowing_session_acknowledges_what_it_took_then_recycles(
    broker: PrivateMosquitto,
) -> None:
    """A broker sending more than the session holds (made certain here by a limit below the
    Receive Maximum): the session takes no more, and once everything taken is acknowledged
    it ends with SessionRecycled; the next session gets the rest."""
    topic = f"c{uuid.uuid4().hex[:8]}"
    cid = f"s-{topic}"
    received: list[bytes] = []
    async with sender(broker) as out:
        async with session_of(broker, cid, topic, max_pending=40) as session:
            session.unacked_limit = 10  # of the 40 the broker may send
            await asyncio.gather(
                *(out.publish(f"{topic}/in/x", str(i).encode(), qos=1) for i in range(40))
            )
            await poll_until(lambda: session.overflowing)
            assert len(session.buffer) == 10
            closed = asyncio.ensure_future(session.wait_closed())
            while len(session.buffer):
                for m in await session.buffer.take(3):
                    received.append(m.payload)
                    session.ack(m)
            with pytest.raises(SessionRecycled):
                await asyncio.wait_for(closed, 10)
        async with session_of(broker, cid, topic) as again:
            while len(received) < 40:
                for m in await asyncio.wait_for(again.buffer.take(40), 10):
                    received.append(m.payload)
                    again.ack(m)
    assert received == [str(i).encode() for i in range(40)]


async def test_publish_many_keeps_the_order(broker: PrivateMosquitto) -> None:
    topic = f"c{uuid.uuid4().hex[:8]}"
    async with sender(broker) as listener:
        await listener.subscribe(f"{topic}/out", qos=1)
        async with session_of(broker, f"s-{topic}", topic) as session:
            await session.publish_many(
                [OutboundMessage(f"{topic}/out", str(i).encode()) for i in range(300)]
            )
        got = await payloads(listener, 300)
    assert got == [str(i).encode() for i in range(300)]


async def payloads(listener: aiomqtt.Client, count: int) -> list[bytes | bytearray]:
    """The payloads of the next ``count`` messages ``listener`` receives, in order."""
    got: list[bytes | bytearray] = []
    async with asyncio.timeout(10):
        async for m in listener.messages:
            assert isinstance(m.payload, bytes | bytearray)
            got.append(m.payload)
            if len(got) == count:
                break
    return got


class SmallWindowMosquitto(PrivateMosquitto):
    """A broker whose CONNACK announces a Receive Maximum of 7."""

    def _write_config(self) -> None:
        super()._write_config()
        text = self.config_path.read_text()
        self.config_path.write_text(
            text.replace("max_inflight_messages 100", "max_inflight_messages 7")
        )


async def test_concurrent_publishers_take_turns_within_the_brokers_receive_maximum() -> None:
    small = SmallWindowMosquitto()
    small.start()
    try:
        topic = f"c{uuid.uuid4().hex[:8]}"
        async with sender(small) as listener:
            await listener.subscribe(f"{topic}/out", qos=1)
            async with session_of(small, f"s-{topic}", topic) as session:
                assert session.send_window == 7
                first = [OutboundMessage(f"{topic}/out", f"a{i}".encode()) for i in range(120)]
                second = [OutboundMessage(f"{topic}/out", f"b{i}".encode()) for i in range(120)]
                await asyncio.gather(session.publish_many(first), session.publish_many(second))
                assert session.in_flight_peak == 7
            got = await payloads(listener, 240)
        assert got == [m.payload for m in first + second]
    finally:
        small.stop()


@given(st.binary(max_size=300))
def test_a_responses_properties_pack_as_paho_builds_them(correlation_data: bytes) -> None:
    reference = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    reference.CorrelationData = correlation_data
    made = _correlated(correlation_data)
    assert made.pack() == reference.pack()  # type: ignore[no-untyped-call]
    assert made.CorrelationData == correlation_data
    assert _correlated(b"other").pack() != made.pack() or correlation_data == b"other"
    assert Properties(PacketTypes.PUBLISH).pack() == b"\x00"  # type: ignore[no-untyped-call]


async def test_connecting_to_nothing_raises_connection_lost() -> None:
    opts = ConnectOptions(host="127.0.0.1", port=free_port(), client_id="nobody")
    with pytest.raises(ConnectionLost, match="cannot connect"):
        async with BrokerSession(opts, will=LastWill("x/will", b"")):
            pass


async def test_a_broker_going_away_ends_the_session(broker: PrivateMosquitto) -> None:
    topic = f"c{uuid.uuid4().hex[:8]}"
    async with session_of(broker, f"s-{topic}", topic) as session:
        waiter = asyncio.ensure_future(session.wait_closed())
        await asyncio.sleep(0.1)
        assert not waiter.done()
        broker.stop()
        with pytest.raises(ConnectionLost):
            await asyncio.wait_for(waiter, 10)
        with pytest.raises(ConnectionLost):
            await session.publish(OutboundMessage(f"{topic}/out", b"x"))
    broker.start()
