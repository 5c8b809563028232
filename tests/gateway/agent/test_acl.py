"""deploy/mosquitto/acl on a real Mosquitto: each agent account (named as its site) reads and
writes only its own site's topics, cannot write desired state, and the core's site hub
serves the agents through it end to end."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from gateway.agent import Agent
from gateway.demo.broker import DeployedMosquitto, PrivateMosquitto
from tests import sample
from tests.gateway.agent.brokers import DEPLOY, PASSWORDS
from tests.gateway.agent.facts import tag
from tests.gateway.agent.harness import agent_settings, running_core, state_file, until
from tests.gateway.agent.stationsite import station_site

SITE = "lockgate/v1/site"


@pytest.fixture
def deployed(broker: PrivateMosquitto) -> Iterator[DeployedMosquitto]:
    if shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto_passwd is missing (it comes with the mosquitto package)")
    with DeployedMosquitto(DEPLOY / "mosquitto", PASSWORDS) as b:
        yield b


def client(b: PrivateMosquitto, user: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        b.host,
        b.port,
        username=user,
        password=PASSWORDS[user],
        protocol=aiomqtt.ProtocolVersion.V5,
        identifier=f"{user}-{uuid.uuid4().hex[:6]}",
    )


async def received(c: aiomqtt.Client, wait: float = 0.7) -> set[tuple[str, bytes]]:
    got: set[tuple[str, bytes]] = set()
    try:
        async with asyncio.timeout(wait):
            async for m in c.messages:
                got.add((m.topic.value, bytes(m.payload)))  # type: ignore[arg-type]
    except TimeoutError:
        pass
    return got


async def test_an_agent_account_reaches_only_its_own_site(deployed: DeployedMosquitto) -> None:
    async with (
        client(deployed, "lockgate-sites") as hub,
        client(deployed, "north") as north,
        client(deployed, "central") as central,
    ):
        await hub.subscribe(f"{SITE}/#", qos=1)
        await north.subscribe(f"{SITE}/#", qos=1)
        await central.subscribe(f"{SITE}/#", qos=1)
        # the hub writes every site's desired state and acknowledgements
        for site in ("north", "south"):
            await hub.publish(f"{SITE}/{site}/desired", b"d-" + site.encode(), qos=1)
            await hub.publish(f"{SITE}/{site}/ack", b"a-" + site.encode(), qos=1)
            await hub.publish(f"{SITE}/{site}/key_image", b"k-" + site.encode(), qos=1)
        # north writes its own reports; tries to write south's and to forge desired state
        for kind in (
            "confirm",
            "events",
            "state",
            "key_request",
            "key_visit",
            "key_confirm",
            "key_failed",
        ):
            await north.publish(f"{SITE}/north/{kind}", b"n-" + kind.encode(), qos=1)
            await north.publish(f"{SITE}/south/{kind}", b"forged", qos=1)
        await north.publish(f"{SITE}/north/desired", b"forged", qos=1)
        await north.publish(f"{SITE}/south/desired", b"forged", qos=1)
        await north.publish(f"{SITE}/north/key_image", b"forged", qos=1)
        north_got, hub_got, central_got = await asyncio.gather(
            received(north), received(hub), received(central)
        )
    assert north_got == {
        (f"{SITE}/north/desired", b"d-north"),
        (f"{SITE}/north/ack", b"a-north"),
        (f"{SITE}/north/key_image", b"k-north"),
    }
    assert hub_got == {
        (f"{SITE}/north/confirm", b"n-confirm"),
        (f"{SITE}/north/events", b"n-events"),
        (f"{SITE}/north/state", b"n-state"),
        (f"{SITE}/north/key_request", b"n-key_request"),
        (f"{SITE}/north/key_visit", b"n-key_visit"),
        (f"{SITE}/north/key_confirm", b"n-key_confirm"),
        (f"{SITE}/north/key_failed", b"n-key_failed"),
    }
    assert central_got == set(), "central systems see no site traffic"


async def test_the_hub_and_an_agent_work_through_the_deployed_acl(
    deployed: DeployedMosquitto, tmp_path: Path
) -> None:
    hub_account = ("lockgate-sites", PASSWORDS["lockgate-sites"])
    db_url = f"sqlite:///{tmp_path}/core.db"
    async with running_core(db_url, deployed, ["n1"], account=hub_account) as run:
        settings = agent_settings(
            deployed,
            {"n1": run.simulators["n1"].driver_options()},
            username="north",
            password=PASSWORDS["north"],
        )
        async with Agent(settings, "north", state_file(tmp_path, "north"), resend_s=1.0):
            await until(lambda: run.all_confirmed(["n1"]), what="the first sync")
            await run.block(0)
            await until(lambda: not run.holds("n1", tag(0)), what="the revocation")
            await until(lambda: run.settled(tag(0)), what="the confirmation")


async def test_a_key_at_an_agent_station_is_served_through_the_deployed_acl(
    deployed: DeployedMosquitto, tmp_path: Path
) -> None:
    async with station_site(
        f"sqlite:///{tmp_path}/core.db",
        deployed,
        tmp_path,
        "north",
        hub_account=("lockgate-sites", PASSWORDS["lockgate-sites"]),
        agent_password=PASSWORDS["north"],
    ) as run:
        visit = await run.program(sample.KEY_CECILIA)
        assert (visit.outcome, visit.answered) == ("written", True)
        await until(lambda: run.agent.store.waiting() == 0, what="the confirmation acknowledged")
        assert [b["key"] for b in run.events("key_programmed")] == [sample.KEY_CECILIA]
