"""Install mode: a reader still on its default key (SCBK-D) is refused until an operator
installs its own key, and only then; a reader on some other key is not taken over.

(A reader without the secure channel cannot be simulated: libosdp's peripheral device always
advertises it.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.base import AllowEntry, ControllerEventKind, DeviceUnavailable
from drivers.osdp import OsdpReaderDriver, Scbk
from simulators.osdp import OsdpSimulator, ReaderSpec
from tests.drivers.osdp.conftest import DOOR1, DOOR2, driver_for, wait_for


@pytest.fixture
def reader_specs(keys: dict[int, Scbk]) -> list[ReaderSpec]:
    # Door 1's reader is fresh from the factory: no key of its own yet.
    return [ReaderSpec(DOOR1, None), ReaderSpec(DOOR2, keys[DOOR2])]


@pytest.fixture
async def panel(
    sim: OsdpSimulator, state_dir: Path, key_file: Path
) -> AsyncIterator[OsdpReaderDriver]:
    drv = driver_for(sim, state_dir, key_file)
    await drv.open()
    try:
        yield drv
    finally:
        await drv.close()


def _status(driver: OsdpReaderDriver, door: int) -> dict[str, object]:
    return driver.reader_status()[door - 1]


async def test_default_key_is_refused_until_an_operator_installs_the_key(
    panel: OsdpReaderDriver, sim: OsdpSimulator, keys: dict[int, Scbk]
) -> None:
    factory = sim.readers[DOOR1]
    # The panel keeps trying the reader with its own key and never falls back by itself.
    await wait_for(lambda: _status(panel, 1)["attempts"] >= 4, what="four sessions tried")
    assert not _status(panel, 1)["online"]
    assert "secure channel not established" in str(_status(panel, 1)["reason"])
    assert factory.scbk is None
    assert factory.commands() == []

    result = await panel.install_key(1)
    assert result.installed, result.detail
    assert (result.door, result.address) == (1, DOOR1)
    assert factory.scbk == keys[DOOR1]
    (keyset,) = [c for c in factory.commands() if c["command"] == "keyset"]
    assert keyset["accepted"] is True
    assert "data" not in keyset
    assert _status(panel, 1)["secure_channel"]

    await panel.write_allow_list([AllowEntry(4000123, 0b01)], [])
    assert factory.present(4000123)

    async def granted() -> bool:
        events = await panel.read_events(0)
        return any(e.kind is ControllerEventKind.GRANTED for e in events)

    await wait_for(granted, what="a grant at the installed reader")
    again = await panel.install_key(1)
    assert (again.installed, again.detail) == (False, "the reader already uses its own key")


async def test_install_works_on_a_bus_where_no_reader_is_online_yet(
    keys: dict[int, Scbk], state_dir: Path, key_file: Path
) -> None:
    async with OsdpSimulator([ReaderSpec(DOOR1, None)]) as sim:
        drv = driver_for(sim, state_dir, key_file, readers=[{"address": DOOR1}])
        with pytest.raises(DeviceUnavailable, match="secure channel not established"):
            await drv.open()
        result = await drv.install_key(1)
        assert result.installed, result.detail
        assert sim.readers[DOOR1].scbk == keys[DOOR1]
        await drv.open()
        try:
            assert (await drv.read_info()).doors == 1
        finally:
            await drv.close()


async def test_install_does_not_take_a_reader_that_has_another_key(
    state_dir: Path, key_file: Path, keys: dict[int, Scbk]
) -> None:
    foreign = Scbk.generate()
    async with OsdpSimulator([ReaderSpec(DOOR1, foreign)]) as sim:
        drv = driver_for(sim, state_dir, key_file, readers=[{"address": DOOR1}])
        result = await drv.install_key(1, timeout_s=5)
        assert not result.installed
        assert sim.readers[DOOR1].scbk == foreign
        assert not sim.readers[DOOR1].sc_active
        assert [c for c in sim.readers[DOOR1].commands() if c["command"] == "keyset"] == []
