"""The serial key station passes the driver conformance kit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from drivers.base import AuditOutcome, KeyStation
from drivers.serialstation import SerialKeyStation
from simulators.station import SimWorld, StationConfig, StationSimulator
from tests.drivers.conformance import KeyStationContract, StationRig


@dataclass
class SerialRig:
    sim: StationSimulator
    serial: str = "100000001"

    def driver(self) -> KeyStation:
        return SerialKeyStation(
            port=self.sim.pty_path, device_id="conformance", timeout_s=0.3, retries=3
        )

    def unreachable_driver(self) -> KeyStation:
        return SerialKeyStation(port="/dev/lockgate-no-such-port", device_id="absent")

    async def insert(self, serial: str) -> None:
        self.sim.device.insert(serial)

    async def remove(self) -> None:
        self.sim.device.remove()

    async def add_audit(self, serial: str, count: int) -> None:
        key = self.sim.world.registry.get(serial)
        for i in range(count):
            key.record_own(
                at=datetime(2026, 3, 2, 10, i, tzinfo=UTC),
                cylinder=100_000 + i,
                outcome=AuditOutcome.GRANTED,
            )

    async def stall(self) -> None:
        self.sim.faults.set("drop", count=-1, direction="both")


@pytest.fixture
async def station_rig() -> AsyncIterator[StationRig]:
    world = SimWorld()
    world.add_key("100000001")
    config = StationConfig(station_id="conformance-1", baudrate=115200)
    async with StationSimulator(world=world, config=config, control_port=None) as sim:
        yield SerialRig(sim)


class TestSerialKeyStation(KeyStationContract):
    pass
