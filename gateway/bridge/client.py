"""The connection to the broker: the only module that knows the MQTT client library.

Everything else in the bridge sees :class:`BrokerSession` (connect, subscribe, take inbound
messages, acknowledge them, publish) and the plain data classes below; swapping the library
means rewriting this module only.

A session is two MQTT v5 connections to the same broker:

- the **request connection** (client id ``mqtt.client_id``) holds the persistent session:
  clean start off, a session expiry, QoS 1 subscriptions. Messages are acknowledged
  (PUBACK) only when :meth:`BrokerSession.ack` is called, i.e. after their effect and their
  response are stored, and always in the order they arrived (MQTT 5 §4.6). Its Receive Maximum
  asks the broker to keep at most ``max_pending`` messages in flight, and when the inbound
  buffer still fills up (some brokers overshoot), the socket is simply not read until the
  buffer has drained to half: nothing is dropped and memory stays bounded.
- the **publishing connection** (client id ``<client_id>.pub``) carries the last will and
  everything the gateway publishes. It is separate because a paused request socket would
  also hold back the PUBACKs of the gateway's own publications, which the acknowledgements
  of requests wait for.

If either connection fails the session is lost as a whole (:class:`ConnectionLost`); the
caller opens a new one. Unacknowledged requests are then redelivered by the broker.

aiomqtt 2.x has no manual acknowledgement, no hook to pause reading and does not report
whether the broker kept the session; the paho-mqtt client it drives has all three
(``manual_ack_set``/``ack``, the socket and connect callbacks). :func:`_paho` is the one
place that reaches under aiomqtt to it.
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

log = logging.getLogger(__name__)

PUBLISHER_SUFFIX = ".pub"
MAX_INFLIGHT_OUT = 100
"""QoS 1 publications in flight at once on the publishing connection."""
OPERATION_TIMEOUT_S = 60.0
"""Longest wait for a PUBACK or SUBACK before the session counts as lost."""

_generations = itertools.count(1)


class ConnectionLost(Exception):
    """The broker could not be reached, refused the connection, or the connection broke."""


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
    user_properties: tuple[tuple[str, str], ...]
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

    ``limit`` bounds it: when it holds ``limit`` messages, ``on_full`` is called (the session
    stops reading its socket); once :meth:`take` brings it down to half, ``on_space``."""

    def __init__(self, limit: int, urgent: Callable[[str], bool]) -> None:
        if limit < 2:
            raise ValueError(f"limit: at least 2, got {limit}")
        self.limit = limit
        self._resume_at = limit // 2
        self._urgent = urgent
        self._queues: tuple[collections.deque[InboundMessage], ...] = (
            collections.deque(),
            collections.deque(),
        )
        self._ready = asyncio.Event()
        self.full = False
        self.on_full: Callable[[], None] = lambda: None
        self.on_space: Callable[[], None] = lambda: None
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._queues[0]) + len(self._queues[1])

    def put(self, message: InboundMessage) -> None:
        self._queues[0 if self._urgent(message.topic) else 1].append(message)
        self._ready.set()
        size = len(self)
        self.high_water = max(self.high_water, size)
        if size >= self.limit and not self.full:
            self.full = True
            self.on_full()

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
        if self.full and len(self) <= self._resume_at:
            self.full = False
            self.on_space()
        return batch


def _forwarding_queue(
    sink: Callable[[aiomqtt.Message], None],
) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue class for aiomqtt that hands every received message to ``sink`` at once."""

    class _Forward(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            sink(item)

    return _Forward


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


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
        self.buffer = InboundBuffer(max(2, options.max_pending), urgent)
        self.buffer.on_full = self._pause
        self.buffer.on_space = self._resume
        self.session_present = False
        self.paused_count = 0
        self._loop = asyncio.get_running_loop()
        self._stack = contextlib.AsyncExitStack()
        self._order = itertools.count()
        self._unacked: collections.OrderedDict[int, tuple[int, int, bool]] = (
            collections.OrderedDict()
        )
        self._failed: asyncio.Future[None] = self._loop.create_future()
        self._request_sock: Any = None  # the socket paho reads (a plain or an SSL socket)
        self._paused = False
        self._requests: aiomqtt.Client | None = None
        self._publisher: aiomqtt.Client | None = None
        self._watchers: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ connecting

    def _tls_context(self) -> ssl.SSLContext | None:
        o = self.options
        if not o.tls:
            return None
        context = ssl.create_default_context(cafile=o.ca_file)
        if o.cert_file:
            context.load_cert_chain(o.cert_file, o.key_file)
        return context

    def _client(
        self,
        identifier: str,
        *,
        persistent: bool,
        will: LastWill | None,
        queue_type: type[asyncio.Queue[aiomqtt.Message]] | None,
        tls: ssl.SSLContext | None,
    ) -> aiomqtt.Client:
        o = self.options
        props = _properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = o.session_expiry_s if persistent else 0
        if persistent:
            props.ReceiveMaximum = max(1, min(o.max_pending, 65535))
        client = aiomqtt.Client(
            o.host,
            o.port,
            username=o.username,
            password=o.password,
            identifier=identifier,
            protocol=aiomqtt.ProtocolVersion.V5,
            will=None
            if will is None
            else aiomqtt.Will(will.topic, will.payload, will.qos, will.retain),
            clean_start=not persistent,
            keepalive=o.keepalive_s,
            properties=props,
            tls_context=tls,
            max_inflight_messages=MAX_INFLIGHT_OUT,
            queue_type=queue_type,
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
        self._publisher = self._client(
            self.options.client_id + PUBLISHER_SUFFIX,
            persistent=False,
            will=self.will,
            queue_type=None,
            tls=tls,
        )
        self._requests = self._client(
            self.options.client_id,
            persistent=True,
            will=None,
            queue_type=_forwarding_queue(self._received),
            tls=tls,
        )
        self._hook(self._requests)
        try:
            for client in (self._publisher, self._requests):
                await self._stack.enter_async_context(client)
                self._watchers.append(
                    asyncio.create_task(
                        self._watch(client), name=f"lockgate-mqtt-watch-{self.generation}"
                    )
                )
        except aiomqtt.MqttError as exc:
            await self.close()
            raise ConnectionLost(f"cannot connect to {self.options.address}: {exc}") from None
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect both connections (gracefully when they are still up)."""
        try:
            await self._stack.aclose()
        except aiomqtt.MqttError as exc:
            log.debug("disconnect from %s: %s", self.options.address, exc)
        # The watchers end by themselves once disconnected (and so collect the error).
        if self._watchers:
            _, late = await asyncio.wait(self._watchers, timeout=1.0)
            for task in late:
                task.cancel()
            for task in self._watchers:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._watchers.clear()
        if not self._failed.done():
            self._failed.set_exception(ConnectionLost("session closed"))
        self._failed.exception()  # mark it retrieved: nobody else may ever look

    def _hook(self, client: aiomqtt.Client) -> None:
        """Manual acknowledgement, session-present and socket capture on the request client."""
        inner = _paho(client)
        inner.manual_ack_set(True)
        on_connect: Any = inner.on_connect
        on_socket_open: Any = inner.on_socket_open

        def connected(
            c: paho.Client,
            userdata: Any,
            flags: paho.ConnectFlags,
            reason: Any,
            props: Properties | None = None,
        ) -> None:
            self.session_present = bool(flags.session_present)
            if on_connect is not None:
                on_connect(c, userdata, flags, reason, props)

        def socket_opened(c: paho.Client, userdata: Any, sock: Any) -> None:
            self._request_sock = sock
            if on_socket_open is not None:
                on_socket_open(c, userdata, sock)

        inner.on_connect = connected
        inner.on_socket_open = socket_opened

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Ends the session when ``client``'s connection ends (aiomqtt reports it through
        its message iterator, which never yields here)."""
        try:
            async for _ in client.messages:
                pass
        except aiomqtt.MqttError as exc:
            self._fail(ConnectionLost(f"connection to {self.options.address} lost: {exc}"))

    def _fail(self, exc: ConnectionLost) -> None:
        if not self._failed.done():
            self._failed.set_exception(exc)

    async def wait_closed(self) -> None:
        """Return never; raise :class:`ConnectionLost` once either connection has ended."""
        await asyncio.shield(self._failed)

    # ------------------------------------------------------------------ inbound

    def _received(self, message: aiomqtt.Message) -> None:
        props = message.properties
        correlation = _property(props, "CorrelationData")
        user = _property(props, "UserProperty") or []
        order = next(self._order)
        if message.qos > 0:
            self._unacked[order] = (message.mid, message.qos, False)
        self.buffer.put(
            InboundMessage(
                topic=message.topic.value,
                payload=bytes(message.payload)
                if isinstance(message.payload, bytes | bytearray)
                else str(message.payload).encode(),
                qos=message.qos,
                retain=message.retain,
                response_topic=_property(props, "ResponseTopic"),
                correlation_data=bytes(correlation) if correlation is not None else None,
                user_properties=tuple((str(k), str(v)) for k, v in user),
                mid=message.mid,
                generation=self.generation,
                order=order,
            )
        )

    def _pause(self) -> None:
        if self._request_sock is not None and not self._paused:
            self._loop.remove_reader(self._request_sock.fileno())
            self._paused = True
            self.paused_count += 1
            log.info("inbound buffer full (%d requests): reading paused", len(self.buffer))

    def _resume(self) -> None:
        if self._paused and self._request_sock is not None and self._requests is not None:
            self._paused = False
            if self._request_sock.fileno() >= 0:
                self._loop.add_reader(self._request_sock.fileno(), self._read)
            log.info("inbound buffer drained (%d requests): reading resumed", len(self.buffer))

    def _read(self) -> None:
        """Reads the request socket after a pause (what aiomqtt's own reader does)."""
        assert self._requests is not None
        inner = _paho(self._requests)
        try:
            while not self._paused:
                inner.loop_read()
                pending = getattr(self._request_sock, "pending", None)
                if pending is None or pending() <= 0:
                    break
        except Exception as exc:
            if self._request_sock is not None and self._request_sock.fileno() >= 0:
                self._loop.remove_reader(self._request_sock.fileno())
            self._fail(ConnectionLost(f"reading from {self.options.address} failed: {exc}"))

    def ack(self, message: InboundMessage) -> None:
        """Acknowledge ``message`` to the broker. PUBACKs go out in arrival order, so one may
        wait for earlier messages to be acknowledged too. Messages of an earlier session are
        ignored: the broker redelivers those."""
        if message.generation != self.generation or self._requests is None:
            return
        entry = self._unacked.get(message.order)
        if entry is None:
            return
        self._unacked[message.order] = (entry[0], entry[1], True)
        inner = _paho(self._requests)
        while self._unacked:
            order, (mid, qos, done) = next(iter(self._unacked.items()))
            if not done:
                break
            del self._unacked[order]
            inner.ack(mid, qos)

    @property
    def unacknowledged(self) -> int:
        """Messages received and not yet acknowledged."""
        return len(self._unacked)

    async def subscribe(self, filters: Sequence[str], qos: int = 1) -> None:
        """Subscribe the request connection to ``filters``; raise :class:`ConnectionLost`
        when the broker refuses one."""
        if self._requests is None:
            raise ConnectionLost("not connected")
        try:
            granted = await self._requests.subscribe([(f, qos) for f in filters])
        except aiomqtt.MqttError as exc:
            raise ConnectionLost(f"subscribe failed: {exc}") from None
        for f, code in zip(filters, granted, strict=False):
            value = getattr(code, "value", code)
            if not isinstance(value, int) or value >= 0x80:
                raise ConnectionLost(f"the broker refused the subscription to {f!r} ({code})")

    # ------------------------------------------------------------------ outbound

    async def publish(self, message: OutboundMessage) -> None:
        """Publish and wait for the broker's acknowledgement (QoS 1)."""
        if self._publisher is None:
            raise ConnectionLost("not connected")
        props: Properties | None = None
        if message.correlation_data is not None:
            props = _properties(PacketTypes.PUBLISH)
            props.CorrelationData = message.correlation_data
        try:
            await self._publisher.publish(
                message.topic,
                message.payload,
                qos=message.qos,
                retain=message.retain,
                properties=props,
            )
        except aiomqtt.MqttError as exc:
            raise ConnectionLost(f"publishing to {message.topic} failed: {exc}") from None

    async def publish_many(self, messages: Sequence[OutboundMessage]) -> None:
        """Publish ``messages`` in order and wait until the broker acknowledged every one.

        They go out in windows of :data:`MAX_INFLIGHT_OUT` (what the client keeps in flight
        anyway; more outstanding calls would only cost bookkeeping)."""
        for start in range(0, len(messages), MAX_INFLIGHT_OUT):
            window = messages[start : start + MAX_INFLIGHT_OUT]
            results = await asyncio.gather(
                *(self.publish(m) for m in window), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result


__all__ = [
    "BrokerSession",
    "ConnectOptions",
    "ConnectionLost",
    "InboundBuffer",
    "InboundMessage",
    "LastWill",
    "OutboundMessage",
]
