"""ModbusDoorController against the simulated controller, over Modbus TCP on 127.0.0.1 and
Modbus RTU on a pseudo-terminal pair (every test runs on both)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest

from drivers.base import (
    AllowEntry,
    ControllerEventKind,
    ControllerSettings,
    DenyReason,
    DeviceTimeout,
    DeviceUnavailable,
    DoorMode,
    HardwareSchedule,
    ProtocolError,
    ScheduleWindow,
    VerifyMismatch,
    WriteProgress,
)
from drivers.modbusdoor import CommitRefused, ModbusDoorController
from drivers.modbusdoor import registers as rm
from drivers.modbusdoor.layout import encode_entries, full_layout
from simulators.control import ControlClient
from simulators.controller import ControllerMemory, ControllerSimulator
from tests.drivers.modbusdoor.conftest import driver_for

# Monday 2026-03-02 10:00 in Stockholm (UTC+1).
MONDAY_10 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WORKDAYS = HardwareSchedule(1, (ScheduleWindow(0b0011111, 7 * 60, 18 * 60),))
NIGHTS = HardwareSchedule(2, (ScheduleWindow(0x7F, 22 * 60, 1440), ScheduleWindow(0x7F, 0, 360)))


def _entries(count: int, *, first: int = 1000, mask: int = 0b0011) -> list[AllowEntry]:
    return [AllowEntry(credential=first + i, doors_mask=mask) for i in range(count)]


async def test_read_info(driver: ModbusDoorController, memory: ControllerMemory) -> None:
    info = await driver.read_info()
    assert info.controller_id == "door-ctl-test"
    assert info.doors == 4
    assert info.capacity == 300
    assert info.generation == memory.generation
    assert info.firmware == memory.firmware


async def test_full_write_is_verified_and_batched(
    driver: ModbusDoorController, memory: ControllerMemory
) -> None:
    entries = _entries(250)[::-1]
    progress: list[WriteProgress] = []
    result = await driver.write_allow_list(entries, [WORKDAYS, NIGHTS], progress=progress.append)
    expected = full_layout(
        tuple(tuple(rm.encode_schedule(s)) for s in (WORKDAYS, NIGHTS)), encode_entries(entries)
    )
    assert result.checksum == expected.checksum == memory.active_checksum
    assert await driver.read_checksum() == expected.checksum
    assert result.entries == 250
    assert sorted(memory.active_entries, key=lambda e: e.credential) == sorted(
        entries, key=lambda e: e.credential
    )
    assert set(memory.active_schedules) == {1, 2}
    assert result.registers_written == 250 * 8 + 2 * 25 + rm.COMMIT_BLOCK_COUNT
    assert result.requests <= math.ceil(result.registers_written / 123) + 5
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[-1] == WriteProgress(result.registers_written, result.registers_written)


async def test_a_revocation_is_patched_in_five_requests(
    driver: ModbusDoorController, memory: ControllerMemory, control: ControlClient
) -> None:
    entries = _entries(200)
    await driver.write_allow_list(entries, [])
    assert (await control.call("present", credential=1050, door=1))["granted"]
    revoked = entries[:50] + entries[51:]
    result = await driver.write_allow_list(revoked, [])
    assert result.requests == 5
    assert result.registers_written == 2 + 8 + rm.COMMIT_BLOCK_COUNT
    assert result.checksum == memory.active_checksum == await driver.read_checksum()
    assert len(memory.active_entries) == 199
    denied = await control.call("present", credential=1050, door=1)
    assert denied == {"granted": False, "reason": "unknown_credential", "sequence": 2}
    # Patches compose: add two, change one, then the full list again.
    changed = [*revoked[:10], AllowEntry(credential=1010, doors_mask=0b1111), *revoked[11:]]
    result = await driver.write_allow_list([*changed, *_entries(2, first=5000)], [])
    assert result.requests <= 6
    assert sorted(e.credential for e in memory.active_entries) == sorted(
        [e.credential for e in changed] + [5000, 5001]
    )
    result = await driver.write_allow_list(entries, [WORKDAYS])
    assert result.checksum == memory.active_checksum
    assert len(memory.active_entries) == 200


async def test_a_list_changed_behind_the_driver_is_written_whole(
    driver: ModbusDoorController, sim: ControllerSimulator, memory: ControllerMemory
) -> None:
    await driver.write_allow_list(_entries(100), [])
    await driver.close()  # an RTU line has one master at a time
    async with driver_for(sim) as other:
        await other.write_allow_list(_entries(30, first=1), [])
    await driver.open()
    result = await driver.write_allow_list(_entries(99), [])
    assert result.requests > 5
    assert result.checksum == memory.active_checksum
    assert {e.credential for e in memory.active_entries} == {1000 + i for i in range(99)}


async def test_limits_are_checked_before_anything_is_sent(driver: ModbusDoorController) -> None:
    before = driver.requests
    with pytest.raises(ValueError, match="capacity"):
        await driver.write_allow_list(_entries(301), [])
    with pytest.raises(ValueError, match=r"entries\[0\].doors_mask"):
        await driver.write_allow_list([AllowEntry(credential=1, doors_mask=0b10000)], [])
    with pytest.raises(ValueError, match=r"entries\[0\].schedule_id"):
        await driver.write_allow_list([AllowEntry(credential=1, doors_mask=1, schedule_id=9)], [])
    with pytest.raises(ValueError, match="schedule slots"):
        await driver.write_allow_list([], [HardwareSchedule(i, ()) for i in range(1, 10)])
    with pytest.raises(ValueError, match=r"entries\[0\].credential"):
        await driver.write_allow_list([AllowEntry(credential=0, doors_mask=1)], [])
    assert driver.requests == before


async def test_door_modes_and_status(
    driver: ModbusDoorController, memory: ControllerMemory
) -> None:
    for mode in DoorMode:
        await driver.set_door_mode(3, mode)
        status = await driver.door_status(3)
        assert status.mode is mode
        assert status.door == 3
    assert rm.DOOR_MODES[memory.doors[2].mode] is DoorMode.LOCKDOWN
    with pytest.raises(ValueError, match="door"):
        await driver.set_door_mode(5, DoorMode.LOCKED)
    with pytest.raises(ValueError, match="door"):
        await driver.door_status(0)


async def test_door_status_bits(driver: ModbusDoorController, control: ControlClient) -> None:
    await control.call("set_time", at=MONDAY_10.isoformat(), frozen=True)
    await control.call("door", door=2, open=True)  # locked: forced open
    status = await driver.door_status(2)
    assert (status.open, status.forced, status.held_open) == (True, True, False)
    await control.call("door", door=2, open=False)
    await driver.pulse_door(2)
    await control.call("door", door=2, open=True)
    await control.call("set_time", at=(MONDAY_10 + timedelta(seconds=31)).isoformat(), frozen=True)
    status = await driver.door_status(2)
    assert (status.open, status.forced, status.held_open) == (True, False, True)
    kinds = [e.kind for e in await driver.read_events(0)]
    assert kinds == [
        ControllerEventKind.FORCED,
        ControllerEventKind.PULSED,
        ControllerEventKind.HELD_OPEN,
    ]


async def test_pulse(driver: ModbusDoorController, memory: ControllerMemory) -> None:
    await driver.pulse_door(1)
    assert memory.unlocked(1)
    assert not memory.unlocked(2)
    (event,) = await driver.read_events(0)
    assert (event.kind, event.door, event.credential) == (ControllerEventKind.PULSED, 1, 0)
    await driver.set_door_mode(4, DoorMode.LOCKDOWN)
    with pytest.raises(ProtocolError, match="PULSE coil door 4") as exc:
        await driver.pulse_door(4)
    assert exc.value.field == "PULSE coil door 4"


async def test_events_are_read_in_windows_and_acknowledged(
    driver: ModbusDoorController, control: ControlClient, memory: ControllerMemory
) -> None:
    await driver.write_allow_list(_entries(1, mask=0b0001), [])
    for i in range(30):
        await control.call("present", credential=1000 if i % 3 else 77, door=1)
    events = await driver.read_events(0)
    assert [e.sequence for e in events] == list(range(1, 31))
    assert [e.kind for e in events[:3]] == [
        ControllerEventKind.DENIED,
        ControllerEventKind.GRANTED,
        ControllerEventKind.GRANTED,
    ]
    assert events[0].credential == 77
    assert events[0].reason is DenyReason.UNKNOWN_CREDENTIAL
    assert {e.reason for e in events if e.kind is ControllerEventKind.GRANTED} == {None}
    assert all(e.door == 1 and e.at.tzinfo is UTC for e in events)
    assert [e.sequence for e in await driver.read_events(25)] == [26, 27, 28, 29, 30]
    assert [e.sequence for e in await driver.read_events(3, limit=14)] == list(range(4, 18))
    assert await driver.read_events(30) == []
    await driver.ack_events(20)
    assert len(memory.events) == 10
    assert [e.sequence for e in await driver.read_events(0)] == list(range(21, 31))
    await driver.ack_events(30)
    assert await driver.read_events(0) == []


async def test_fifo_overflow_drops_the_oldest(
    driver: ModbusDoorController, control: ControlClient
) -> None:
    for _ in range(50):
        await control.call("present", credential=5, door=2)
    events = await driver.read_events(0, limit=100)
    assert [e.sequence for e in events] == list(range(11, 51))
    assert driver.events_overflowed
    await driver.ack_events(50)
    assert await driver.read_events(50) == []
    assert not driver.events_overflowed


async def test_present_follows_mask_window_schedule_and_lockdown(
    driver: ModbusDoorController, control: ControlClient
) -> None:
    await control.call("set_time", at=MONDAY_10.isoformat(), frozen=True)
    entries = [
        AllowEntry(credential=1, doors_mask=0b0001),
        AllowEntry(
            credential=2,
            doors_mask=0b0001,
            valid_from=MONDAY_10 + timedelta(hours=1),
            valid_until=MONDAY_10 + timedelta(days=1),
        ),
        AllowEntry(credential=3, doors_mask=0b0001, valid_until=MONDAY_10),
        AllowEntry(credential=4, doors_mask=0b0001, schedule_id=1),
        AllowEntry(credential=5, doors_mask=0b0001, schedule_id=2),
        # Two entries for one credential: the second one grants door 2.
        AllowEntry(credential=6, doors_mask=0b0001, schedule_id=2),
        AllowEntry(credential=6, doors_mask=0b0010),
    ]
    await driver.write_allow_list(entries, [WORKDAYS, NIGHTS])

    async def present(credential: int, door: int = 1) -> str:
        reply = await control.call("present", credential=credential, door=door)
        return "granted" if reply["granted"] else str(reply["reason"])

    assert await present(1) == "granted"
    assert await present(1, door=2) == "door_not_allowed"
    assert await present(2) == "outside_validity"
    assert await present(3) == "outside_validity"  # valid_until is exclusive
    assert await present(4) == "granted"
    assert await present(5) == "outside_schedule"
    assert await present(6) == "outside_schedule"
    assert await present(6, door=2) == "granted"
    assert await present(99) == "unknown_credential"
    # Saturday 10:00 local: the workday schedule no longer allows credential 4.
    await control.call("set_time", at=(MONDAY_10 + timedelta(days=5)).isoformat(), frozen=True)
    assert await present(4) == "outside_schedule"
    # 23:30 local: the night schedule allows credential 5.
    night = MONDAY_10 + timedelta(hours=13, minutes=30)
    await control.call("set_time", at=night.isoformat(), frozen=True)
    assert await present(5) == "granted"
    assert await present(2) == "granted"
    await driver.set_door_mode(1, DoorMode.LOCKDOWN)
    assert await present(1) == "lockdown"
    events = await driver.read_events(0, limit=100)
    assert events[-1].kind is ControllerEventKind.DENIED
    assert events[-1].at == night


async def test_scheduled_door_mode(driver: ModbusDoorController, control: ControlClient) -> None:
    await control.call("set_time", at=MONDAY_10.isoformat(), frozen=True)
    await driver.write_allow_list([], [WORKDAYS])
    await driver.set_door_mode(2, DoorMode.SCHEDULED)
    assert not (await control.call("door", door=2))["unlocked"]  # no schedule set: locked
    await driver.set_door_schedule(2, 1)
    assert (await control.call("door", door=2))["unlocked"]
    await control.call("set_time", at=(MONDAY_10 + timedelta(hours=9)).isoformat(), frozen=True)
    assert not (await control.call("door", door=2))["unlocked"]
    with pytest.raises(ValueError, match="schedule_id"):
        await driver.set_door_schedule(2, 255)


async def test_power_loss_empties_the_controller_and_changes_the_generation(
    driver: ModbusDoorController, control: ControlClient, memory: ControllerMemory
) -> None:
    before = await driver.read_info()
    await driver.write_allow_list(_entries(20), [WORKDAYS])
    await driver.set_door_mode(1, DoorMode.UNLOCKED)
    await control.call("present", credential=1005, door=1)
    reply = await control.call("power_loss")
    assert reply == {"generation": before.generation + 1}
    info = await driver.read_info()
    assert info.generation == before.generation + 1
    assert await driver.read_checksum() == rm.EMPTY_CHECKSUM
    assert (await driver.door_status(1)).mode is DoorMode.LOCKED
    assert await driver.read_events(0) == []
    assert (await control.call("present", credential=1005, door=1))["reason"] == (
        "unknown_credential"
    )
    # The sequence survives the power loss.
    assert [e.sequence for e in await driver.read_events(0)] == [2]
    result = await driver.write_allow_list(_entries(20), [WORKDAYS])
    # Written whole: the driver knows the list it verified is gone.
    assert result.registers_written == 20 * 8 + 25 + rm.COMMIT_BLOCK_COUNT
    assert len(memory.active_entries) == 20


async def test_slow_device_times_out_then_recovers(
    driver: ModbusDoorController, control: ControlClient
) -> None:
    await control.call("fault", kind="delay", seconds=5.0)
    with pytest.raises(DeviceTimeout, match="no reply"):
        await driver.read_info()
    await control.call("fault", kind="clear")
    await asyncio.sleep(0.1)
    assert (await driver.read_info()).controller_id == "door-ctl-test"
    await driver.write_allow_list(_entries(5), [])


async def test_dropped_link_is_unavailable_then_recovers(
    driver: ModbusDoorController, control: ControlClient, transport: str, memory: ControllerMemory
) -> None:
    await driver.read_info()
    if transport == "tcp":
        await control.call("fault", kind="delay", seconds=5.0)
        sent = driver.requests
        request = asyncio.create_task(driver.read_info(), name="read during drop")
        for _ in range(200):
            if driver.requests > sent:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the request is on the wire, its reply delayed
        await control.call("fault", kind="drop")
        with pytest.raises(DeviceUnavailable, match="lost") as exc:
            await request
        assert not isinstance(exc.value, DeviceTimeout)
        await control.call("fault", kind="clear")
    else:
        await control.call("fault", kind="drop", seconds=0.8)
        with pytest.raises(DeviceTimeout):
            await driver.read_info()
        await asyncio.sleep(0.3)
    assert (await driver.read_info()).generation == memory.generation


async def test_controller_down_is_unavailable_then_recovers(
    driver: ModbusDoorController, sim: ControllerSimulator, transport: str
) -> None:
    await driver.read_info()
    await sim.server.stop()
    if transport == "tcp":
        # The request may meet the closing connection; then nobody accepts a new one.
        with pytest.raises(DeviceUnavailable):
            await driver.read_info()
        with pytest.raises(DeviceUnavailable, match="cannot connect"):
            await driver.read_info()
    else:
        # Nobody answers on the line.
        with pytest.raises(DeviceTimeout):
            await driver.read_info()
    await sim.server.start()
    assert (await driver.read_info()).controller_id == "door-ctl-test"


async def test_restart_fault(
    driver: ModbusDoorController, control: ControlClient, memory: ControllerMemory
) -> None:
    generation = (await driver.read_info()).generation
    await driver.write_allow_list(_entries(10), [])
    await control.call("fault", kind="restart")
    # The first request may meet the closed connection; a retry by the caller succeeds.
    for _ in range(3):
        try:
            info = await driver.read_info()
            break
        except DeviceUnavailable:
            await asyncio.sleep(0.1)
    assert info.generation == generation + 1
    result = await driver.write_allow_list(_entries(10), [])
    assert result.registers_written == 10 * 8 + rm.COMMIT_BLOCK_COUNT  # written whole
    assert len(memory.active_entries) == 10


async def test_rejected_commit_keeps_the_old_list(
    driver: ModbusDoorController, control: ControlClient, memory: ControllerMemory
) -> None:
    first = await driver.write_allow_list(_entries(10), [])
    await control.call("fault", kind="reject_commits")
    with pytest.raises(CommitRefused, match="rejected") as exc:
        await driver.write_allow_list(_entries(12), [])
    assert isinstance(exc.value, VerifyMismatch)
    assert exc.value.status is rm.CommitStatus.REJECTED
    assert memory.active_checksum == first.checksum == await driver.read_checksum()
    await control.call("fault", kind="clear")
    result = await driver.write_allow_list(_entries(12), [])
    assert result.checksum == memory.active_checksum


async def test_a_commit_that_loses_an_entry_is_a_mismatch(
    driver: ModbusDoorController, control: ControlClient
) -> None:
    await control.call("fault", kind="corrupt_commits")
    with pytest.raises(VerifyMismatch, match="expected 12") as exc:
        await driver.write_allow_list(_entries(12), [])
    assert not isinstance(exc.value, CommitRefused)
    await control.call("fault", kind="clear")
    result = await driver.write_allow_list(_entries(12), [])
    # Written whole: nothing was verified to patch against.
    assert result.registers_written == 12 * 8 + rm.COMMIT_BLOCK_COUNT


async def test_busy_commit_is_awaited_within_the_commit_timeout(
    sim: ControllerSimulator, control: ControlClient, memory: ControllerMemory
) -> None:
    await control.call("fault", kind="commit_busy", seconds=0.2)
    async with driver_for(sim, commit_timeout_s=2.0) as drv:
        result = await drv.write_allow_list(_entries(3), [])
        assert result.checksum == memory.active_checksum
    await control.call("fault", kind="commit_busy", seconds=5)
    async with driver_for(sim, commit_timeout_s=0.3) as drv:
        with pytest.raises(DeviceTimeout, match="busy"):
            await drv.write_allow_list(_entries(4), [])
        # While the commit is busy the controller refuses new staging writes.
        with pytest.raises(DeviceUnavailable, match="BUSY"):
            await drv.write_allow_list(_entries(4), [])


async def test_clock(driver: ModbusDoorController, memory: ControllerMemory) -> None:
    await driver.set_clock(datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC))
    assert abs(memory.now() - datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC).timestamp()) < 2
    assert abs(await driver.read_clock() - datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)) < (
        timedelta(seconds=2)
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        await driver.set_clock(datetime(2030, 1, 1))


async def test_wrong_unit_is_reported_unavailable(sim: ControllerSimulator) -> None:
    """TCP: the controller answers exception 0B (no such device behind this address), a
    transient error; RTU: it stays silent and the driver times out."""
    drv = driver_for(sim, unit=7)
    with pytest.raises(DeviceUnavailable):
        await drv.open()
    await drv.close()
    await drv.close()  # idempotent


async def test_settings_are_written_verified_and_read_back(
    driver: ModbusDoorController, memory: ControllerMemory
) -> None:
    held = await driver.read_settings()
    assert held == ControllerSettings(
        pulse_seconds=rm.DEFAULT_PULSE_SECONDS,
        held_open_seconds=rm.DEFAULT_HELD_OPEN_SECONDS,
        door_modes=tuple((d, DoorMode.LOCKED) for d in range(1, 5)),
    )
    wanted = ControllerSettings(
        pulse_seconds=8, door_modes=((2, DoorMode.UNLOCKED), (4, DoorMode.LOCKDOWN))
    )
    assert wanted.differs_from(held)
    await driver.write_settings(wanted)
    held = await driver.read_settings()
    assert not wanted.differs_from(held)
    assert (memory.pulse_seconds, memory.held_open_seconds) == (8, rm.DEFAULT_HELD_OPEN_SECONDS)
    assert memory.door(4).mode is rm.DoorModeCode.LOCKDOWN
    for bad, field in (
        (ControllerSettings(pulse_seconds=0), "pulse_seconds"),
        (ControllerSettings(held_open_seconds=3601), "held_open_seconds"),
        (ControllerSettings(door_modes=((5, DoorMode.LOCKED),)), "door_modes"),
    ):
        with pytest.raises(ValueError, match=rf"^{field}: "):
            await driver.write_settings(bad)
    assert memory.pulse_seconds == 8


async def test_the_clock_is_read_and_set(
    driver: ModbusDoorController, memory: ControllerMemory
) -> None:
    at = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    await driver.set_clock(at)
    assert abs(memory.now() - at.timestamp()) < 2
    assert abs((await driver.read_clock() - at).total_seconds()) < 2
