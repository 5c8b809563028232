"""The connection to the broker: the only module that knows the MQTT client library.

Everything else in the bridge sees :class:`BrokerSession` (connect, subscribe, take inbound
messages, acknowledge them, publish) and the plain data classes below; swapping the library
means rewriting this module only.

A session is one MQTT v5 connection (client id ``mqtt.client_id``; with the shipped broker
configuration the broker replaces it by the account name, so no other account can take over
the gateway's session). It holds the persistent session (clean start off, a session expiry,
QoS 1 subscriptions) and the last will, and carries everything the gateway publishes.

- **Inbound**: messages are acknowledged (PUBACK) only when :meth:`BrokerSession.ack` is
  called, i.e. after their effect and their response are stored, and always in the order they
  arrived (MQTT 5 §4.6). The Receive Maximum tells the broker to keep at most ``max_pending``
  unacknowledged messages in flight (MQTT 5 §4.9). The socket is always read, so control
  packets (SUBACK, PINGRESP, PUBACKs of the gateway's own publications) are never stuck behind
  a backlog of requests. Brokers do not all keep to the Receive Maximum (Mosquitto 2.0 sends a
  resumed session's backlog faster), so the session bounds memory itself: beyond twice
  ``max_pending`` unacknowledged requests (buffered or taken) it takes no more and leaves them
  unacknowledged, finishes
  and acknowledges what it holds, and then ends with :class:`SessionRecycled`; the broker
  sends the rest again on the next connection. QoS 0 requests, which have no flow control and
  cannot be sent again, are dropped with a warning once ``max_pending`` are buffered.
- **Outbound**: QoS 1 publications, at most :data:`MAX_INFLIGHT_OUT` in flight, fewer when
  the broker's Receive Maximum (CONNACK) is lower. The session keeps that window itself, in
  the order the publications were asked for (paho-mqtt's own window rescans every message in
  flight after each acknowledgement).

When the connection fails the session is lost (:class:`ConnectionLost`); the caller opens a
new one. Unacknowledged requests are then redelivered by the broker. A graceful close first
makes sure the broker has processed every acknowledgement given.

aiomqtt 2.x has no manual acknowledgement and does not report whether the broker kept the
session; the paho-mqtt client it drives has both (``manual_ack_set``/``ack``, the connect
callback). :func:`_paho` is the one place that reaches under aiomqtt to it;
:func:`_pending_publishes` lets :meth:`BrokerSession.publish_many` wait for many PUBACKs at
once through aiomqtt's own on_publish callback. The client decodes the common PUBLISH and
PUBACK packets with :mod:`gateway.bridge.packets`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.bridge import packets

log = logging.getLogger(__name__)

MAX_INFLIGHT_OUT = 100
"""QoS 1 publications in flight at once on the publishing connection."""
REFILL_AT = 0.5
"""A publisher waiting for room in the window resumes when this share of it is free again
(one wake-up for many acknowledgements, not one for each)."""
OPERATION_TIMEOUT_S = 60.0
"""Longest wait for a PUBACK or SUBACK before the session counts as lost."""

TAKEN_OVER = 0x8E
"""MQTT 5 DISCONNECT reason: Session taken over."""
FLUSH_TIMEOUT_S = 2.0
"""Longest wait for queued acknowledgements to be written when a session closes."""

_generations = itertools.count(1)


class ConnectionLost(Exception):
    """The broker could not be reached, refused the connection, or the connection broke."""


class SessionTakenOver(ConnectionLost):
    """The broker ended the session because another connection used the same client id
    (MQTT 5 reason 0x8E): another gateway, or another client, runs as this gateway."""


class SessionRecycled(ConnectionLost):
    """The session ended itself after the broker sent more than the inbound buffer holds:
    everything taken was acknowledged; connect again at once to receive the rest."""


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """Where and how to connect; see :class:`gateway.config.MqttSettings`."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    max_pending: int = 2000

    @property
    def address(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class LastWill:
    """What the broker publishes when the gateway disappears without disconnecting."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message received on the request connection.

    ``response_topic`` and ``correlation_data`` are the MQTT v5 request/response properties
    when the sender set them; ``generation`` identifies the session it arrived on and
    ``order`` its place in the arrival order (acknowledgements follow it)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    response_topic: str | None
    correlation_data: bytes | None
    mid: int
    generation: int
    order: int


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A message to publish; ``correlation_data`` is echoed for MQTT v5 requesters."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    correlation_data: bytes | None = None


def _paho(client: aiomqtt.Client) -> paho.Client:
    """The paho-mqtt client under an aiomqtt client (aiomqtt 2.x keeps it in ``_client``)."""
    inner = getattr(client, "_client", None)
    if not isinstance(inner, paho.Client):
        raise RuntimeError("this aiomqtt version does not expose its paho-mqtt client")
    return inner


class InboundBuffer:
    """Received requests not yet taken, urgent ones (revocations) first.

    ``limit`` is the Receive Maximum the broker was given: a broker that keeps to it never
    makes the buffer hold more. :meth:`put` refuses a QoS 0 message once the buffer holds
    ``limit`` messages; the session bounds QoS 1 and 2 messages itself (it counts those taken
    and not yet acknowledged too: see the module docstring)."""

    def __init__(self, limit: int, urgent: Callable[[str], bool]) -> None:
        if limit < 1:
            raise ValueError(f"limit: at least 1, got {limit}")
        self.limit = limit
        self._urgent = urgent
        self._queues: tuple[collections.deque[InboundMessage], ...] = (
            collections.deque(),
            collections.deque(),
        )
        self._ready = asyncio.Event()
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._queues[0]) + len(self._queues[1])

    def put(self, message: InboundMessage) -> bool:
        """Queue ``message``; False (and nothing queued) when the buffer is over its bound."""
        size = len(self)
        if message.qos == 0 and size >= self.limit:
            return False
        self._queues[0 if self._urgent(message.topic) else 1].append(message)
        self._ready.set()
        self.high_water = max(self.high_water, size + 1)
        return True

    async def take(self, n: int) -> list[InboundMessage]:
        """Wait for at least one message; return up to ``n``, urgent ones first, each in
        arrival order."""
        while not len(self):
            self._ready.clear()
            await self._ready.wait()
        batch: list[InboundMessage] = []
        for queue in self._queues:
            while queue and len(batch) < n:
                batch.append(queue.popleft())
        return batch


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def _correlated(correlation_data: bytes) -> Properties:
    """The properties of a response's PUBLISH: its Correlation Data alone (the packed bytes
    are paho-mqtt's own, ``tests/gateway/bridge/test_client.py``)."""
    props = packets.publish_properties()
    object.__setattr__(props, "CorrelationData", bytes(correlation_data))
    return props


def _reason(code: int) -> ReasonCode:
    return ReasonCode(PacketTypes.DISCONNECT, identifier=code)


def _property(props: Properties | None, name: str) -> Any:
    return getattr(props, name, None) if props is not None else None


class BrokerSession:
    """One session with the broker (two connections, see the module docstring).

    Use as ``async with BrokerSession(...) as session:``; entering connects (raising
    :class:`ConnectionLost` on failure), leaving disconnects gracefully."""

    def __init__(
        self,
        options: ConnectOptions,
        *,
        will: LastWill,
        urgent: Callable[[str], bool] = lambda topic: False,
    ) -> None:
        self.options = options
        self.will = will
        self.generation = next(_generations)
        self.buffer = InboundBuffer(self.receive_maximum, urgent)
        self.session_present = False
        self.dropped = 0
        """QoS 0 requests dropped because the buffer was full."""
        self.unacked_limit = 2 * self.receive_maximum
        """Unacknowledged requests held at most (the bound on memory)."""
        self.unacked_high_water = 0
        self.overflowing = False
        """The broker sent more than :attr:`unacked_limit`: requests are left unacknowledged
        for the next session, which starts once everything taken is acknowledged."""
        self._loop = asyncio.get_running_loop()
        self._stack = contextlib.AsyncExitStack()
        self._order = itertools.count()
        self._unacked: collections.OrderedDict[int, tuple[int, int, bool]] = (
            collections.OrderedDict()
        )
        self._failed: asyncio.Future[None] = self._loop.create_future()
        self._mqtt: aiomqtt.Client | None = None
        self._taken_over = False
        self._watcher: asyncio.Task[None] | None = None
        self.send_window = MAX_INFLIGHT_OUT
        """QoS 1 publications in flight at most: :data:`MAX_INFLIGHT_OUT`, or the broker's
        Receive Maximum when that is lower."""
        self._in_flight = 0
        self.in_flight_peak = 0
        """The most QoS 1 publications that were in flight at once on this session."""
        self._send_turn = asyncio.Lock()
        self._room: asyncio.Future[None] | None = None

    @property
    def receive_maximum(self) -> int:
        """The Receive Maximum sent to the broker: ``max_pending``, within 1..65535."""
        return max(1, min(self.options.max_pending, 65535))

    # ------------------------------------------------------------------ connecting

    def _tls_context(self) -> ssl.SSLContext | None:
        o = self.options
        if not o.tls:
            return None
        context = ssl.create_default_context(cafile=o.ca_file)
        if o.cert_file:
            context.load_cert_chain(o.cert_file, o.key_file)
        return context

    def _client(self, tls: ssl.SSLContext | None) -> aiomqtt.Client:
        o = self.options
        props = _properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = o.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        client = aiomqtt.Client(
            o.host,
            o.port,
            username=o.username,
            password=o.password,
            identifier=o.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(self.will.topic, self.will.payload, self.will.qos, self.will.retain),
            clean_start=False,
            keepalive=o.keepalive_s,
            properties=props,
            tls_context=tls,
            max_inflight_messages=0,  # unbounded in paho-mqtt: publish_many keeps the window
            timeout=OPERATION_TIMEOUT_S,
            # Small packets (PUBACKs, responses) must not wait for Nagle's algorithm.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        client.pending_calls_threshold = 1 << 30  # we bound in-flight calls ourselves
        return client

    async def __aenter__(self) -> BrokerSession:
        try:
            tls = self._tls_context()
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionLost(f"TLS files of mqtt settings cannot be used: {exc}") from None
        self._mqtt = self._client(tls)
        self._hook(self._mqtt)
        try:
            await self._stack.enter_async_context(self._mqtt)
        except aiomqtt.MqttError as exc:
            await self.close()
            raise ConnectionLost(f"cannot connect to {self.options.address}: {exc}") from None
        except BaseException:
            await self.close()
            raise
        self._watcher = asyncio.create_task(
            self._watch(self._mqtt), name=f"lockgate-mqtt-watch-{self.generation}"
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect (gracefully when still connected), after the broker has processed the
        acknowledgements already given."""
        await self._flush_acks()
        try:
            await self._stack.aclose()
        except aiomqtt.MqttError as exc:
            log.debug("disconnect from %s: %s", self.options.address, exc)
        # The watcher ends by itself once disconnected (and so collects the error).
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            _, late = await asyncio.wait([watcher], timeout=1.0)
            for task in late:
                task.cancel()
            # Wait for the watcher without awaiting it: a cancellation of the watcher is
            # expected here, but one of the task closing the session (the bridge stopping)
            # must go on, not be swallowed.
            await asyncio.wait([watcher])
            if not watcher.cancelled() and (error := watcher.exception()) is not None:
                log.warning("the connection watcher of %s failed: %s", self.options.address, error)
        if not self._failed.done():
            self._failed.set_exception(ConnectionLost("session closed"))
        self._failed.exception()  # mark it retrieved: nobody else may ever look

    async def _flush_acks(self) -> None:
        """Make sure the broker has processed the acknowledgements given, before closing.

        Closing a socket while the broker is still sending makes the kernel reset the
        connection, and the broker then drops what it had not read yet: the last PUBACKs,
        so it would send those requests again. The broker handles a connection's packets in
        order, so once it answered an UNSUBSCRIBE (of a filter never subscribed) sent after
        them, it has processed them all."""
        if self._mqtt is None or (self._failed.done() and not self._recycled()):
            return
        with contextlib.suppress(TimeoutError, aiomqtt.MqttError):
            async with asyncio.timeout(FLUSH_TIMEOUT_S):
                await self._mqtt.unsubscribe(f"$lockgate/flush/{self.generation}")

    def _recycled(self) -> bool:
        return self._failed.done() and isinstance(self._failed.exception(), SessionRecycled)

    def _hook(self, client: aiomqtt.Client) -> None:
        """Manual acknowledgement and session-present on the client."""
        inner = _paho(client)
        _pending_publishes(client)  # publish_many needs it: fail before connecting
        inner.manual_ack_set(True)
        packets.install(inner)
        on_connect: Any = inner.on_connect
        on_disconnect: Any = inner.on_disconnect

        def connected(
            c: paho.Client,
            userdata: Any,
            flags: paho.ConnectFlags,
            reason: Any,
            props: Properties | None = None,
        ) -> None:
            self.session_present = bool(flags.session_present)
            broker_maximum = getattr(props, "ReceiveMaximum", None)
            if isinstance(broker_maximum, int) and broker_maximum > 0:
                self.send_window = min(MAX_INFLIGHT_OUT, broker_maximum)
            if on_connect is not None:
                on_connect(c, userdata, flags, reason, props)

        def disconnected(
            c: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any = None
        ) -> None:
            if getattr(reason, "value", None) == TAKEN_OVER:
                self._taken_over = True
            if on_disconnect is not None:
                on_disconnect(c, userdata, flags, reason, props)

        inner.on_connect = connected
        inner.on_disconnect = disconnected
        # Every message straight to the session (aiomqtt would wrap each in a message of its
        # own and queue it for its iterator, which only watches the connection here).
        inner.on_message = lambda c, userdata, message: self._received(message)

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Ends the session when ``client``'s connection ends (aiomqtt reports it through
        its message iterator, which never yields here)."""
        try:
            async for _ in client.messages:
                pass
        except aiomqtt.MqttError as exc:
            if self._taken_over:
                self._fail(
                    SessionTakenOver(
                        f"another connection to {self.options.address} took over client id "
                        f"{self.options.client_id!r}"
                    )
                )
            else:
                self._fail(ConnectionLost(f"connection to {self.options.address} lost: {exc}"))

    def _fail(self, exc: ConnectionLost) -> None:
        if not self._failed.done():
            self._failed.set_exception(exc)

    async def wait_closed(self) -> None:
        """Return never; raise :class:`ConnectionLost` once the connection has ended."""
        await asyncio.shield(self._failed)

    # ------------------------------------------------------------------ inbound

    def _received(self, message: paho.MQTTMessage) -> None:
        props = message.properties
        correlation = _property(props, "CorrelationData")
        order = next(self._order)
        inbound = InboundMessage(
            topic=message.topic,
            payload=bytes(message.payload),
            qos=message.qos,
            retain=message.retain,
            response_topic=_property(props, "ResponseTopic"),
            correlation_data=bytes(correlation) if correlation is not None else None,
            mid=message.mid,
            generation=self.generation,
            order=order,
        )
        if message.qos == 0:
            if not self.buffer.put(inbound):
                self.dropped += 1
                log.warning(
                    "inbound buffer full (%d): a QoS 0 request on %s was dropped; send "
                    "requests at QoS 1",
                    len(self.buffer),
                    inbound.topic,
                )
            return
        if not self.overflowing and len(self._unacked) < self.unacked_limit:
            self.buffer.put(inbound)
            self._unacked[order] = (message.mid, message.qos, False)
            self.unacked_high_water = max(self.unacked_high_water, len(self._unacked))
            return
        if not self.overflowing:
            self.overflowing = True
            log.warning(
                "the broker sent more than %d unacknowledged requests (Receive Maximum %d): "
                "the rest waits at the broker for the next session",
                len(self._unacked),
                self.receive_maximum,
            )
            self._recycle_when_done()

    def _recycle_when_done(self) -> None:
        """After an overflow, end the session once nothing taken is unacknowledged."""
        if not self.overflowing or self._unacked or len(self.buffer):
            return
        self._fail(SessionRecycled("inbound buffer overflowed: taking the rest on a new session"))

    def ack(self, message: InboundMessage) -> None:
        """Acknowledge ``message`` to the broker. PUBACKs go out in arrival order, so one may
        wait for earlier messages to be acknowledged too. Messages of an earlier session are
        ignored: the broker redelivers those."""
        if message.generation != self.generation or self._mqtt is None:
            return
        entry = self._unacked.get(message.order)
        if entry is not None:
            self._unacked[message.order] = (entry[0], entry[1], True)
        inner = _paho(self._mqtt)
        while self._unacked:
            order, (mid, qos, done) = next(iter(self._unacked.items()))
            if not done:
                break
            del self._unacked[order]
            inner.ack(mid, qos)
        self._recycle_when_done()

    @property
    def unacknowledged(self) -> int:
        """Messages received and not yet acknowledged."""
        return len(self._unacked)

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None:
        """Subscribe to ``filters``; raise :class:`ConnectionLost`
        when the broker refuses one."""
        if self._mqtt is None:
            raise ConnectionLost("not connected")
        try:
            granted = await self._mqtt.subscribe([(f, qos) for f in filters])
        except aiomqtt.MqttError as exc:
            raise ConnectionLost(f"subscribe failed: {exc}") from None
        for f, code in zip(filters, granted, strict=False):
            value = getattr(code, "value", code)
            if not isinstance(value, int) or value >= 0x80:
                raise ConnectionLost(f"the broker refused the subscription to {f!r} ({code})")

    # ------------------------------------------------------------------ outbound

    async def publish(self, message: OutboundMessage) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1)."""
        await self.publish_many((message,))

    async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
        """Publish ``messages`` in order and wait until the broker acknowledged every one.

        At most :attr:`send_window` QoS 1 messages are in flight on the session; the rest are
        handed to the client, in order, as acknowledgements free room, and concurrent calls
        take their turns whole (a later call's messages never overtake an earlier call's).
        One waiter counts the acknowledgements of the whole call (aiomqtt's own ``publish``
        would make a task, an event and a timer per message). Raise :class:`ConnectionLost`
        when the client refuses a message, or when no room is freed or not every
        acknowledgement arrives within :data:`OPERATION_TIMEOUT_S`."""
        if not messages:
            return
        if self._mqtt is None:
            raise ConnectionLost("not connected")
        inner = _paho(self._mqtt)
        waiting = _pending_publishes(self._mqtt)
        acks = _Acknowledgements(len(messages), self._acknowledged)
        mids: list[int] = []
        try:
            async with self._send_turn:
                for message in messages:
                    if message.qos > 0 and self._in_flight >= self.send_window:
                        await self._wait_for_room(acks, len(messages))
                    props: Properties | None = None
                    if message.correlation_data is not None:
                        props = _correlated(message.correlation_data)
                    info = inner.publish(
                        message.topic, message.payload, message.qos, message.retain, props
                    )
                    if info.rc != paho.MQTT_ERR_SUCCESS:
                        raise ConnectionLost(
                            f"publishing to {message.topic} failed: {paho.error_string(info.rc)}"
                        )
                    if info.is_published():
                        acks.missing -= 1
                        continue
                    # The client reports the acknowledgement through aiomqtt's on_publish,
                    # which pops the message id from this map and calls ``set`` on what it
                    # finds; no callback runs between ``publish`` returning and this line.
                    if info.mid in waiting:
                        raise RuntimeError(f"message id {info.mid} is already awaited")
                    waiting[info.mid] = acks
                    mids.append(info.mid)
                    self._in_flight += 1
                    if self._in_flight > self.in_flight_peak:
                        self.in_flight_peak = self._in_flight
            if acks.missing <= 0:
                return
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT_S):
                    await acks.all_done
            except TimeoutError:
                raise ConnectionLost(
                    f"the broker did not acknowledge {acks.missing} of {len(messages)} "
                    f"publications within {OPERATION_TIMEOUT_S:.0f} s"
                ) from None
        finally:
            for mid in mids:
                if waiting.get(mid) is acks:
                    del waiting[mid]
                    self._in_flight -= 1

    def _acknowledged(self) -> None:
        self._in_flight -= 1
        room = self._room
        if room is not None and self._in_flight <= self.send_window * REFILL_AT and not room.done():
            room.set_result(None)

    async def _wait_for_room(self, acks: _Acknowledgements, total: int) -> None:
        self._room = room = self._loop.create_future()
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                await room
        except TimeoutError:
            raise ConnectionLost(
                f"the broker acknowledged none of {self._in_flight} publications in flight "
                f"within {OPERATION_TIMEOUT_S:.0f} s ({acks.missing} of {total} still to go)"
            ) from None
        finally:
            self._room = None


class _Acknowledgements:
    """Counts the broker's acknowledgements of one :meth:`BrokerSession.publish_many`; its
    ``set`` is what aiomqtt's on_publish callback calls for each message."""

    __slots__ = ("_each", "all_done", "missing")

    def __init__(self, expected: int, each: Callable[[], None]) -> None:
        self.missing = expected
        self._each = each
        self.all_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def set(self) -> None:
        self._each()
        self.missing -= 1
        if self.missing <= 0 and not self.all_done.done():
            self.all_done.set_result(None)


def _pending_publishes(client: aiomqtt.Client) -> dict[int, Any]:
    """aiomqtt's map of message ids awaiting their PUBACK (aiomqtt 2.x keeps it in
    ``_pending_publishes``; its on_publish callback pops an id and calls ``set()``)."""
    waiting = getattr(client, "_pending_publishes", None)
    if not isinstance(waiting, dict):
        raise RuntimeError("this aiomqtt version does not expose its pending publications")
    return waiting


__all__ = [
    "BrokerSession",
    "ConnectOptions",
    "ConnectionLost",
    "InboundBuffer",
    "InboundMessage",
    "LastWill",
    "OutboundMessage",
    "SessionRecycled",
    "SessionTakenOver",
]
