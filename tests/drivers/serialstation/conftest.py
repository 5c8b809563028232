"""Fixtures: a simulated station on a real pseudo-terminal and the driver connected to it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from drivers.base import AccessEntry, BlacklistEntry, HardwareSchedule, KeyImage, ScheduleWindow
from drivers.serialstation import SerialKeyStation
from simulators.station import FaultPlan, SimWorld, StationConfig, StationSimulator

SERIAL = "100000001"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2027, 1, 1, tzinfo=UTC)


def access_list(n: int, *, seed: int = 1) -> tuple[AccessEntry, ...]:
    rnd = random.Random(seed)
    cylinders = sorted(rnd.sample(range(100_000, 200_000), n))
    return tuple(
        AccessEntry(c, T0 if i % 3 else None, T1 if i % 5 else None, 1 if i % 7 == 0 else 0)
        for i, c in enumerate(cylinders)
    )


def make_image(
    revision: int = 1, *, serial: str = SERIAL, entries: int = 50, **changes: object
) -> KeyImage:
    fields: dict[str, object] = {
        "serial": serial,
        "revision": f"{revision:016x}",
        "enabled": True,
        "valid_from": T0,
        "valid_until": T1,
        "revalidate_by": datetime(2026, 6, 1, tzinfo=UTC),
        "schedules": (HardwareSchedule(1, (ScheduleWindow(0x1F, 7 * 60, 18 * 60),)),),
        "access": access_list(entries),
        "blacklists": (BlacklistEntry(100_001, 4, ("100000007", "100000009")),),
    }
    fields.update(changes)
    return KeyImage(**fields)  # type: ignore[arg-type]


@pytest.fixture
def world() -> SimWorld:
    w = SimWorld()
    w.add_key(SERIAL)
    w.add_key("100000002")
    return w


@pytest.fixture
def faults() -> FaultPlan:
    return FaultPlan(seed=7)


@pytest.fixture
def config() -> StationConfig:
    return StationConfig(station_id="desk-1", baudrate=115200, max_payload=256)


@pytest.fixture
async def sim(
    world: SimWorld, config: StationConfig, faults: FaultPlan
) -> AsyncIterator[StationSimulator]:
    async with StationSimulator(
        world=world, config=config, faults=faults, control_port=None
    ) as simulator:
        yield simulator


@pytest.fixture
async def station(sim: StationSimulator) -> AsyncIterator[SerialKeyStation]:
    driver = SerialKeyStation(port=sim.pty_path, device_id="desk-1", timeout_s=0.3, retries=3)
    await driver.open()
    try:
        yield driver
    finally:
        await driver.close()
