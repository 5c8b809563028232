"""deploy/: mosquitto accepts the production configuration (only the port, folders and file
paths changed), its ACL separates the gateway from central systems, and deploy/lockgate.toml
is a valid gateway configuration that matches it."""

from __future__ import annotations

import asyncio
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from gateway.bridge.client import BrokerSession, ConnectOptions, LastWill
from gateway.config import load_settings
from gateway.demo.broker import DeployedMosquitto, PrivateMosquitto

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PASSWORDS = {"lockgate": "gateway-secret", "central": "central-secret"}


@pytest.fixture
def deployed(broker: PrivateMosquitto) -> Iterator[DeployedMosquitto]:
    # ``broker`` makes the test need (and skip or fail like) the other broker tests.
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is missing (it comes with the mosquitto package)")
    with DeployedMosquitto(DEPLOY / "mosquitto", PASSWORDS) as b:
        yield b


def client(b: PrivateMosquitto, user: str, password: str | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        b.host,
        b.port,
        username=user,
        password=PASSWORDS[user] if password is None else password,
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"{user}-{uuid.uuid4().hex[:6]}",
    )


async def received(c: aiomqtt.Client, wait: float = 0.7) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    try:
        async with asyncio.timeout(wait):
            async for m in c.messages:
                got.append((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
    except TimeoutError:
        pass
    return got


def test_mosquitto_accepts_the_production_configuration(deployed: DeployedMosquitto) -> None:
    assert deployed.running
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    settings = dict(
        line.split(" ", 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    # Saves go by time (a full rewrite every few changes collapses throughput), and the
    # gateway's replay covers what a killed broker may have lost since the last one.
    assert settings["autosave_on_changes"] == "false"
    gateway = load_settings(DEPLOY / "lockgate.toml").mqtt
    assert 2 * int(settings["autosave_interval"]) <= gateway.replay_s
    assert int(settings["max_queued_messages"]) >= 100000
    assert int(settings["max_queued_bytes"]) > 0, "a stuck session cannot grow without bound"
    assert settings["use_username_as_clientid"] == "true"
    assert "persistent_client_expiration" in settings
    assert re.search(r"^#listener 8883", conf, re.M), "a TLS listener example"
    assert re.search(r"^#certfile ", conf, re.M)


async def test_the_acl_lets_only_the_gateway_publish_state(deployed: DeployedMosquitto) -> None:
    async with client(deployed, "central") as central, client(deployed, "lockgate") as gateway:
        await central.subscribe("lockgate/v1/credential/+/state", qos=1)
        await central.subscribe("lockgate/v1/events", qos=1)
        await central.subscribe("lockgate/v1/response/#", qos=1)
        await gateway.subscribe("lockgate/v1/request/+", qos=1)
        # A central system cannot publish state, events or responses ...
        await central.publish("lockgate/v1/credential/1/state", b"forged", qos=1, retain=True)
        await central.publish("lockgate/v1/events", b"forged", qos=1)
        await central.publish("lockgate/v1/response/person", b"forged", qos=1)
        assert await received(central) == []
        # ... but publishes requests, which the gateway reads;
        await central.publish("lockgate/v1/request/person", b"{}", qos=1)
        assert await received(gateway) == [("lockgate/v1/request/person", b"{}")]
        # the gateway publishes state, which central systems read.
        await gateway.publish("lockgate/v1/credential/1/state", b"{}", qos=1, retain=True)
        await gateway.publish("lockgate/v1/response/person", b"{}", qos=1)
        assert sorted(await received(central)) == [
            ("lockgate/v1/credential/1/state", b"{}"),
            ("lockgate/v1/response/person", b"{}"),
        ]
    # The forged retained state was never stored.
    async with client(deployed, "central") as late:
        await late.subscribe("lockgate/v1/credential/+/state", qos=1)
        assert await received(late) == [("lockgate/v1/credential/1/state", b"{}")]


def gateway_options(b: DeployedMosquitto) -> ConnectOptions:
    return ConnectOptions(
        host=b.host,
        port=b.port,
        client_id="lockgate-gateway",
        username="lockgate",
        password=PASSWORDS["lockgate"],
        session_expiry_s=600,
    )


async def test_another_account_cannot_take_over_or_delete_the_gateway_session(
    deployed: DeployedMosquitto,
) -> None:
    will = LastWill("lockgate/v1/bridge/state", b'{"state":"offline"}')
    async with BrokerSession(gateway_options(deployed), will=will) as gateway:
        await gateway.subscribe(["lockgate/v1/request/+"])
        # A central system connecting with the gateway's client id does not disconnect it.
        intruder = aiomqtt.Client(
            deployed.host,
            deployed.port,
            username="central",
            password=PASSWORDS["central"],
            protocol=aiomqtt.ProtocolVersion.V5,
            identifier="lockgate-gateway",
            clean_start=True,
        )
        async with intruder:
            await intruder.publish("lockgate/v1/request/person", b"while-connected", qos=1)
        got = await asyncio.wait_for(gateway.buffer.take(1), 5)
        assert [m.payload for m in got] == [b"while-connected"]
        gateway.ack(got[0])
    # The gateway is away: requests are queued in its persistent session ...
    async with client(deployed, "central") as central:
        for i in range(100):
            await central.publish("lockgate/v1/request/person", str(i).encode(), qos=1)
    # ... and a clean start under its client id by another account does not delete them.
    intruder = aiomqtt.Client(
        deployed.host,
        deployed.port,
        username="central",
        password=PASSWORDS["central"],
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier="lockgate-gateway",
        clean_start=True,
    )
    async with intruder:
        pass
    async with BrokerSession(gateway_options(deployed), will=will) as gateway:
        assert gateway.session_present
        await gateway.subscribe(["lockgate/v1/request/+"])
        received: list[bytes] = []
        while len(received) < 100:
            for m in await asyncio.wait_for(gateway.buffer.take(100), 5):
                received.append(m.payload)
                gateway.ack(m)
    assert received == [str(i).encode() for i in range(100)]


async def test_anonymous_and_wrong_passwords_are_refused(deployed: DeployedMosquitto) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(deployed, "central", "wrong"):
            pass
    anonymous = aiomqtt.Client(deployed.host, deployed.port, protocol=aiomqtt.ProtocolVersion.V5)
    with pytest.raises(aiomqtt.MqttError):
        async with anonymous:
            pass


def test_the_gateway_configuration_matches_the_broker() -> None:
    settings = load_settings(DEPLOY / "lockgate.toml")
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    m = settings.mqtt
    assert f"user {m.username}\n" in acl
    assert f"topic read {m.base_topic}/v1/request/+" in acl
    assert re.search(rf"^listener {m.port} {re.escape(m.host)}$", conf, re.M)
    assert m.password is None, "secrets come from the environment"
    assert m.session_expiry_s < 14 * 24 * 3600
