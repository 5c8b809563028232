"""A simulated UHPPOTE controller (UDP and TCP on a free port of 127.0.0.1), its control
client, and drivers connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.uhppote import UhppoteDoorController
from simulators.control import ControlClient
from simulators.uhppote import UhppoteController, UhppoteServer, UhppoteSimulator

SERIAL = 423187757
TZ = "Europe/Stockholm"
TIMEOUT_S = 0.25
RETRIES = 1


@pytest.fixture
def controller() -> UhppoteController:
    return UhppoteController(SERIAL, doors=4, capacity=1200, event_capacity=30, timezone=TZ)


@pytest.fixture
async def sim(controller: UhppoteController) -> AsyncIterator[UhppoteSimulator]:
    simulator = UhppoteSimulator(UhppoteServer([controller]))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.close()


@pytest.fixture
async def control(sim: UhppoteSimulator) -> AsyncIterator[ControlClient]:
    assert sim.control is not None
    async with ControlClient("127.0.0.1", sim.control.port) as client:
        yield client


def driver_for(sim: UhppoteSimulator, **options: Any) -> UhppoteDoorController:
    return UhppoteDoorController.from_options(
        {
            "device_id": "uhppote-test",
            **sim.driver_options(SERIAL),
            "bind": "127.0.0.1",
            "timeout_s": TIMEOUT_S,
            "retries": RETRIES,
            **options,
        }
    )


@pytest.fixture
async def driver(sim: UhppoteSimulator) -> AsyncIterator[UhppoteDoorController]:
    async with driver_for(sim, listen="127.0.0.1:0") as d:
        yield d
