"""The UHPPOTE driver passes the driver conformance kit against the simulated controller, over
UDP and TCP, with pushed events received on a listener.

The device has no atomic commit (``atomic_writes`` is False): the kit's "old list or new"
after a cancelled write holds because the driver forgets its verified copy and the checksum
is of what the controller really holds, read again in full."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from drivers.base import DoorController
from drivers.uhppote import UhppoteDoorController
from simulators.uhppote import UhppoteController, UhppoteServer, UhppoteSimulator
from tests.drivers.conformance import DoorControllerContract, DoorRig

SERIAL = 405419896


@dataclass
class UhppoteRig:
    sim: UhppoteSimulator
    controller: UhppoteController
    transport: str
    doors: int
    capacity: int

    def _options(self) -> dict[str, object]:
        return {
            **self.sim.driver_options(SERIAL),
            "device_id": "conformance",
            "transport": self.transport,
            "bind": "127.0.0.1",
            "listen": "127.0.0.1:0",
            "timeout_s": 0.3,
            "retries": 1,
        }

    def driver(self) -> DoorController:
        return UhppoteDoorController.from_options(self._options())

    def unreachable_driver(self) -> DoorController:
        kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as s:  # a port that nobody serves
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return UhppoteDoorController.from_options(
            {**self._options(), "address": f"127.0.0.1:{port}", "listen": None}
        )

    async def present(self, credential: int, door: int) -> bool:
        return self.controller.present(credential, door).granted

    async def power_loss(self) -> None:
        self.controller.power_loss()

    async def stall(self) -> None:
        self.sim.server.faults.drop = -1


@pytest.fixture(params=["udp", "tcp"])
async def door_rig(request: pytest.FixtureRequest) -> AsyncIterator[DoorRig]:
    controller = UhppoteController(SERIAL, doors=4, capacity=500, timezone="Europe/Stockholm")
    sim = UhppoteSimulator(UhppoteServer([controller]), control_port=None)
    await sim.start()
    try:
        yield UhppoteRig(sim, controller, request.param, doors=4, capacity=500)
    finally:
        await sim.close()


class TestUhppoteDoorController(DoorControllerContract):
    pass
