"""Simulated UHPPOTE controllers on 127.0.0.1 (UDP and TCP on a free port) and the
independent ``uhppoted`` client aimed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from uhppoted.uhppote_async import UhppoteAsync

from simulators.control import ControlClient
from simulators.uhppote import UhppoteController, UhppoteServer, UhppoteSimulator

SERIAL = 405419896
SECOND = 303986753
TIMEOUT_S = 1.0


@pytest.fixture
def controller() -> UhppoteController:
    return UhppoteController(
        SERIAL, doors=4, capacity=50, event_capacity=8, timezone="Europe/Stockholm"
    )


@pytest.fixture
def second() -> UhppoteController:
    return UhppoteController(SECOND, doors=2, capacity=50, timezone="Europe/Stockholm")


@pytest.fixture
async def sim(
    controller: UhppoteController, second: UhppoteController
) -> AsyncIterator[UhppoteSimulator]:
    simulator = UhppoteSimulator(UhppoteServer([controller, second]))
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


@pytest.fixture
def client() -> UhppoteAsync:
    return UhppoteAsync(bind="127.0.0.1")


@pytest.fixture(params=["udp", "tcp"])
def target(request: pytest.FixtureRequest, sim: UhppoteSimulator) -> tuple[int, str, str]:
    """The controller as the uhppoted API names it: (serial, address, protocol)."""
    return (SERIAL, f"127.0.0.1:{sim.server.port}", str(request.param))
