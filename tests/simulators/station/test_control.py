"""The simulator's control interface over its real TCP socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from drivers.serialstation import SerialKeyStation
from drivers.serialstation.image import encode_image
from simulators.control import ControlClient, ControlError
from simulators.station import SimWorld, StationConfig, StationSimulator

from .test_cylinder import image


@pytest.fixture
async def control() -> AsyncIterator[tuple[StationSimulator, ControlClient]]:
    world = SimWorld(timezone="Europe/Stockholm")
    config = StationConfig(station_id="ctl-1", baudrate=0)
    async with (
        StationSimulator(world=world, config=config, control_port=0) as sim,
        ControlClient("127.0.0.1", sim.control_port) as client,
    ):
        yield sim, client


async def test_help_lists_the_commands(control: tuple[StationSimulator, ControlClient]) -> None:
    _, client = control
    commands = await client.call("help")
    for name in (
        "add_key", "insert", "remove", "visit", "keys", "key", "cylinders", "cylinder",
        "set_time", "clock", "fault", "status",
    ):  # fmt: skip
        assert name in commands


async def test_keys_insert_remove_and_status(
    control: tuple[StationSimulator, ControlClient],
) -> None:
    sim, client = control
    created = await client.call("add_key", serial="100000001")
    assert created["serial"] == "100000001"
    assert created["enabled"] is False
    await client.call("add_key", serial=100000002)
    assert [k["serial"] for k in await client.call("keys")] == ["100000001", "100000002"]
    await client.call("insert", serial="100000001")
    status = await client.call("status")
    assert (status["key"], status["pty"], status["station_id"]) == (
        "100000001",
        sim.pty_path,
        "ctl-1",
    )
    assert (await client.call("key", serial="100000001"))["location"] == "ctl-1"
    with pytest.raises(ControlError, match="already holds"):
        await client.call("insert", serial="100000002")
    await client.call("remove")
    with pytest.raises(ControlError, match="no key is inserted"):
        await client.call("remove")
    with pytest.raises(ControlError, match="no key"):
        await client.call("key", serial="999")


async def test_visits_follow_the_simulated_clock(
    control: tuple[StationSimulator, ControlClient],
) -> None:
    sim, client = control
    await client.call("add_key", serial="100000001")
    sim.world.registry.get("100000001").store(encode_image(image()))
    await client.call("add_cylinder", cylinder=4711)
    clock = await client.call("set_time", iso="2026-03-02T10:00:00+01:00")
    assert clock["now"].startswith("2026-03-02T09:00")
    assert clock["timezone"] == "Europe/Stockholm"
    assert await client.call("visit", serial="100000001", cylinder=4711) == {
        "granted": True,
        "reason": None,
        "blacklist_applied": None,
    }
    await client.call("set_time", iso="2026-03-07T10:00:00Z")
    denied = await client.call("visit", serial="100000001", cylinder="4711")
    assert (denied["granted"], denied["reason"]) == (False, "OUTSIDE_SCHEDULE")
    detail = await client.call("cylinder", cylinder=4711, limit=1)
    assert detail["event_count"] == 2
    assert [e["reason"] for e in detail["events"]] == ["OUTSIDE_SCHEDULE"]
    assert await client.call("cylinders") == [
        {"cylinder": 4711, "blacklist_version": 0, "event_count": 2}
    ]
    with pytest.raises(ControlError, match="cylinder: no cylinder 5"):
        await client.call("visit", serial="100000001", cylinder=5)
    with pytest.raises(ControlError, match="iso"):
        await client.call("set_time", iso="2026-03-07T10:00:00")
    with pytest.raises(ControlError, match="cylinder"):
        await client.call("add_cylinder", cylinder=0)
    reset = await client.call("reset_clock")
    assert reset["offset_s"] == 0


async def test_faults_through_control(control: tuple[StationSimulator, ControlClient]) -> None:
    sim, client = control
    state = await client.call("fault", kind="corrupt", count=3, direction="tx")
    assert state["corrupt_tx"] == 3
    assert sim.faults.corrupt_tx == 3
    assert (await client.call("faults"))["corrupt_tx"] == 3
    with pytest.raises(ControlError, match="kind"):
        await client.call("fault", kind="melt")
    await client.call("fault", kind="clear")
    assert sim.faults.corrupt_tx == 0


async def test_reconnect_after_a_disconnect(
    control: tuple[StationSimulator, ControlClient],
) -> None:
    sim, client = control
    with pytest.raises(ControlError, match="still connected"):
        await client.call("reconnect")
    await client.call("add_key", serial="100000001")
    await client.call("insert", serial="100000001")
    async with SerialKeyStation(port=sim.pty_path, timeout_s=0.3) as station:
        await client.call("fault", kind="pull_key", after_chunks=0)
        await client.call("fault", kind="disconnect", after_chunks=0)
        sim.faults.pull_key_after_chunks = None
        with pytest.raises(Exception, match="link"):
            await station.write_key(image())
    await sim.device.disconnected.wait()
    path = (await client.call("reconnect"))["pty"]
    async with SerialKeyStation(port=path, timeout_s=0.3) as station:
        assert station.info.station_id == "ctl-1"
