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
import logging
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
    LastWill,
    OutboundMessage,
)
from gateway.bridge.inbound import RequestPipeline, is_urgent
from gateway.bridge.outbound import (
    ConfirmedLookup,
    OutboxRelay,
    StatePublisher,
    no_confirmation,
    to_json,
)
from gateway.bridge.topics import TopicMap
from gateway.config import MqttSettings

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

RECONNECT_PAUSE_S = 0.5
"""Pause after a connection broke, before connecting again."""
MAX_BACKOFF_S = 30.0


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

    ``publisher`` is the :class:`StatePublisher`; register it as a core listener before the
    gateway starts (:func:`gateway.service.build_gateway` does) and hand it to whatever else
    announces states, availability or events."""

    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        *,
        confirmed_lookup: ConfirmedLookup = no_confirmation,
    ) -> None:
        self.settings = settings
        self.topics = TopicMap(settings.base_topic)
        self.options = connect_options(settings)
        self.publisher = StatePublisher(self.topics, confirmed_lookup=confirmed_lookup)
        self.connected = asyncio.Event()
        """Set while a session is up."""
        self.connections = 0
        self.session: BrokerSession | None = None
        self.pipeline: RequestPipeline | None = None
        self.relay: OutboxRelay | None = None
        self._gateway: Gateway | None = None
        self._task: asyncio.Task[None] | None = None
        self._republished = False
        """Every credential state was queued once since start (not just begun)."""

    async def start(self, gateway: Gateway) -> None:
        self._gateway = gateway
        if self.publisher not in gateway.core.listeners:
            gateway.core.listeners.append(self.publisher)
        self.pipeline = RequestPipeline(
            gateway,
            self.topics,
            max_batch=self.settings.max_batch,
            system_operator=self.settings.system_operator,
            client_operators=self.settings.client_operators,
        )
        self.relay = OutboxRelay(gateway, self.publisher)
        self._task = asyncio.create_task(self._supervise(), name="lockgate-mqtt")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        session = self.session
        if session is not None:
            with contextlib.suppress(ConnectionLost, TimeoutError):
                async with asyncio.timeout(2.0):
                    await session.publish(self._bridge_state("offline"))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self.relay is not None:
            self.relay.detach()

    # ------------------------------------------------------------------ sessions

    def _bridge_state(self, state: str) -> OutboundMessage:
        payload = to_json(p.BridgeState.model_validate({"state": state}))
        return OutboundMessage(self.topics.bridge_state(), payload, qos=1, retain=True)

    async def _supervise(self) -> None:
        while True:
            session = await self._connect()
            try:
                await self._serve(session)
            except* ConnectionLost as group:
                log.warning("broker connection lost (%s); reconnecting", group.exceptions[0])
            except* Exception:
                log.exception("the MQTT bridge failed; reconnecting")
            finally:
                self.session = None
                self.connected.clear()
                await session.close()
            await asyncio.sleep(RECONNECT_PAUSE_S)

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
                        self.topics.bridge_state(), to_json(p.BridgeState(state="offline"))
                    ),
                    urgent=is_urgent(self.topics),
                )
                await session.__aenter__()
                return session
        raise AssertionError("unreachable")  # pragma: no cover

    async def _serve(self, session: BrokerSession) -> None:
        assert self.pipeline is not None
        assert self.relay is not None
        await session.subscribe([self.topics.request_filter])
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
            tg.create_task(
                self.relay.run(session, replay=self.connections > 1), name="lockgate-mqtt-outbox"
            )
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
