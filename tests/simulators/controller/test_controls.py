"""The simulator's control interface, over its JSON-lines TCP socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from simulators.control import ControlClient, ControlError
from simulators.controller import (
    FAULT_KINDS,
    ControllerMemory,
    ControllerServer,
    ControllerSimulator,
)


@pytest.fixture
async def sim() -> AsyncIterator[ControllerSimulator]:
    memory = ControllerMemory(controller_id="ctl-ctl", doors=2, capacity=10)
    async with ControllerSimulator(ControllerServer(memory)) as simulator:
        yield simulator


@pytest.fixture
async def control(sim: ControllerSimulator) -> AsyncIterator[ControlClient]:
    assert sim.control is not None
    async with ControlClient("127.0.0.1", sim.control.port) as client:
        yield client


async def test_help_lists_the_commands(control: ControlClient) -> None:
    commands = await control.call("help")
    assert set(commands) >= {"present", "door", "status", "power_loss", "set_time", "fault"}


async def test_present_and_status(control: ControlClient, sim: ControllerSimulator) -> None:
    reply = await control.call("present", credential=42, door=2)
    assert reply == {"granted": False, "reason": "unknown_credential", "sequence": 1}
    status = await control.call("status")
    assert status["controller_id"] == "ctl-ctl"
    assert status["events"]["stored"] == 1
    assert status["listening"] == sim.driver_options()
    assert [d["door"] for d in status["doors"]] == [1, 2]
    assert status["timezone"] == "Europe/Stockholm"


async def test_door_moves(control: ControlClient) -> None:
    state = await control.call("door", door=1, open=True)
    assert state["open"] is True
    assert state["forced"] is True
    assert state["mode"] == "locked"
    state = await control.call("door", door=1, open=False)
    assert (state["open"], state["forced"]) == (False, False)


async def test_set_time_and_power_loss(control: ControlClient, sim: ControllerSimulator) -> None:
    reply = await control.call("set_time", at="2026-06-01T12:00:00Z", frozen=True)
    assert reply["clock"].startswith("2026-06-01T14:00:00+02:00")
    generation = sim.memory.generation
    assert await control.call("power_loss") == {"generation": generation + 1}
    assert (await control.call("status"))["clock"] == "2026-06-01T12:00:00+00:00"


async def test_faults(control: ControlClient, sim: ControllerSimulator) -> None:
    reply = await control.call("fault", kind="delay", seconds=0.5)
    assert reply["delay_s"] == 0.5
    reply = await control.call("fault", kind="reject_commits")
    assert reply["reject_commits"] is True
    reply = await control.call("fault", kind="commit_busy", seconds=1)
    assert reply["commit_busy_s"] == 1.0
    reply = await control.call("fault", kind="clear")
    assert reply == {
        "delay_s": 0.0,
        "reject_commits": False,
        "corrupt_commits": False,
        "commit_busy_s": 0.0,
        "generation": sim.memory.generation,
    }
    generation = sim.memory.generation
    assert (await control.call("fault", kind="restart"))["generation"] == generation + 1
    assert "restart" in FAULT_KINDS


@pytest.mark.parametrize(
    ("command", "arguments", "message"),
    [
        ("present", {"credential": "7", "door": 1}, "credential: must be an integer"),
        ("present", {"credential": 7, "door": 3}, "door: must be in 1..2"),
        ("present", {"credential": 7}, "bad arguments"),
        ("door", {"door": 1, "open": "yes"}, "open: must be true or false"),
        ("set_time", {"at": "yesterday"}, "at: 'yesterday' is not"),
        ("set_time", {"at": "2026-06-01T12:00:00"}, "at: must carry a time zone"),
        ("fault", {"kind": "meteor"}, "kind: must be one of"),
        ("fault", {"kind": "delay", "seconds": -1}, "seconds: must be in"),
        ("fault", {"kind": "delay", "minutes": 1}, "minutes: not an argument"),
        ("fault", {"kind": "drop", "seconds": 1}, "seconds: a TCP drop"),
        ("fault", {"kind": "reject_commits", "enabled": 1}, "enabled: must be true or false"),
    ],
)
async def test_bad_commands_name_the_argument(
    control: ControlClient, command: str, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ControlError, match=message):
        await control.call(command, **arguments)


async def test_in_process_use_without_a_control_server() -> None:
    memory = ControllerMemory(controller_id="quiet", capacity=5)
    async with ControllerSimulator(ControllerServer(memory), control_port=None) as simulator:
        assert simulator.control is None
        assert "control_port" not in simulator.describe()
        assert (await simulator.present(credential=3, door=1))["granted"] is False
