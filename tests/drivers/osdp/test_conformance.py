"""The OSDP panel driver passes the driver conformance kit, against two simulated readers
(libosdp peripheral devices) on a pseudo-terminal with the secure channel on.

Here the "controller" is lockgate itself: what a controller keeps is the panel's state
directory, so its memory loss is that directory lost; a stalled device is every reader
falling silent."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.base import DoorController
from drivers.osdp import OsdpReaderDriver, Scbk
from drivers.osdp.keys import store_keys
from simulators.osdp import OsdpSimulator, ReaderSpec
from tests.drivers.conformance import DoorControllerContract, DoorRig

ADDRESSES = (21, 22)


@dataclass
class OsdpRig:
    sim: OsdpSimulator
    state_dir: Path
    key_file: Path
    doors: int = len(ADDRESSES)
    capacity: int = 500

    def _options(self) -> dict[str, object]:
        return {
            **self.sim.driver_options(),
            "device_id": "conformance",
            "state_dir": str(self.state_dir),
            "key_file": str(self.key_file),
            "capacity": self.capacity,
            "retry_s": 0.5,
            "connect_timeout_s": 3.0,
        }

    def driver(self) -> DoorController:
        return OsdpReaderDriver.from_options(self._options())

    def unreachable_driver(self) -> DoorController:
        return OsdpReaderDriver.from_options(
            {**self._options(), "port": "/dev/lockgate-no-such-port"}
        )

    async def present(self, credential: int, door: int) -> bool:
        """Present a card; the door opened when the reader was told to pulse its output."""
        reader = self.sim.readers[ADDRESSES[door - 1]]
        reader.commands(clear=True)
        assert reader.present(credential)
        async with asyncio.timeout(15):
            while True:
                # Only a grant pulses the output; only a denial shows red. (The green LED and
                # the beep of an earlier grant may still be on their way.)
                for c in reader.commands():
                    if c["command"] == "output":
                        return True
                    if c.get("on_color_name") == "red":
                        return False
                await asyncio.sleep(0.01)

    async def power_loss(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self.state_dir)

    async def stall(self) -> None:
        for reader in self.sim.readers.values():
            reader.set_offline(True)


@pytest.fixture
async def door_rig(tmp_path: Path) -> AsyncIterator[DoorRig]:
    keys = {a: Scbk.generate() for a in ADDRESSES}
    key_file = tmp_path / "keys.json"
    store_keys(key_file, keys)
    async with OsdpSimulator([ReaderSpec(a, keys[a]) for a in ADDRESSES]) as sim:
        yield OsdpRig(sim, tmp_path / "state", key_file)


class TestOsdpReaderDriver(DoorControllerContract):
    pass
