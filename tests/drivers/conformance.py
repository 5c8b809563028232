"""Conformance kit: what every driver must do, whatever its protocol (``drivers/base.py``).

A driver's test module runs the kit by providing one fixture and naming one class::

    @pytest.fixture
    async def door_rig() -> AsyncIterator[DoorRig]:
        ...  # a device (a simulator) and a way to build drivers connected to it
        yield rig

    class TestAcmeDoorController(DoorControllerContract):
        pass

(``station_rig`` and :class:`KeyStationContract` for key stations). The rig speaks to the
device directly, not through the driver: it presents credentials at readers, inserts keys,
cuts the power, makes the device fall silent. Everything else the tests do through the
contract alone, so they hold for every driver.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from drivers.base import (
    AccessEntry,
    AllowEntry,
    ControllerEventKind,
    ControllerSettings,
    DeviceUnavailable,
    DoorController,
    DoorMode,
    Driver,
    KeyEvent,
    KeyEventKind,
    KeyImage,
    KeyStation,
    NoKeyInserted,
    StationCapability,
    WriteProgress,
)

GUARD_S = 60.0
"""A call that has not ended after this long hangs (the contract says every call ends by
itself); a bound for the test, not a speed requirement."""

# ------------------------------------------------------------------------------ rigs


class DoorRig(Protocol):
    """A door controller under test and the hands that act on it besides the driver."""

    doors: int
    capacity: int

    def driver(self) -> DoorController:
        """A new driver for the device, not opened."""

    def unreachable_driver(self) -> DoorController:
        """A driver configured for a device that is not there."""

    async def present(self, credential: int, door: int) -> bool:
        """Present ``credential`` at the reader of ``door``; whether the door opened."""

    async def power_loss(self) -> None:
        """The controller loses its power (and its volatile memory) and comes back."""

    async def stall(self) -> None:
        """The device stops answering (until the rig is torn down)."""


class StationRig(Protocol):
    """A key station under test, a few keys, and hands that insert and pull them."""

    serial: str
    """A key that exists and is not inserted."""

    def driver(self) -> KeyStation:
        """A new driver for the station, not opened."""

    def unreachable_driver(self) -> KeyStation:
        """A driver configured for a station that is not there."""

    async def insert(self, serial: str) -> None: ...

    async def remove(self) -> None: ...

    async def add_audit(self, serial: str, count: int) -> None:
        """Give key ``serial`` ``count`` more records in its audit trail."""

    async def stall(self) -> None:
        """The station stops answering (until the rig is torn down)."""


# ------------------------------------------------------------------------------ helpers


@contextlib.asynccontextmanager
async def opened(driver: Driver) -> AsyncIterator[None]:
    await driver.open()
    try:
        yield
    finally:
        await driver.close()


def check_progress(reports: list[WriteProgress]) -> None:
    """Progress as the contract describes it: per attempt a constant total, done growing
    strictly within 0 < done <= total; the last report has done == total."""
    assert reports, "a successful write reports progress"
    previous: WriteProgress | None = None
    for report in reports:
        assert 0 < report.done <= report.total, report
        if previous is not None and report.total == previous.total:
            assert report.done > previous.done, (previous, report)
        elif previous is not None:  # a new attempt (a fallback) starts over
            assert report.done <= report.total
        previous = report
    assert reports[-1].done == reports[-1].total


async def _cancel_at_first_progress(write: asyncio.Future[object], started: asyncio.Event) -> bool:
    """Cancel ``write`` as soon as it reported progress; whether it was still running."""
    waiter = asyncio.create_task(started.wait(), name="conformance: first progress")
    await asyncio.wait({write, waiter}, return_when=asyncio.FIRST_COMPLETED)
    cancelled = not write.done()
    for task in (write, waiter):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return cancelled


def _entries(credentials: range, doors: int) -> list[AllowEntry]:
    """One entry per credential, for door 1 (and door 2 when there is one)."""
    mask = 0b11 if doors > 1 else 0b1
    return [AllowEntry(credential=c, doors_mask=mask) for c in credentials]


# ------------------------------------------------------------------------------ doors


class DoorControllerContract:
    """The contract of :class:`~drivers.base.DoorController`; needs the fixture
    ``door_rig``."""

    async def test_life_cycle(self, door_rig: DoorRig) -> None:
        driver = door_rig.driver()
        await driver.open()
        info = await driver.read_info()
        assert (info.doors, info.capacity) == (door_rig.doors, door_rig.capacity)
        await driver.close()
        await driver.close()
        with pytest.raises(DeviceUnavailable):
            await driver.read_checksum()
        await driver.open()  # the same object connects again
        assert (await driver.read_info()).controller_id == info.controller_id
        await driver.close()

    async def test_an_absent_device_is_unavailable(self, door_rig: DoorRig) -> None:
        driver = door_rig.unreachable_driver()
        with pytest.raises(DeviceUnavailable):
            async with asyncio.timeout(GUARD_S):
                await driver.open()
        await driver.close()

    async def test_the_allow_list_is_verified_and_enforced(self, door_rig: DoorRig) -> None:
        driver = door_rig.driver()
        async with opened(driver):
            entries = [
                AllowEntry(credential=1001, doors_mask=0b1),
                AllowEntry(
                    credential=1002,
                    doors_mask=0b1,
                    valid_until=datetime.now(UTC) - timedelta(days=1),
                ),
            ]
            result = await driver.write_allow_list(entries, [])
            assert result.entries == 2
            assert await driver.read_checksum() == result.checksum
            assert await door_rig.present(1001, 1)
            assert not await door_rig.present(1002, 1)
            assert not await door_rig.present(424242, 1)
            events = await driver.read_events(0)
            assert [e.kind for e in events] == [
                ControllerEventKind.GRANTED,
                ControllerEventKind.DENIED,
                ControllerEventKind.DENIED,
            ]
            assert [e.credential for e in events] == [1001, 1002, 424242]
            sequences = [e.sequence for e in events]
            assert sequences == sorted(set(sequences))
            assert events[0].reason is None
            assert all(e.reason is not None for e in events[1:]), "every denial says why"
            assert events[1].reason != events[2].reason
            assert all(e.at.tzinfo is not None for e in events)
            await driver.ack_events(sequences[-1])
            assert await driver.read_events(sequences[-1]) == []

    async def test_progress_is_reported_as_the_contract_says(self, door_rig: DoorRig) -> None:
        driver = door_rig.driver()
        reports: list[WriteProgress] = []
        async with opened(driver):
            count = min(door_rig.capacity, 300)
            await driver.write_allow_list(
                _entries(range(1, count + 1), door_rig.doors), [], progress=reports.append
            )
            check_progress(reports)
            reports.clear()
            await driver.write_allow_list(  # the same list less one: a small write
                _entries(range(2, count + 1), door_rig.doors), [], progress=reports.append
            )
            check_progress(reports)

    async def test_a_cancelled_write_leaves_the_old_list_or_the_new(
        self, door_rig: DoorRig
    ) -> None:
        driver = door_rig.driver()
        async with opened(driver):
            old = await driver.write_allow_list(_entries(range(1, 3), door_rig.doors), [])
            new_list = _entries(range(100, 100 + min(door_rig.capacity, 300)), door_rig.doors)
            started = asyncio.Event()
            write = asyncio.ensure_future(
                driver.write_allow_list(new_list, [], progress=lambda _: started.set())
            )
            await _cancel_at_first_progress(write, started)
            held = await driver.read_checksum()  # the driver is usable after a cancellation
            if not type(driver).atomic_writes:
                # No atomic commit: any mix of old and new records, but revocations first: no
                # credential of the new list opens while one the write removes still does.
                old_opens = [c for c in (1, 2) if await door_rig.present(c, 1)]
                new_opens = [c for c in (100, 250, 399) if await door_rig.present(c, 1)]
                assert not (old_opens and new_opens), (old_opens, new_opens)
            new = await driver.write_allow_list(new_list, [])
            if type(driver).atomic_writes:
                assert held in (old.checksum, new.checksum)
            assert await driver.read_checksum() == new.checksum

    async def test_too_many_entries_are_refused_before_anything_is_written(
        self, door_rig: DoorRig
    ) -> None:
        driver = door_rig.driver()
        async with opened(driver):
            before = await driver.write_allow_list(_entries(range(1, 3), door_rig.doors), [])
            with pytest.raises(ValueError, match="entries"):
                await driver.write_allow_list(
                    _entries(range(1, door_rig.capacity + 2), door_rig.doors), []
                )
            assert await driver.read_checksum() == before.checksum

    async def test_concurrent_calls_are_serialised(self, door_rig: DoorRig) -> None:
        driver = door_rig.driver()
        async with opened(driver):
            before = await driver.read_checksum()
            written, info, status, events, checksum = await asyncio.gather(
                driver.write_allow_list(_entries(range(1, 40), door_rig.doors), []),
                driver.read_info(),
                driver.door_status(1),
                driver.read_events(0),
                driver.read_checksum(),
            )
            assert info.doors == door_rig.doors
            assert status.door == 1
            assert isinstance(events, list)
            assert checksum in (before, written.checksum)
            assert await driver.read_checksum() == written.checksum

    async def test_settings_and_clock(self, door_rig: DoorRig) -> None:
        driver = door_rig.driver()
        async with opened(driver):
            unsupported = type(driver).unsupported_settings
            held = await driver.read_settings()
            assert [d for d, _ in held.door_modes] == list(range(1, door_rig.doors + 1))
            for name in ("pulse_seconds", "held_open_seconds"):
                # A field the device has is filled in when read; one it lacks is None.
                assert (getattr(held, name) is None) == (name in unsupported), name
            values = {"pulse_seconds": 7, "held_open_seconds": 40}
            wanted = ControllerSettings(
                **{k: v for k, v in values.items() if k not in unsupported},  # type: ignore[arg-type]
                door_modes=((1, DoorMode.UNLOCKED),),
            )
            await driver.write_settings(wanted)
            assert not wanted.differs_from(await driver.read_settings())
            for name in sorted(unsupported):
                with pytest.raises(ValueError, match=name):
                    await driver.write_settings(ControllerSettings(**{name: values[name]}))  # type: ignore[arg-type]
                assert not wanted.differs_from(await driver.read_settings()), "nothing written"
            with pytest.raises(ValueError, match="door_modes"):
                await driver.write_settings(
                    ControllerSettings(door_modes=((door_rig.doors + 1, DoorMode.LOCKED),))
                )
            at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
            await driver.set_clock(at)
            clock = await driver.read_clock()
            assert clock.tzinfo is not None
            assert abs((clock - at).total_seconds()) < 5

    async def test_power_loss_is_seen_as_a_new_generation(self, door_rig: DoorRig) -> None:
        driver = door_rig.driver()
        async with opened(driver):
            written = await driver.write_allow_list(_entries(range(1, 5), door_rig.doors), [])
            before = await driver.read_info()
            await door_rig.power_loss()
            async with asyncio.timeout(GUARD_S):
                while True:  # the driver may have to connect again after the restart
                    try:
                        after = await driver.read_info()
                        break
                    except DeviceUnavailable:
                        await driver.close()
                        await driver.open()
            assert after.generation != before.generation
            assert await driver.read_checksum() != written.checksum

    async def test_a_silent_device_times_out_by_itself(self, door_rig: DoorRig) -> None:
        driver = door_rig.driver()
        async with opened(driver):
            await door_rig.stall()
            with pytest.raises(DeviceUnavailable):
                async with asyncio.timeout(GUARD_S):
                    await driver.read_checksum()


# ------------------------------------------------------------------------------ stations


def key_image(driver: KeyStation, serial: str, revision: int, entries: int) -> KeyImage:
    """An image the station can take (within its capabilities and capacity)."""
    caps = driver.info.capabilities
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return KeyImage(
        serial=serial,
        revision=f"{revision:016x}",
        enabled=True,
        valid_from=start,
        valid_until=start + timedelta(days=365),
        revalidate_by=(
            start + timedelta(days=30) if StationCapability.REVALIDATION in caps else None
        ),
        access=tuple(
            AccessEntry(100_000 + 7 * i)
            for i in range(min(entries, driver.info.max_access_entries))
        ),
    )


async def _next_event(events: AsyncIterator[KeyEvent]) -> KeyEvent:
    async with asyncio.timeout(GUARD_S):
        return await anext(events)


class KeyStationContract:
    """The contract of :class:`~drivers.base.KeyStation`; needs the fixture
    ``station_rig``."""

    async def test_life_cycle(self, station_rig: StationRig) -> None:
        driver = station_rig.driver()
        await driver.open()
        station_id = driver.info.station_id
        await driver.close()
        await driver.close()
        with pytest.raises(DeviceUnavailable):
            await driver.read_key()
        await driver.open()
        assert driver.info.station_id == station_id
        await driver.close()

    async def test_an_absent_station_is_unavailable(self, station_rig: StationRig) -> None:
        driver = station_rig.unreachable_driver()
        with pytest.raises(DeviceUnavailable):
            async with asyncio.timeout(GUARD_S):
                await driver.open()
        await driver.close()

    async def test_events_report_keys_in_and_out(self, station_rig: StationRig) -> None:
        driver = station_rig.driver()
        async with opened(driver):
            events = aiter(driver.events())
            with pytest.raises(NoKeyInserted):
                await driver.read_key()
            await station_rig.insert(station_rig.serial)
            event = await _next_event(events)
            assert (event.kind, event.serial) == (KeyEventKind.INSERTED, station_rig.serial)
            await station_rig.remove()
            event = await _next_event(events)
            assert (event.kind, event.serial) == (KeyEventKind.REMOVED, station_rig.serial)
            await station_rig.insert(station_rig.serial)
            await _next_event(events)
        # A key that is already in is the first event after open.
        driver = station_rig.driver()
        async with opened(driver):
            event = await _next_event(aiter(driver.events()))
            assert (event.kind, event.serial) == (KeyEventKind.INSERTED, station_rig.serial)

    async def test_events_are_consumed_while_keys_are_written(
        self, station_rig: StationRig
    ) -> None:
        driver = station_rig.driver()
        seen: list[KeyEvent] = []
        inserted = asyncio.Event()

        async def consume() -> None:
            async for event in driver.events():
                seen.append(event)
                inserted.set()

        async with opened(driver):
            consumer = asyncio.create_task(consume(), name="conformance: events")
            try:
                await station_rig.insert(station_rig.serial)
                async with asyncio.timeout(GUARD_S):
                    await inserted.wait()
                image = key_image(driver, station_rig.serial, 5, 80)
                reports: list[WriteProgress] = []
                result = await driver.write_key(image, progress=reports.append)
                assert result.revision == image.revision
                check_progress(reports)
                held = await driver.read_key()
                assert (held.serial, held.revision, held.access) == (
                    image.serial,
                    image.revision,
                    image.access,
                )
                await station_rig.remove()
                async with asyncio.timeout(GUARD_S):
                    while len(seen) < 2:
                        await asyncio.sleep(0.01)
            finally:
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer
        assert [(e.kind, e.serial) for e in seen] == [
            (KeyEventKind.INSERTED, station_rig.serial),
            (KeyEventKind.REMOVED, station_rig.serial),
        ]

    async def test_a_cancelled_write_leaves_the_old_image_or_the_new(
        self, station_rig: StationRig
    ) -> None:
        driver = station_rig.driver()
        async with opened(driver):
            await station_rig.insert(station_rig.serial)
            old = key_image(driver, station_rig.serial, 1, 2)
            await driver.write_key(old)
            new = key_image(driver, station_rig.serial, 2, 400)
            started = asyncio.Event()
            write = asyncio.ensure_future(driver.write_key(new, progress=lambda _: started.set()))
            await _cancel_at_first_progress(write, started)
            held = await driver.read_key()  # usable after a cancellation
            assert held.revision in (old.revision, new.revision)
            assert held.access in (old.access, new.access)
            assert (held.revision == new.revision) == (held.access == new.access)
            newer = replace(new, revision=f"{3:016x}")
            assert (await driver.write_key(newer)).revision == newer.revision

    async def test_audit_records_are_read_and_cleared_by_count(
        self, station_rig: StationRig
    ) -> None:
        driver = station_rig.driver()
        async with opened(driver):
            await station_rig.add_audit(station_rig.serial, 3)
            await station_rig.insert(station_rig.serial)
            if StationCapability.AUDIT not in driver.info.capabilities:
                assert await driver.read_audit() == []  # the contract's answer without audit
                return
            records = await driver.read_audit()
            assert len(records) >= 3
            with pytest.raises(ValueError, match="count"):
                await driver.clear_audit(len(records) + 1)
            await driver.clear_audit(len(records) - 1)
            assert await driver.read_audit() == records[-1:]
            await driver.clear_audit(1)
            assert await driver.read_audit() == []

    async def test_concurrent_calls_are_serialised(self, station_rig: StationRig) -> None:
        driver = station_rig.driver()
        async with opened(driver):
            await station_rig.insert(station_rig.serial)
            image = key_image(driver, station_rig.serial, 9, 60)
            result, audit, held = await asyncio.gather(
                driver.write_key(image), driver.read_audit(), driver.read_key()
            )
            assert result.revision == image.revision
            assert isinstance(audit, list)
            assert held.serial == station_rig.serial
            assert (await driver.read_key()).revision == image.revision

    async def test_a_silent_station_times_out_by_itself(self, station_rig: StationRig) -> None:
        driver = station_rig.driver()
        async with opened(driver):
            await station_rig.insert(station_rig.serial)
            await station_rig.stall()
            with pytest.raises(DeviceUnavailable):
                async with asyncio.timeout(GUARD_S):
                    await driver.read_key()
