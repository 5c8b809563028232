"""``lockgate agent``: the edge agent of one site.

It serves the site's controllers (:class:`~gateway.agent.worker.AgentControllerWorker`, the
existing drivers) from its local store (:class:`~gateway.agent.local.AgentStore`) and talks to
the core only over MQTT, on the site's topics (``<base>/v1/site/<site>/...``):

- it receives desired documents, accepts them (or refuses them with a logged reason, keeping
  its last good state) and wakes the controllers, those whose change revokes first;
- it sends its outbox (confirmations that revoke first, then other confirmations, then
  events; the confirmations together in one message) until the core acknowledges each, again
  after every reconnection;
- it publishes its state (retained; ``offline`` as its last will) on connecting, after every
  document and after every refusal: a state that says ``connected`` or ``refused`` makes the
  core send a full document;
- it serves its wall-mounted key stations (:mod:`gateway.agent.stations`): planned key images
  asked of the core and cached, visits and confirmations queued in the outbox; after
  connecting and after every full document it asks again for every cached key's image.

When the broker or the core is unreachable the workers go on serving the controllers with the
last accepted state; the link reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import aiomqtt
from pydantic import ValidationError

from drivers.base import DeviceConfig, DoorController, KeyStation
from drivers.registry import load_door_controller, load_key_station
from gateway.agent.keys import AgentKeys
from gateway.agent.link import link_error, publish_all, tls_context
from gateway.agent.local import AgentStore, Refused
from gateway.agent.outbox import wire_messages
from gateway.agent.stations import AgentStationWorker, KeyLink
from gateway.agent.worker import AgentControllerWorker
from gateway.bridge.sitepayloads import SiteAck, SiteState, dump
from gateway.bridge.topics import TopicMap, check_level
from gateway.config import Settings
from gateway.runtime import cancel_and_wait
from gateway.sync.engine import controller_settings, worker_timing

log = logging.getLogger(__name__)

RESEND_S = 5.0
"""An unacknowledged outbox message is sent again after this long, then after twice as long
each time (up to :data:`RESEND_MAX_S`) while no acknowledgement comes: behind a site broker
whose bridge to the core is down, the bridge's queue does not fill with copies. The first
acknowledgement after a silence sends everything waiting at once."""
RESEND_MAX_S = 300.0


class Agent:
    """The edge agent of site ``site``: workers, local store and the link to the core."""

    def __init__(
        self,
        settings: Settings,
        site: str,
        state_path: str,
        *,
        controller_factory: Callable[[DeviceConfig], DoorController] = load_door_controller,
        station_factory: Callable[[DeviceConfig], KeyStation] = load_key_station,
        resend_s: float = RESEND_S,
        key_wait_s: float | None = None,
    ) -> None:
        self.site = check_level("--site", site)
        self.settings = settings
        self.topics = TopicMap(settings.mqtt.base_topic)
        self.store = AgentStore(state_path, site)
        self.resend_s = resend_s
        self.coalesce_s = settings.sync.confirm_wait_s
        """A new confirmation waits at most this long for the controllers still writing, so
        that the site's confirmations reach the core in one message (``sync.confirm_wait_s``)."""
        timing = worker_timing(settings)
        self.workers: dict[str, AgentControllerWorker] = {
            c.id: AgentControllerWorker(
                self.store,
                c.id,
                partial(
                    controller_factory,
                    DeviceConfig(device_id=c.id, driver=c.driver, options=dict(c.options)),
                ),
                timing=timing,
                on_outbox=self._outbox_changed,
                settings=controller_settings(c),
                clock_tolerance_s=c.clock_tolerance_s,
            )
            for c in settings.controllers
        }
        self.keys = AgentKeys(self.store)
        self.key_link = KeyLink(self.keys, self.site, self.topics)
        self.stations: dict[str, AgentStationWorker] = {
            st.id: AgentStationWorker(
                self.keys,
                self.key_link,
                st.id,
                partial(
                    station_factory,
                    DeviceConfig(device_id=st.id, driver=st.driver, options=dict(st.options)),
                ),
                timing=timing,
                on_outbox=self._outbox_changed,
                wait_s=key_wait_s if key_wait_s is not None else settings.agent.key_wait_s,
            )
            for st in settings.stations
            if not st.operated
        }
        self.connected = asyncio.Event()
        self.refusals: list[str] = []
        self._client: aiomqtt.Client | None = None
        self._outbox_wake = asyncio.Event()
        self._sent: dict[int, tuple[float, int]] = {}
        """Outbox seq -> (when last sent, how many times) on this connection."""
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        for w in self.workers.values():
            await w.start()
        for st in self.stations.values():
            await st.start()
        self._task = asyncio.create_task(self._link(), name=f"lockgate-agent-link-{self.site}")
        log.info(
            "agent of site %s serves %d controllers and %d stations; holds revision %s, "
            "%d messages waiting",
            self.site,
            len(self.workers),
            len(self.stations),
            self.store.revision(),
            self.store.waiting(),
        )

    async def stop(self) -> None:
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                await client.publish(
                    self.topics.site("site_state", self.site),
                    self._state(False, "stopped"),
                    qos=1,
                    retain=True,
                    timeout=2,
                )
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for st in self.stations.values():
            await st.stop()
        for w in self.workers.values():
            await w.stop()
        self.store.close()

    async def __aenter__(self) -> Agent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _outbox_changed(self) -> None:
        self._outbox_wake.set()

    # ------------------------------------------------------------------ the link

    def _state(self, online: bool, reason: str) -> bytes:
        confirmed = self.store.confirmed_revisions()
        return dump(
            SiteState(
                site=self.site,
                online=online,
                revision=self.store.revision(),
                reason=reason[:300],
                controllers={cid: confirmed.get(cid) for cid in self.workers},
                waiting=self.store.waiting(),
                at=datetime.now(UTC),
                waiting_for_core=self.key_link.waiting_since,
            )
        )

    def _client_of(self) -> aiomqtt.Client:
        m = self.settings.mqtt
        return aiomqtt.Client(
            m.host,
            m.port,
            username=m.username,
            password=m.password,
            identifier=m.username or f"{m.client_id}-agent-{self.site}",
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=True,
            keepalive=m.keepalive_s,
            tls_context=tls_context(m),
            will=aiomqtt.Will(
                self.topics.site("site_state", self.site),
                self._state(False, "offline"),
                qos=1,
                retain=True,
            ),
            timeout=10,
        )

    async def _link(self) -> None:
        delay = self.settings.sync.retry_initial_s
        while True:
            try:
                async with self._client_of() as client:
                    self._client = client
                    delay = self.settings.sync.retry_initial_s
                    await self._serve_link(client)
            except aiomqtt.MqttError as exc:
                log.warning("agent of site %s: %s", self.site, link_error(exc, self.settings.mqtt))
            except Exception:
                log.exception("agent of site %s: the link failed; reconnecting", self.site)
            finally:
                self._client = None
                self.connected.clear()
                await self.key_link.connected(None)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.sync.retry_max_s)

    async def _serve_link(self, client: aiomqtt.Client) -> None:
        await client.subscribe(
            [
                (self.topics.site("site_desired", self.site), 1),
                (self.topics.site("site_ack", self.site), 1),
                (self.topics.site("site_key_image", self.site), 1),
            ]
        )
        self._sent.clear()
        await self._publish_state(client, "connected")
        self.connected.set()
        log.info("agent of site %s connected to the broker", self.site)
        await self.key_link.connected(client)
        sender = asyncio.create_task(
            self._send_outbox(client), name=f"lockgate-agent-outbox-{self.site}"
        )
        watcher = asyncio.create_task(
            self.key_link.watch(partial(self._publish_state, client)),
            name=f"lockgate-agent-keys-waiting-{self.site}",
        )
        try:
            async for message in client.messages:
                await self._received(client, message)
        finally:
            await cancel_and_wait(watcher)
            await cancel_and_wait(sender)

    async def _publish_state(self, client: aiomqtt.Client, reason: str) -> None:
        await client.publish(
            self.topics.site("site_state", self.site),
            self._state(True, reason),
            qos=1,
            retain=True,
        )

    async def _received(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        raw = message.payload if isinstance(message.payload, bytes) else b""
        if topic == self.topics.site("site_key_image", self.site):
            self.key_link.received(raw)
            return
        if topic == self.topics.site("site_ack", self.site):
            try:
                ack = SiteAck.model_validate_json(raw)
            except ValidationError:
                log.warning("agent of site %s: malformed acknowledgement ignored", self.site)
                return
            self.store.acknowledged(ack.seqs, ack.store)
            for seq in ack.seqs:
                self._sent.pop(seq, None)
            if any(n > 1 for _, n in self._sent.values()):
                # the core answers again: what waited through the silence goes now
                self._sent = {seq: (0.0, 0) for seq in self._sent}
                self._outbox_wake.set()
            return
        try:
            doc = self.store.accept(raw)
        except Refused as exc:
            reason = str(exc)
            self.refusals.append(reason)
            log.warning(
                "agent of site %s refused a desired document, keeps revision %s: %s",
                self.site,
                self.store.revision(),
                reason,
            )
            await self._publish_state(client, f"refused: {reason}")
            return
        if doc is None:
            return  # a part of a document: the rest is on its way
        # Revoking controllers first: each worker writes its whole list, so waking those
        # first puts the revocations on the wire first.
        order = sorted(doc.controllers.items(), key=lambda kv: not kv[1].revoking)
        for cid, _ in order:
            worker = self.workers.get(cid)
            if worker is not None:
                worker.wake()
        log.info(
            "agent of site %s accepted revision %d (%s, %d controllers)",
            self.site,
            doc.revision,
            "full" if doc.base is None else f"delta on {doc.base}",
            len(doc.controllers),
        )
        await self._publish_state(client, "applied")
        if doc.base is None:
            # a full document: the core may have restarted and forgotten the cached keys
            await self.key_link.refresh()

    async def _gather(self) -> None:
        """While controllers are still writing the desired state (a confirmation is new and
        others will follow), wait for them up to ``coalesce_s``, so that the site's
        confirmations go to the core together."""
        deadline = time.monotonic() + self.coalesce_s
        while (left := deadline - time.monotonic()) > 0 and (
            self.store.unconfirmed() & self.workers.keys()
        ):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._outbox_wake.wait()
            self._outbox_wake.clear()

    async def _send_outbox(self, client: aiomqtt.Client) -> None:
        """Send every unacknowledged message (revocations first), again after ``resend_s``."""
        while True:
            if self.coalesce_s and any(
                p.topic == "site_confirm" and p.seq not in self._sent for p in self.store.pending()
            ):
                await self._gather()
            now = time.monotonic()
            due = []
            for p in self.store.pending():
                sent, times = self._sent.get(p.seq, (0.0, 0))
                if times and now - sent < min(self.resend_s * 2 ** (times - 1), RESEND_MAX_S):
                    continue
                due.append(p)
                self._sent[p.seq] = (now, times + 1)
            # handed to the client in outbox order (revocations first), the confirmations
            # together; PUBACKs awaited together
            await publish_all(
                client,
                wire_messages(
                    self.site,
                    self.topics,
                    due,
                    store=self.store.store_id,
                    oldest=self.store.oldest() if due else None,
                ),
                f"lockgate-agent-outbox-{self.site}-send",
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(1.0, self.resend_s)):
                    await self._outbox_wake.wait()
            self._outbox_wake.clear()


__all__ = ["Agent"]
