"""``MqttBridge``: the gateway service that keeps a broker session up and runs the request
pipeline and the outbox relay over it.

Life of a session: connect (retrying with exponential backoff and jitter while the broker is
unreachable), subscribe to the request topics (again on every connection, even though the
broker keeps the persistent session's subscriptions), publish ``online`` on the bridge state
topic, queue the retained state of every credential when the broker has no session for the
gateway (first start, or a broker that lost its data) and the last availability of every
device, then serve until the connection breaks, wait a moment and start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from gateway.bridge import payloads as p
from gateway.bridge.client import (
    BrokerSession,
    ConnectionLost,
    ConnectOptions,
    InboundMessage,
    LastWill,
    OutboundMessage,
    SessionRecycled,
    SessionTakenOver,
)
from gateway.bridge.inbound import RequestPipeline, is_urgent
from gateway.bridge.outbound import (
    ConfirmedLookup,
    ConfirmedPrefetch,
    OutboxRelay,
    StatePublisher,
    no_confirmation,
    no_prefetch,
    to_json,
)
from gateway.bridge.topics import TopicMap
from gateway.config import MqttSettings

if TYPE_CHECKING:
    from gateway.core import Core
    from gateway.runtime import Gateway

log = logging.getLogger(__name__)

RECONNECT_PAUSE_S = 0.5
"""Pause after a connection broke, before connecting again."""
MAX_BACKOFF_S = 30.0
TAKEN_OVER_PAUSE_S = 10.0
"""Pause before connecting again after another connection took over the client id (two
gateways alike would otherwise take it from each other as fast as they can)."""


def connect_options(settings: MqttSettings) -> ConnectOptions:
    """Connection options from the ``[mqtt]`` settings."""
    return ConnectOptions(
        host=settings.host,
        port=settings.port,
        client_id=settings.client_id,
        username=settings.username,
        password=settings.password,
        tls=settings.tls,
        ca_file=settings.ca_file,
        cert_file=settings.cert_file,
        key_file=settings.key_file,
        keepalive_s=settings.keepalive_s,
        session_expiry_s=settings.session_expiry_s,
        max_pending=settings.max_pending,
    )


class MqttBridge:
    """The MQTT bridge service (see the module docstring).

    ``publisher`` is the :class:`StatePublisher`: the core the bridge serves must have it
    among its listeners (:func:`gateway.compose.build_gateway` builds it so), and whatever
    else announces states, availability or events uses it."""

    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        *,
        confirmed_lookup: ConfirmedLookup = no_confirmation,
        confirmed_prefetch: ConfirmedPrefetch = no_prefetch,
        may_connect: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings
        self.may_connect = may_connect
        """Asked before every connection (and before announcing ``offline`` at the stop): a
        core instance that is not (or no longer) the leader must not take the gateway's
        client id, whose session the leader holds."""
        self.topics = TopicMap(settings.base_topic)
        self.options = connect_options(settings)
        self.publisher = StatePublisher(
            self.topics, confirmed_lookup=confirmed_lookup, confirmed_prefetch=confirmed_prefetch
        )
        self.connected = asyncio.Event()
        """Set while a session is up."""
        self.connections = 0
        self.instance = uuid.uuid4().hex
        """This process's identity on the bridge state topic (see :meth:`_on_presence`)."""
        self.conflicts = 0
        """Other gateways seen announcing themselves online on the same topics."""
        self._others: set[str] = set()
        self._high_water = 0
        self.session: BrokerSession | None = None
        self.pipeline: RequestPipeline | None = None
        self.relay: OutboxRelay | None = None
        self._gateway: Gateway | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._background: set[asyncio.Task[None]] = set()
        self._republished = False
        """Every credential state was queued once since start (not just begun)."""
        self._replay = False
        """The next session republishes the most recently published messages (the broker
        may have lost them: set after a lost connection, not after a recycled session)."""

    @property
    def high_water(self) -> int:
        """The most unacknowledged requests any session held since start."""
        session = self.session
        return max(self._high_water, session.unacked_high_water if session else 0)

    async def start(self, gateway: Gateway) -> None:
        if self.publisher not in gateway.core.listeners:
            raise ValueError("the core must have the bridge's publisher among its listeners")
        self._gateway = gateway
        self._stopping = False
        self.pipeline = RequestPipeline(
            gateway,
            self.topics,
            max_batch=self.settings.max_batch,
            system_operator=self.settings.system_operator,
            client_operators=self.settings.client_operators,
            on_presence=self._on_presence,
        )
        self.relay = OutboxRelay(gateway, self.publisher, replay_s=self.settings.replay_s)
        self._task = asyncio.create_task(self._supervise(), name="lockgate-mqtt")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        # Besides the cancellation below: on Python 3.11 a cancellation that meets a
        # completing wait (aiomqtt's disconnect) can be lost; the supervisor then ends here.
        self._stopping = True
        for pending in list(self._background):
            pending.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        session = self.session
        if session is not None and self.may_connect():
            with contextlib.suppress(ConnectionLost, TimeoutError):
                async with asyncio.timeout(2.0):
                    await session.publish(self._bridge_state("offline"))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self.relay is not None:
            self.relay.detach()
            # Best effort: a mark not written only means the message is published again.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.relay.flush_marks()

    # ------------------------------------------------------------------ sessions

    def _bridge_state(self, state: str) -> OutboundMessage:
        payload = to_json(p.BridgeState.model_validate({"state": state, "instance": self.instance}))
        return OutboundMessage(self.topics.bridge_state(), payload, qos=1, retain=True)

    def _on_presence(self, message: InboundMessage) -> None:
        """A message on the bridge state topic (the gateway subscribes to its own).

        Another instance announcing ``online`` live means two gateways serve the same topics
        (and both would apply every request): it is logged as an error and reported with a
        ``gateway_conflict`` event. Such an instance going ``offline`` afterwards overwrote
        the retained state while this one is online: this one's is published again. (An
        earlier process's last will, queued in the session, is not news.)"""
        if not message.payload:
            return  # a retained state cleared
        try:
            state = json.loads(message.payload)
            other, kind = state.get("instance"), state.get("state")
        except (ValueError, AttributeError):
            log.warning("unreadable message on %s ignored", message.topic)
            return
        if other == self.instance:
            return
        if message.retain:
            # The retained state when this session subscribed. Another instance's "online"
            # there at the first connection may be stale (the broker and that gateway went
            # down together, so no last will was published); once this process has been
            # connected, it means someone announced itself after this one did, e.g. a twin
            # taking over the client id (Mosquitto closes the taken-over connection without
            # saying why).
            if kind == "online" and self.connections > 1:
                self._conflict(
                    str(other) if other is not None else None,
                    f"another gateway (instance {other}) was online on {self.topics.base} "
                    "while this one's connection was down",
                )
            elif kind == "online":
                log.warning(
                    "the broker holds an online state of another gateway instance (%s): "
                    "another gateway may be serving %s",
                    other,
                    self.topics.base,
                )
            return
        session = self.session
        if kind == "offline" and other in self._others and session is not None:
            task = asyncio.get_running_loop().create_task(
                self._announce(session), name="lockgate-mqtt-announce"
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if kind == "online":
            self._others.add(str(other))
            self._conflict(
                str(other) if other is not None else None,
                f"another gateway (instance {other}) announced itself online on {self.topics.base}",
            )

    def _conflict(self, other: str | None, what: str) -> None:
        """Log and report (``gateway_conflict`` event) that another gateway serves the same
        topics or client id."""
        self.conflicts += 1
        log.error("%s: two gateways apply the same requests; stop one of them", what)
        task = asyncio.get_running_loop().create_task(
            self._report_conflict(other, what), name="lockgate-mqtt-conflict"
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _announce(self, session: BrokerSession) -> None:
        with contextlib.suppress(ConnectionLost):
            await session.publish(self._bridge_state("online"))

    async def _report_conflict(self, other: str | None, what: str) -> None:
        gateway = self._gateway
        if gateway is None:
            return

        def enqueue(core: Core) -> None:
            body = p.GatewayConflictBody(
                instance=self.instance,
                other_instance=other[:64] if other else None,
                detail=what[:200],
            )
            with core.db.session() as s:
                self.publisher.enqueue_event(s, body)

        try:
            await gateway.call(enqueue, gateway.core)
        except Exception:
            log.exception("the gateway conflict could not be reported as an event")

    async def _supervise(self) -> None:
        while not self._stopping:
            # A predicate of the clock and the lease, not an event: poll it.
            while not self.may_connect():
                if self._stopping:
                    return
                await asyncio.sleep(0.1)
            session = await self._connect()
            if self._stopping:
                await session.close()
                return
            pause = RECONNECT_PAUSE_S
            try:
                await self._serve(session)
            except* SessionRecycled as group:
                log.info("%s", group.exceptions[0])
                pause = 0.0
            except* SessionTakenOver as group:
                self._conflict(None, str(group.exceptions[0]))
                self._replay = True
                pause = TAKEN_OVER_PAUSE_S
            except* ConnectionLost as group:
                log.warning("broker connection lost (%s); reconnecting", group.exceptions[0])
                self._replay = True
            except* Exception:
                log.exception("the MQTT bridge failed; reconnecting")
                self._replay = True
            finally:
                self._high_water = self.high_water
                self.session = None
                self.connected.clear()
                await session.close()
            if self._stopping:
                return
            await asyncio.sleep(pause)

    async def _connect(self) -> BrokerSession:
        def warn(state: RetryCallState) -> None:
            log.warning(
                "broker %s unreachable (%s); retrying in %.1f s",
                self.options.address,
                state.outcome.exception() if state.outcome is not None else "?",
                state.next_action.sleep if state.next_action is not None else 0.0,
            )

        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(ConnectionLost),
            wait=wait_exponential_jitter(multiplier=0.5, max=MAX_BACKOFF_S),
            before_sleep=warn,
            reraise=True,
        ):
            with attempt:
                session = BrokerSession(
                    self.options,
                    will=LastWill(
                        self.topics.bridge_state(),
                        to_json(p.BridgeState(state="offline", instance=self.instance)),
                    ),
                    urgent=is_urgent(self.topics),
                )
                await session.__aenter__()
                return session
        raise AssertionError("unreachable")  # pragma: no cover

    async def _serve(self, session: BrokerSession) -> None:
        assert self.pipeline is not None
        assert self.relay is not None
        await session.subscribe([self.topics.request_filter, self.topics.bridge_state()])
        await session.publish(self._bridge_state("online"))
        self.session = session
        self.connections += 1
        log.info(
            "connected to %s as %s (session %s)",
            self.options.address,
            self.options.client_id,
            "resumed" if session.session_present else "new",
        )
        self.connected.set()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(session.wait_closed(), name="lockgate-mqtt-session")
            tg.create_task(self.pipeline.run(session), name="lockgate-mqtt-pipeline")
            replay, self._replay = self._replay, False
            tg.create_task(self.relay.run(session, replay=replay), name="lockgate-mqtt-outbox")
            if not self._republished or not session.session_present:
                tg.create_task(self._republish(), name="lockgate-mqtt-republish")
            else:
                tg.create_task(self._republish_availability(), name="lockgate-mqtt-availability")

    async def _republish(self) -> None:
        assert self.relay is not None
        count = await self.relay.republish_all()
        self._republished = True
        log.info("queued the retained state of %d credentials", count)

    async def _republish_availability(self) -> None:
        assert self.relay is not None
        await self.relay.republish_availability()


__all__ = ["MqttBridge", "connect_options"]
