"""Test helpers: a gateway with its MQTT bridge on the private broker, and a central system
(an MQTT v5 client) that publishes requests and collects everything the gateway publishes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from gateway.bridge import MqttBridge
from gateway.commands.model import Command
from gateway.compose import build_gateway, mqtt_bridge
from gateway.config import Settings
from gateway.core import ChangeListener
from gateway.demo.broker import PrivateMosquitto
from gateway.runtime import Gateway
from gateway.store import tables

logging.getLogger("mqtt").setLevel(logging.ERROR)

WAIT_S = 15.0


def settings_for(
    db_url: str, broker: PrivateMosquitto, base: str | None = None, **mqtt: Any
) -> Settings:
    """Settings of a gateway on ``db_url`` and ``broker``, with a base topic and client id of
    its own (the session broker is shared by every test of a worker)."""
    base = base or f"t{uuid.uuid4().hex[:10]}"
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "base_topic": base,
        "client_id": f"gw-{base}",
        "session_expiry_s": 600,
        "keepalive_s": 10,
    }
    values.update(mqtt)
    return Settings(database={"url": db_url}, mqtt=values, sync={"tick_s": 0.2})


@dataclass
class Running:
    gateway: Gateway
    bridge: MqttBridge
    settings: Settings

    @property
    def base(self) -> str:
        return self.settings.mqtt.base_topic


def register_system_operators(settings: Settings) -> None:
    """What an administrator does once (``lockgate operator add NAME --role system
    --token``): register the operators MQTT requests act as, so the role check admits them."""
    from gateway.auth import operators
    from gateway.auth.passwords import hash_token, new_token
    from gateway.domain.timeutil import utcnow
    from gateway.store import migrate
    from gateway.store.database import Database

    url = settings.database.resolved_url()
    migrate.upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            mqtt = settings.mqtt
            wanted = {
                name: "system" for name in (mqtt.system_operator, *mqtt.client_operators.values())
            }
            wanted["tester"] = "administrator"  # the tests' own direct commands
            for name, role in wanted.items():
                if operators.get(s, name) is None:
                    operators.add(
                        s,
                        name=name,
                        role=role,
                        created_by="test-setup",
                        token_hash=hash_token(new_token()),
                        at=utcnow(),
                    )
    finally:
        db.dispose()


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, *, listeners: Sequence[ChangeListener] = ()
) -> AsyncIterator[Running]:
    """Start the gateway (with extra core ``listeners``) and wait until its bridge is
    connected."""
    register_system_operators(settings)
    gateway = build_gateway(settings, listeners=listeners)
    bridge = mqtt_bridge(gateway)
    assert bridge is not None
    async with gateway:
        await asyncio.wait_for(bridge.connected.wait(), WAIT_S)
        yield Running(gateway, bridge, settings)


def body(command: Command, request_id: str, **envelope: Any) -> dict[str, Any]:
    """The JSON payload of ``command`` as a request."""
    return {"request_id": request_id, **envelope, **command.model_dump(mode="json")}


@dataclass
class Central:
    """A central system: publishes requests, collects responses and every gateway message."""

    client: aiomqtt.Client
    base: str
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    by_correlation: dict[bytes, list[tuple[str, dict[str, Any]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _collect(self) -> None:
        async for m in self.client.messages:
            topic = m.topic.value
            payload = bytes(m.payload) if isinstance(m.payload, bytes | bytearray) else b""
            self.messages.append((topic, payload, m.retain))
            if "/v1/response/" in topic or topic.startswith(f"{self.base}/v1/reply/"):
                data = json.loads(payload)
                if data.get("request_id") is not None:
                    self.responses[data["request_id"]].append(data)
                corr = getattr(m.properties, "CorrelationData", None) if m.properties else None
                if corr is not None:
                    self.by_correlation[bytes(corr)].append((topic, data))
            self.arrived.set()

    async def publish(
        self,
        name: str,
        payload: bytes | dict[str, Any],
        *,
        correlation: bytes | None = None,
        response_topic: str | None = None,
        retain: bool = False,
    ) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        props = None
        if correlation is not None or response_topic is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if correlation is not None:
                props.CorrelationData = correlation
            if response_topic is not None:
                props.ResponseTopic = response_topic
        await self.client.publish(
            f"{self.base}/v1/request/{name}", raw, qos=1, retain=retain, properties=props
        )

    async def wait_for(self, predicate: Any, timeout: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()

    async def response(self, request_id: str, timeout: float = WAIT_S) -> dict[str, Any]:
        await self.wait_for(lambda: request_id in self.responses, timeout)
        return self.responses[request_id][0]

    async def request(self, command: Command, request_id: str, **envelope: Any) -> dict[str, Any]:
        await self.publish(command.name, body(command, request_id, **envelope))
        return await self.response(request_id)

    async def correlated(self, correlation: bytes, timeout: float = WAIT_S) -> dict[str, Any]:
        await self.wait_for(lambda: correlation in self.by_correlation, timeout)
        return self.by_correlation[correlation][0][1]

    def on(self, suffix: str) -> list[tuple[bytes, bool]]:
        """Payloads and retain flags received on ``<base>/<suffix>``, in order."""
        topic = f"{self.base}/{suffix}"
        return [(p, r) for t, p, r in self.messages if t == topic]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(p) for p, _ in self.on("v1/events")]


@contextlib.asynccontextmanager
async def central(
    broker: PrivateMosquitto, base: str, *, subscribe: str = "v1/#", clear_retained: bool = True
) -> AsyncIterator[Central]:
    """A connected central system subscribed to ``<base>/<subscribe>``; on exit it clears
    the retained messages it saw, so the shared broker does not accumulate them."""
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"central-{uuid.uuid4().hex[:8]}",
        max_inflight_messages=100,
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
    )
    client.pending_calls_threshold = 1 << 30
    async with client:
        c = Central(client, base)
        await client.subscribe(f"{base}/{subscribe}", qos=1)
        task = asyncio.create_task(c._collect(), name="test-central")
        try:
            yield c
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task
            retained = {
                t
                for t, _, _ in c.messages
                if clear_retained and t.endswith(("/state", "/availability"))
            }
            with contextlib.suppress(aiomqtt.MqttError):
                for topic in sorted(retained):
                    await client.publish(topic, b"", qos=1, retain=True)


def count(gateway: Gateway, table: Any) -> int:
    with gateway.db.session(readonly=True) as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


FACT_TABLES = (
    "organisation",
    "key_grant_agreement",
    "person",
    "employment",
    "competence",
    "space",
    "space_cylinder",
    "space_door",
    "space_competence",
    "assignment",
    "access_application",
    "application_entry",
    "application_entry_space",
    "credential",
    "key_order",
    "delivery_manifest",
    "manifest_key",
    "receipt",
    "visitor_card",
    "visitor_card_space",
)
STATE_TABLES = ("fact_journal", "credential_state", "controller_state", "cylinder_blacklist")


def snapshot(
    db: Any, names: tuple[str, ...] = FACT_TABLES + STATE_TABLES + ("inbox",)
) -> dict[str, int]:
    """Row counts of the tables a request can change (facts, journal, derived state, inbox)."""
    with db.session(readonly=True) as s:
        return {
            name: int(
                s.execute(
                    select(func.count()).select_from(tables.metadata.tables[name])
                ).scalar_one()
            )
            for name in names
        }


def store_snapshot(gateway: Gateway) -> dict[str, int]:
    return snapshot(gateway.db)


async def poll_until(predicate: Any, timeout: float = WAIT_S, step: float = 0.02) -> None:
    """Wait until ``predicate()`` holds, checking every ``step`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)


async def poll_store_until(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """``poll_until`` for a predicate that reads the store: it runs off the event loop (the
    gateway under test keeps the loop) and every 0.2 s, not every 20 ms."""
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(predicate):
            await asyncio.sleep(0.2)


class LoopThread:
    """An event loop on a thread of its own, for synchronous tests (hypothesis) that drive
    asynchronous code: ``run(coro)`` runs a coroutine there and returns its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        self.run(self.loop.shutdown_asyncgens())
        self.run(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
