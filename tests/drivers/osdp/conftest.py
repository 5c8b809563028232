"""Simulated OSDP readers on a pseudo-terminal (libosdp peripheral devices with the secure
channel), their control client, and the driver as their control panel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from drivers.osdp import OsdpReaderDriver, Scbk
from drivers.osdp.keys import store_keys
from simulators.control import ControlClient
from simulators.osdp import OsdpSimulator, ReaderSpec

T = TypeVar("T")

DOOR1, DOOR2 = 101, 102
"""Reader addresses: door 1 and door 2."""


async def wait_for(
    probe: Callable[[], Awaitable[T] | T], *, timeout: float = 15.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def keys() -> dict[int, Scbk]:
    return {DOOR1: Scbk.generate(), DOOR2: Scbk.generate()}


@pytest.fixture
def key_file(tmp_path: Path, keys: dict[int, Scbk]) -> Path:
    path = tmp_path / "panel-keys.json"
    store_keys(path, keys)
    return path


@pytest.fixture
def reader_specs(keys: dict[int, Scbk]) -> list[ReaderSpec]:
    return [ReaderSpec(DOOR1, keys[DOOR1]), ReaderSpec(DOOR2, keys[DOOR2])]


@pytest.fixture
async def sim(reader_specs: list[ReaderSpec]) -> AsyncIterator[OsdpSimulator]:
    simulator = OsdpSimulator(reader_specs)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.close()


@pytest.fixture
async def control(sim: OsdpSimulator) -> AsyncIterator[ControlClient]:
    assert sim.control is not None
    client = ControlClient("127.0.0.1", sim.control.port)
    await client.connect()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def driver_for(
    sim: OsdpSimulator, state_dir: Path, key_file: Path, **options: Any
) -> OsdpReaderDriver:
    return OsdpReaderDriver.from_options(
        {
            "device_id": "osdp-test",
            **sim.driver_options(),
            "state_dir": str(state_dir),
            "key_file": str(key_file),
            "retry_s": 0.5,
            "connect_timeout_s": 3.0,
            **options,
        }
    )


@pytest.fixture
async def driver(
    sim: OsdpSimulator, state_dir: Path, key_file: Path
) -> AsyncIterator[OsdpReaderDriver]:
    drv = driver_for(sim, state_dir, key_file)
    await drv.open()
    try:
        await wait_for(
            lambda: all(r["secure_channel"] for r in drv.reader_status()),
            what="every reader online",
        )
        yield drv
    finally:
        await drv.close()
