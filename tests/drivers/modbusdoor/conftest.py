"""A simulated controller (Modbus TCP on 127.0.0.1 or RTU on a pty pair), its control
client, and a driver connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.modbusdoor import ModbusDoorController
from simulators.control import ControlClient
from simulators.controller import ControllerMemory, ControllerServer, ControllerSimulator

TIMEOUT_S = 0.3
RETRIES = 1


@pytest.fixture(params=["tcp", "rtu"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def memory() -> ControllerMemory:
    return ControllerMemory(
        controller_id="door-ctl-test", doors=4, capacity=300, schedule_slots=8, event_capacity=40
    )


@pytest.fixture
async def sim(memory: ControllerMemory, transport: str) -> AsyncIterator[ControllerSimulator]:
    server = ControllerServer(memory, transport="tcp" if transport == "tcp" else "rtu")
    simulator = ControllerSimulator(server)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.close()


@pytest.fixture
async def control(sim: ControllerSimulator) -> AsyncIterator[ControlClient]:
    assert sim.control is not None
    client = ControlClient("127.0.0.1", sim.control.port)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


def driver_for(sim: ControllerSimulator, **options: Any) -> ModbusDoorController:
    return ModbusDoorController.from_options(
        {
            "device_id": "door-test",
            **sim.driver_options(),
            "timeout_s": TIMEOUT_S,
            "retries": RETRIES,
            **options,
        }
    )


@pytest.fixture
async def driver(sim: ControllerSimulator) -> AsyncIterator[ModbusDoorController]:
    drv = driver_for(sim)
    await drv.open()
    try:
        yield drv
    finally:
        await drv.close()
