"""The Modbus door controller passes the driver conformance kit, over TCP and RTU."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from drivers.base import DoorController
from drivers.modbusdoor import ModbusDoorController
from simulators.controller import ControllerMemory, ControllerServer
from tests.drivers.conformance import DoorControllerContract, DoorRig


@dataclass
class ModbusRig:
    server: ControllerServer
    doors: int
    capacity: int

    def driver(self) -> DoorController:
        return ModbusDoorController.from_options(
            {**self.server.describe(), "device_id": "conformance", "timeout_s": 0.3, "retries": 1}
        )

    def unreachable_driver(self) -> DoorController:
        if self.server.transport == "rtu":
            return ModbusDoorController.from_options(
                {"transport": "rtu", "port": "/dev/lockgate-no-such-port"}
            )
        with socket.socket() as s:  # a port that nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return ModbusDoorController.from_options({"host": "127.0.0.1", "port": port})

    async def present(self, credential: int, door: int) -> bool:
        return self.server.memory.present(credential, door).granted

    async def power_loss(self) -> None:
        await self.server.restart()

    async def stall(self) -> None:
        self.server.delay_s = 60.0  # the server wakes delayed replies when it closes


@pytest.fixture(params=["tcp", "rtu"])
async def door_rig(request: pytest.FixtureRequest) -> AsyncIterator[DoorRig]:
    memory = ControllerMemory(controller_id="conformance-1", doors=4, capacity=500)
    server = ControllerServer(memory, transport=request.param, baudrate=115200)
    await server.start()
    try:
        yield ModbusRig(server, doors=4, capacity=500)
    finally:
        await server.close()


class TestModbusDoorController(DoorControllerContract):
    pass
