"""The driver against the simulated controller over real UDP (and TCP) sockets on 127.0.0.1:
card table by difference, revocations first, read-back verification, memory loss, clock,
doors."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from drivers.base import (
    AllowEntry,
    ControllerSettings,
    DenyReason,
    DeviceTimeout,
    DoorMode,
    HardwareSchedule,
    ScheduleWindow,
    VerifyMismatch,
)
from drivers.uhppote import UhppoteDoorController
from simulators.control import ControlClient
from simulators.uhppote import UhppoteController, UhppoteSimulator
from simulators.uhppote.controller import CardRecord

from .conftest import SERIAL, driver_for

OFFICE = [HardwareSchedule(1, (ScheduleWindow(0b0011111, 8 * 60, 17 * 60),))]
WRITES = {"PUT_CARD", "DELETE_CARD", "SET_TIME_PROFILE", "DELETE_ALL_CARDS", "CLEAR_TIME_PROFILES"}


def _entries(count: int, start: int = 1000) -> list[AllowEntry]:
    return [AllowEntry(start + i, 0b0101, schedule_id=1 if i % 3 == 0 else 0) for i in range(count)]


def _writes(sim: UhppoteSimulator, since: int) -> list[tuple[str, int]]:
    logged = list(sim.server.requests)[since:]
    return [(r.function, r.argument) for r in logged if r.function in WRITES]


async def test_full_sync_is_read_back_and_enforced(
    sim: UhppoteSimulator, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    result = await driver.write_allow_list(_entries(200), OFFICE)
    assert result.entries == 200
    assert controller.card_count == 201  # and the marker
    assert result.checksum == await driver.read_checksum()
    record = controller.card(1001)
    assert record is not None and record.doors == (1, 0, 1, 0)
    scheduled = controller.card(1000)
    assert scheduled is not None and scheduled.doors[0] == scheduled.doors[2] >= 2
    # Every record written was read back.
    functions = [r.function for r in sim.server.requests]
    assert functions.count("PUT_CARD") >= 200
    assert functions.count("GET_CARD") >= 200
    # A fresh driver (a restarted gateway) reads the same table and checksum.
    async with driver_for(sim) as fresh:
        assert (await fresh.read_info()).generation == (await driver.read_info()).generation
        assert await fresh.read_checksum() == result.checksum


async def test_schedules_are_enforced_by_the_controller(
    control: ControlClient, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    await driver.write_allow_list([AllowEntry(77, 0b1, schedule_id=1)], OFFICE)
    await control.call("set_time", at="2024-05-15T10:00:00+02:00", frozen=True)  # Wednesday
    assert (await control.call("present", card=77, door=1))["granted"] is True
    await control.call("set_time", at="2024-05-15T17:00:00+02:00", frozen=True)
    denied = await control.call("present", card=77, door=1)
    assert (denied["granted"], denied["reason"]) == (False, "outside_time_profile")
    await control.call("set_time", at="2024-05-18T10:00:00+02:00", frozen=True)  # Saturday
    assert (await control.call("present", card=77, door=1))["granted"] is False


async def test_one_revocation_is_one_write(
    sim: UhppoteSimulator, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    entries = _entries(300)
    await driver.write_allow_list(entries, OFFICE)
    before = len(sim.server.requests)
    result = await driver.write_allow_list(entries[:150] + entries[151:], OFFICE)
    assert _writes(sim, before) == [("DELETE_CARD", 1150)]
    assert result.requests <= 5  # the delete, its read-back, the count, the marker
    assert controller.card(1150) is None
    assert (await sim.present(card=1150, door=1))["reason"] == "unknown_card"


async def test_revocations_go_before_grants(
    sim: UhppoteSimulator, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    await driver.write_allow_list(
        [AllowEntry(1, 0b1111), AllowEntry(2, 0b1111), AllowEntry(3, 0b0001)], []
    )
    before = len(sim.server.requests)
    await driver.write_allow_list(
        [
            AllowEntry(1, 0b0001),  # narrowed
            AllowEntry(3, 0b1111),  # widened
            AllowEntry(4, 0b0001),  # new
        ],
        [],
    )
    assert _writes(sim, before) == [
        ("DELETE_CARD", 2),
        ("PUT_CARD", 1),
        ("PUT_CARD", 3),
        ("PUT_CARD", 4),
    ]


async def test_a_schedule_change_never_exposes_a_missing_profile(
    sim: UhppoteSimulator, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    await driver.write_allow_list([AllowEntry(5, 0b1, schedule_id=1)], OFFICE)
    old = controller.card(5)
    assert old is not None
    evening = [HardwareSchedule(1, (ScheduleWindow(0b1111111, 18 * 60, 20 * 60),))]
    before = len(sim.server.requests)
    await driver.write_allow_list([AllowEntry(5, 0b1, schedule_id=1)], evening)
    writes = _writes(sim, before)
    assert [w[0] for w in writes] == ["SET_TIME_PROFILE", "PUT_CARD"]
    new = controller.card(5)
    assert new is not None and new.doors[0] == writes[0][1] & 0xFF != old.doors[0]
    assert old.doors[0] in controller.profiles  # the old profile was not changed in place


class _LossyController(UhppoteController):
    """Firmware that acknowledges a card and stores it with no door (a broken device)."""

    lossy = True

    def put_card(self, record: CardRecord) -> bool:
        if self.lossy and record.card == 1005:
            record = CardRecord(record.card, record.start, record.end, (0, 0, 0, 0))
        return super().put_card(record)


async def test_a_write_the_controller_did_not_keep_is_refused_and_redone() -> None:
    from simulators.uhppote import UhppoteServer

    controller = _LossyController(SERIAL, timezone="Europe/Stockholm")
    simulator = UhppoteSimulator(UhppoteServer([controller]), control_port=None)
    async with simulator as sim, driver_for(sim) as driver:
        with pytest.raises(VerifyMismatch, match="card 1005 reads"):
            await driver.write_allow_list(_entries(10), OFFICE)
        controller.lossy = False
        before = len(sim.server.requests)
        result = await driver.write_allow_list(_entries(10), OFFICE)
        # The failed write left no trusted copy: the table was read again and only the
        # record that was wrong is written.
        assert "GET_CARD_BY_INDEX" in {r.function for r in list(sim.server.requests)[before:]}
        assert _writes(sim, before) == [("PUT_CARD", 1005)]
        assert result.checksum == await driver.read_checksum()


async def test_a_full_card_table_is_refused_before_writing(
    sim: UhppoteSimulator, driver: UhppoteDoorController
) -> None:
    with pytest.raises(ValueError, match=r"entries: 1200 cards and the marker exceed"):
        await driver.write_allow_list(_entries(1200), OFFICE)


async def test_memory_loss_is_a_new_generation_and_a_full_resync(
    control: ControlClient, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    first = await driver.write_allow_list(_entries(50), OFFICE)
    generation = (await driver.read_info()).generation
    await control.call("power_loss")
    assert controller.card_count == 0
    info = await driver.read_info()
    assert info.generation != generation
    assert controller.card_count == 1  # the new marker
    assert await driver.read_checksum() != first.checksum
    again = await driver.write_allow_list(_entries(50), OFFICE)
    assert controller.card_count == 51
    assert again.entries == 50
    assert controller.listener is not None  # set up again after the loss
    assert controller.record_special_events


async def test_a_card_changed_behind_the_drivers_back_is_found_by_the_audit(
    controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    result = await driver.write_allow_list(_entries(12), OFFICE)
    record = controller.card(1007)
    assert record is not None
    controller.put_card(CardRecord(1007, record.start, record.end, (1, 1, 1, 1)))
    checksums = [await driver.read_checksum() for _ in range(4)]  # 13 records, 4 per call
    assert checksums[-1] != result.checksum
    assert (await driver.read_table()).cards[1007].doors == (1, 1, 1, 1)


async def test_an_extra_card_is_found_by_the_count(
    controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    result = await driver.write_allow_list(_entries(5), OFFICE)
    controller.put_card(CardRecord(4242, date(2020, 1, 1), date(2099, 1, 1), (1, 1, 1, 1)))
    assert await driver.read_checksum() != result.checksum
    rewrite = await driver.write_allow_list(_entries(5), OFFICE)
    assert rewrite.checksum == result.checksum
    assert controller.card(4242) is None


async def test_clock_drift_is_corrected(
    control: ControlClient, controller: UhppoteController, sim: UhppoteSimulator
) -> None:
    async with driver_for(sim, clock_check_s=0.001, max_clock_drift_s=2) as driver:
        await control.call("drift", seconds=-600)
        await asyncio.sleep(0.002)
        await driver.read_info()
        assert driver.last_clock_drift_s is not None and driver.last_clock_drift_s < -500
        held = await driver.read_clock()
        assert abs(held - datetime.now(UTC)) <= timedelta(seconds=3)
        assert abs(await driver.sync_clock()) <= 2


async def test_door_modes_delays_and_pulse(
    control: ControlClient, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    await driver.set_door_mode(2, DoorMode.UNLOCKED)
    status = await driver.door_status(2)
    assert (status.mode, status.open) == (DoorMode.UNLOCKED, False)
    await driver.set_door_mode(2, DoorMode.LOCKDOWN)
    assert (await driver.door_status(2)).mode is DoorMode.LOCKDOWN
    await driver.set_door_delay(2, 12)
    assert controller.doors[2].delay_s == 12
    assert (await driver.door_status(2)).mode is DoorMode.LOCKDOWN  # the delay kept the mode
    await driver.set_door_mode(2, DoorMode.LOCKED)
    assert await driver.door_delay(2) == 12  # the mode kept the delay
    with pytest.raises(ValueError, match=r"mode: .*has no control mode"):
        await driver.set_door_mode(1, DoorMode.SCHEDULED)
    with pytest.raises(ValueError, match=r"door: must be in 1\.\.4"):
        await driver.pulse_door(5)
    await driver.pulse_door(3)
    assert controller.unlocked(3)
    events = await driver.read_events(0)
    assert [(e.kind.value, e.door) for e in events] == [("pulsed", 3)]
    await control.call("door", door=1, open=True)
    await driver.read_events(events[-1].sequence)
    status = await driver.door_status(1)
    assert (status.open, status.forced) == (True, True)
    await control.call("door", door=1, open=False)
    await driver.read_events(events[-1].sequence)
    assert (await driver.door_status(1)).forced is False


async def test_over_tcp(sim: UhppoteSimulator, controller: UhppoteController) -> None:
    async with driver_for(sim, transport="tcp") as driver:
        result = await driver.write_allow_list(_entries(20), OFFICE)
        assert result.checksum == await driver.read_checksum()
    assert {r.transport for r in sim.server.requests} == {"tcp"}
    assert controller.card_count == 21


async def test_a_replaced_controller_is_named(sim: UhppoteSimulator) -> None:
    driver = UhppoteDoorController.from_options(
        {**sim.driver_options(), "serial": 999, "timeout_s": 0.1, "retries": 0}
    )
    with pytest.raises(
        DeviceTimeout, match=f"answers as controller {SERIAL}: was the controller replaced"
    ):
        await driver.open()
    await driver.close()


async def test_an_unreachable_controller_is_a_timeout() -> None:
    driver = UhppoteDoorController.from_options(
        {
            "serial": 1,
            "address": "127.0.0.1:9",
            "timezone": "UTC",
            "timeout_s": 0.1,
            "retries": 1,
        }
    )
    with pytest.raises(DeviceTimeout):
        await driver.open()
    await driver.close()


async def test_settings_are_the_doors_control_modes_and_delays(
    controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    held = await driver.read_settings()
    assert held.held_open_seconds is None  # the controller has no such setting
    assert held.door_modes == tuple((d, DoorMode.LOCKED) for d in range(1, 5))
    await driver.write_settings(
        ControllerSettings(
            pulse_seconds=9, door_modes=((2, DoorMode.UNLOCKED), (4, DoorMode.LOCKDOWN))
        )
    )
    assert [(d.mode, d.delay_s) for d in controller.doors.values()] == [
        (3, 9),
        (1, 9),
        (3, 9),
        (2, 9),
    ]
    for bad, field in (
        (ControllerSettings(door_modes=((1, DoorMode.SCHEDULED),)), "door_modes"),
        (ControllerSettings(held_open_seconds=30), "held_open_seconds"),
        (ControllerSettings(pulse_seconds=256), "pulse_seconds"),
        (ControllerSettings(pulse_seconds=5, door_modes=((5, DoorMode.LOCKED),)), "door_modes"),
    ):
        with pytest.raises(ValueError, match=field):
            await driver.write_settings(bad)
    assert [d.delay_s for d in controller.doors.values()] == [9, 9, 9, 9], "nothing written"


async def test_denials_say_why(
    controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    await driver.write_allow_list(
        [AllowEntry(77, 0b1, schedule_id=1), AllowEntry(78, 0b10)], OFFICE
    )
    await driver.write_settings(ControllerSettings(door_modes=((2, DoorMode.LOCKDOWN),)))
    controller.clock.frozen_at = datetime(2024, 5, 18, 10, tzinfo=UTC).timestamp()  # Saturday
    controller.present(77, 1)  # outside its schedule
    controller.present(78, 1)  # not its door
    controller.present(78, 2)  # its door, in lockdown
    controller.present(79, 1)  # unknown
    events = await driver.read_events(0)
    assert [(e.credential, e.reason) for e in events] == [
        (77, DenyReason.OUTSIDE_SCHEDULE),
        (78, DenyReason.DOOR_NOT_ALLOWED),
        (78, DenyReason.LOCKDOWN),
        (79, DenyReason.UNKNOWN_CREDENTIAL),
    ]
