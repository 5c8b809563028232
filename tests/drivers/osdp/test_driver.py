"""OsdpReaderDriver (libosdp's ControlPanel) against simulated readers (libosdp's
PeripheralDevice) over a real pseudo-terminal, with the secure channel on."""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drivers.base import (
    AllowEntry,
    ControllerEvent,
    ControllerEventKind,
    ControllerSettings,
    DenyReason,
    DeviceUnavailable,
    DoorMode,
    HardwareSchedule,
    ScheduleWindow,
    WriteProgress,
)
from drivers.osdp import OsdpReaderDriver, Scbk
from drivers.osdp.keys import store_keys
from drivers.registry import load_driver_class
from simulators.control import ControlClient
from simulators.osdp import OsdpSimulator
from tests.drivers.osdp.conftest import DOOR1, DOOR2, driver_for, wait_for

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ALWAYS = HardwareSchedule(1, (ScheduleWindow(0x7F, 0, 1440),))


ACCESS = {ControllerEventKind.GRANTED, ControllerEventKind.DENIED, ControllerEventKind.PULSED}
LINK = {ControllerEventKind.READER_OFFLINE, ControllerEventKind.READER_ONLINE}


async def _events(
    driver: OsdpReaderDriver, count: int, kinds: set[ControllerEventKind] = ACCESS
) -> list[ControllerEvent]:
    """The first ``count`` events of ``kinds`` (a loaded machine may add link events: a
    reader that missed a handshake reply goes offline and comes back)."""

    async def enough() -> list[ControllerEvent]:
        events = [e for e in await driver.read_events(0) if e.kind in kinds]
        return events if len(events) >= count else []

    return await wait_for(enough, what=f"{count} events")


def _reply_frame(address: int, ctrl: int, code: int, data: bytes = b"") -> bytes:
    """An OSDP frame with a valid CRC-16 (see docs/protocols/osdp.md)."""
    head = bytes([0x53, address]) + (8 + len(data)).to_bytes(2, "little") + bytes([ctrl, code])
    body = head + data
    return body + binascii.crc_hqx(body, 0x1D0F).to_bytes(2, "little")


def _commands(sim: OsdpSimulator, address: int) -> list[dict[str, object]]:
    return sim.readers[address].commands()


async def _write(
    driver: OsdpReaderDriver, *entries: AllowEntry, schedules: list[HardwareSchedule] | None = None
) -> None:
    await driver.write_allow_list(list(entries), schedules or [])


def test_registered_under_the_entry_point() -> None:
    assert load_driver_class("osdp-reader") is OsdpReaderDriver


async def test_open_reports_identity(driver: OsdpReaderDriver, state_dir: Path) -> None:
    info = await driver.read_info()
    assert info.controller_id == "osdp-test"
    assert info.doors == 2
    assert info.capacity == 10000
    assert info.firmware.startswith("libosdp 3.2.")
    identity = json.loads((state_dir / "identity.json").read_text())
    assert info.generation == identity["generation"]
    assert [r["secure_channel"] for r in driver.reader_status()] == [True, True]


async def test_grant_pulses_the_strike_shows_green_and_beeps(
    driver: OsdpReaderDriver, sim: OsdpSimulator, control: ControlClient
) -> None:
    await _write(driver, AllowEntry(4000123, 0b01))
    await control.call("present", card=4000123, reader=DOOR1)
    (event,) = await _events(driver, 1)
    assert (event.kind, event.credential, event.door, event.reason) == (
        ControllerEventKind.GRANTED,
        4000123,
        1,
        None,
    )
    seen = await wait_for(
        lambda: len(_commands(sim, DOOR1)) >= 3 and _commands(sim, DOOR1), what="3 commands"
    )
    output, led, buzzer = seen
    assert output["command"] == "output"
    assert (output["output_no"], output["control_code"], output["timer_count"]) == (0, 5, 30)
    assert led["command"] == "led"
    assert (led["temporary"], led["control_code"], led["on_color_name"]) == (True, 2, "green")
    assert (led["on_count"], led["timer_count"]) == (30, 30)
    assert buzzer["command"] == "buzzer"
    assert (buzzer["control_code"], buzzer["on_count"], buzzer["rep_count"]) == (2, 2, 1)
    assert _commands(sim, DOOR2) == []
    (decision,) = driver.decisions
    assert decision.commands == ("output", "led", "buzzer")
    assert decision.received <= decision.decided


async def _denied(
    driver: OsdpReaderDriver, sim: OsdpSimulator, control: ControlClient, card: int, reader: int
) -> ControllerEvent:
    await control.call("present", card=card, reader=reader)
    (event,) = await _events(driver, 1)
    assert event.kind is ControllerEventKind.DENIED
    assert event.credential == card
    (led,) = await wait_for(lambda: _commands(sim, reader), what="the red LED")
    assert (led["command"], led["on_color_name"], led["timer_count"]) == ("led", "red", 20)
    return event


async def test_unknown_card_is_denied_with_red(
    driver: OsdpReaderDriver, sim: OsdpSimulator, control: ControlClient
) -> None:
    await _write(driver, AllowEntry(4000123, 0b11))
    event = await _denied(driver, sim, control, 4000999, DOOR1)
    assert event.reason is DenyReason.UNKNOWN_CREDENTIAL


async def test_wrong_door_is_denied(
    driver: OsdpReaderDriver, sim: OsdpSimulator, control: ControlClient
) -> None:
    await _write(driver, AllowEntry(4000123, 0b10))
    event = await _denied(driver, sim, control, 4000123, DOOR1)
    assert (event.door, event.reason) == (1, DenyReason.DOOR_NOT_ALLOWED)


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [(None, timedelta(hours=-1)), (timedelta(days=1), None)],
    ids=["expired", "not-yet-valid"],
)
async def test_outside_the_validity_window_is_denied(
    driver: OsdpReaderDriver,
    sim: OsdpSimulator,
    control: ControlClient,
    valid_from: timedelta | None,
    valid_until: timedelta | None,
) -> None:
    now = datetime.now(UTC)
    await _write(
        driver,
        AllowEntry(
            4000123,
            0b01,
            valid_from=None if valid_from is None else now + valid_from,
            valid_until=None if valid_until is None else now + valid_until,
        ),
    )
    event = await _denied(driver, sim, control, 4000123, DOOR1)
    assert event.reason is DenyReason.OUTSIDE_VALIDITY


async def test_outside_the_schedule_is_denied(
    driver: OsdpReaderDriver, sim: OsdpSimulator, control: ControlClient
) -> None:
    today = datetime.now(STOCKHOLM).weekday()
    # Every day but today and tomorrow (a test running over midnight stays outside too).
    other_days = 0x7F & ~(1 << today) & ~(1 << (today + 1) % 7)
    elsewhen = HardwareSchedule(2, (ScheduleWindow(other_days, 0, 1440),))
    await _write(
        driver,
        AllowEntry(4000123, 0b01, schedule_id=2),
        AllowEntry(4000124, 0b01, schedule_id=1),
        schedules=[ALWAYS, elsewhen],
    )
    event = await _denied(driver, sim, control, 4000123, DOOR1)
    assert event.reason is DenyReason.OUTSIDE_SCHEDULE
    await control.call("present", card=4000124, reader=DOOR1)
    events = await _events(driver, 2)
    assert (events[1].kind, events[1].reason) == (ControllerEventKind.GRANTED, None)


async def test_lockdown_denies_and_unlocked_holds_the_strike(
    driver: OsdpReaderDriver, sim: OsdpSimulator, control: ControlClient
) -> None:
    await _write(driver, AllowEntry(4000123, 0b01))
    await driver.set_door_mode(1, DoorMode.LOCKDOWN)
    event = await _denied(driver, sim, control, 4000123, DOOR1)
    assert event.reason is DenyReason.LOCKDOWN
    with pytest.raises(ValueError, match="lockdown"):
        await driver.pulse_door(1)
    await driver.set_door_mode(1, DoorMode.UNLOCKED)
    held = await wait_for(
        lambda: [c for c in _commands(sim, DOOR1) if c["command"] == "output"], what="output"
    )
    assert (held[0]["control_code"], held[0]["output_no"]) == (2, 0)
    status = await driver.door_status(1)
    assert status.mode is DoorMode.UNLOCKED
    await driver.set_door_mode(1, DoorMode.LOCKED)
    await wait_for(
        lambda: [c for c in _commands(sim, DOOR1) if c.get("control_code") == 1],
        what="the strike locked again",
    )


async def test_scheduled_door_follows_its_schedule(
    driver: OsdpReaderDriver, sim: OsdpSimulator
) -> None:
    await _write(driver, schedules=[ALWAYS])
    await driver.set_door_schedule(2, 1)
    await driver.set_door_mode(2, DoorMode.SCHEDULED)
    held = await wait_for(
        lambda: [c for c in _commands(sim, DOOR2) if c["command"] == "output"], what="output"
    )
    assert held[0]["control_code"] == 2


async def test_pulse_door_is_confirmed_and_recorded(
    driver: OsdpReaderDriver, sim: OsdpSimulator
) -> None:
    await driver.pulse_door(2)
    output = [c for c in _commands(sim, DOOR2) if c["command"] == "output"]
    assert (output[0]["control_code"], output[0]["timer_count"]) == (5, 30)
    (event,) = await _events(driver, 1)
    assert (event.kind, event.door) == (ControllerEventKind.PULSED, 2)
    with pytest.raises(ValueError, match="door"):
        await driver.pulse_door(3)


async def test_tamper_and_power_become_device_events(
    driver: OsdpReaderDriver, control: ControlClient
) -> None:
    status_kinds = {
        ControllerEventKind.TAMPER,
        ControllerEventKind.TAMPER_CLEARED,
        ControllerEventKind.POWER_FAILURE,
        ControllerEventKind.POWER_RESTORED,
    }
    await control.call("tamper", reader=DOOR2, active=True)
    await _events(driver, 1, status_kinds)
    await control.call("power", reader=DOOR2, ok=False)
    await _events(driver, 2, status_kinds)
    await control.call("tamper", reader=DOOR2, active=False)
    await _events(driver, 3, status_kinds)
    await control.call("power", reader=DOOR2, ok=True)
    events = await _events(driver, 4, status_kinds)
    assert [(e.kind, e.door) for e in events] == [
        (ControllerEventKind.TAMPER, 2),
        (ControllerEventKind.POWER_FAILURE, 2),
        (ControllerEventKind.TAMPER_CLEARED, 2),
        (ControllerEventKind.POWER_RESTORED, 2),
    ]
    assert all(e.reason is None for e in events)


async def test_offline_readers_are_events_and_availability(
    driver: OsdpReaderDriver, sim: OsdpSimulator, control: ControlClient
) -> None:
    async def link(door: int, kind: ControllerEventKind) -> ControllerEvent:
        """The first such event after the last one seen (a loaded machine may add blips)."""

        async def seen() -> list[ControllerEvent]:
            return [e for e in await driver.read_events(cursor) if (e.kind, e.door) == (kind, door)]

        return (await wait_for(seen, what=f"{kind.value} of door {door}"))[0]

    await _write(driver, AllowEntry(4000123, 0b11))
    cursor = max((e.sequence for e in await driver.read_events(0)), default=0)
    await control.call("offline", reader=DOOR1)
    event = await link(1, ControllerEventKind.READER_OFFLINE)
    cursor = event.sequence
    assert event.reason is None
    assert "stopped answering" in str(driver.reader_status()[0]["reason"])
    # One reader still online: the device is available.
    assert (await driver.read_info()).doors == 2
    await control.call("offline", reader=DOOR2)
    await link(2, ControllerEventKind.READER_OFFLINE)
    await wait_for(lambda: not any(r["online"] for r in driver.reader_status()), what="both off")
    with pytest.raises(DeviceUnavailable, match="no reader online") as err:
        await driver.read_info()
    assert "door 1 (reader 101)" in str(err.value)
    # The driver starts a new session after retry_s; taking the reader down for it is not
    # a new verdict: the reason stays until that session ends.
    await wait_for(lambda: driver.reader_status()[1]["attempts"] >= 2, what="a new session")
    assert "stopped answering" in str(driver.reader_status()[1]["reason"])
    await control.call("online", reader=DOOR1)
    event = await link(1, ControllerEventKind.READER_ONLINE)
    assert driver.reader_status()[0]["reason"] == "online"
    await driver.read_info()
    await control.call("present", card=4000123, reader=DOOR1)
    (granted,) = await _events(driver, 1)
    assert (granted.kind, granted.credential) == (ControllerEventKind.GRANTED, 4000123)


async def test_events_are_kept_until_acknowledged_across_restarts(
    sim: OsdpSimulator, control: ControlClient, state_dir: Path, key_file: Path
) -> None:
    first = driver_for(sim, state_dir, key_file)
    await first.open()
    try:
        await _write(first, AllowEntry(4000123, 0b01))
        for _ in range(3):
            await control.call("present", card=4000123, reader=DOOR1)
        events = await _events(first, 3)
        await first.ack_events(events[0].sequence)
    finally:
        await first.close()
    second = driver_for(sim, state_dir, key_file)
    await second.open()
    try:
        left = [e for e in await second.read_events(0) if e.kind in ACCESS]
        assert [e.sequence for e in left] == [events[1].sequence, events[2].sequence]
        assert left == events[1:]
        await control.call("present", card=4000123, reader=DOOR1)
        fresh = await _events(second, 3)
        assert fresh[:2] == left
        assert fresh[2].sequence > events[2].sequence
        last = (await second.read_events(0))[-1].sequence
        with pytest.raises(ValueError, match="up_to_sequence"):
            await second.ack_events(last + 5)
        await second.ack_events(fresh[2].sequence)
        assert all(e.sequence > fresh[2].sequence for e in await second.read_events(0))
    finally:
        await second.close()


async def test_restart_decides_with_the_persisted_list(
    sim: OsdpSimulator, control: ControlClient, state_dir: Path, key_file: Path
) -> None:
    first = driver_for(sim, state_dir, key_file)
    await first.open()
    try:
        progress: list[WriteProgress] = []
        result = await first.write_allow_list(
            [AllowEntry(4000123, 0b01, schedule_id=1), AllowEntry(4000124, 0b10)],
            [ALWAYS],
            progress=progress.append,
        )
        (step,) = progress
        assert step.done == step.total == (state_dir / "allowlist.json").stat().st_size
        generation = (await first.read_info()).generation
    finally:
        await first.close()
    # A new panel process: nothing is written to it, the gateway is out of reach.
    second = driver_for(sim, state_dir, key_file)
    await second.open()
    try:
        info = await second.read_info()
        assert info.generation == generation
        assert await second.read_checksum() == result.checksum
        await control.call("present", card=4000123, reader=DOOR1)
        await control.call("present", card=4000124, reader=DOOR1)
        events = await _events(second, 2)
        assert [(e.kind, e.reason) for e in events] == [
            (ControllerEventKind.GRANTED, None),
            (ControllerEventKind.DENIED, DenyReason.DOOR_NOT_ALLOWED),
        ]
    finally:
        await second.close()


async def test_damaged_list_file_means_a_new_generation_and_no_grants(
    sim: OsdpSimulator, control: ControlClient, state_dir: Path, key_file: Path
) -> None:
    first = driver_for(sim, state_dir, key_file)
    await first.open()
    try:
        await _write(first, AllowEntry(4000123, 0b01))
        generation = (await first.read_info()).generation
    finally:
        await first.close()
    path = state_dir / "allowlist.json"
    path.write_bytes(path.read_bytes().replace(b"4000123", b"4000124"))
    second = driver_for(sim, state_dir, key_file)
    await second.open()
    try:
        assert (await second.read_info()).generation != generation
        assert await second.read_checksum() == 0
        kept = await asyncio.to_thread(lambda: [p.name for p in state_dir.iterdir()])
        assert any(name.startswith("allowlist.json.bad-") for name in kept)
        await control.call("present", card=4000124, reader=DOOR1)
        (event,) = await _events(second, 1)
        assert (event.kind, event.reason) == (ControllerEventKind.DENIED, DenyReason.NO_ALLOW_LIST)
    finally:
        await second.close()


async def test_a_file_changed_behind_the_driver_reports_its_own_checksum(
    driver: OsdpReaderDriver, state_dir: Path
) -> None:
    result = await driver.write_allow_list([AllowEntry(4000123, 0b01)], [])
    assert await driver.read_checksum() == result.checksum
    (state_dir / "allowlist.json").write_text("{}")
    assert await driver.read_checksum() == 0
    again = await driver.write_allow_list([AllowEntry(4000123, 0b01)], [])
    assert await driver.read_checksum() == again.checksum == result.checksum


async def test_bad_allow_lists_are_refused_and_change_nothing(driver: OsdpReaderDriver) -> None:
    good = await driver.write_allow_list([AllowEntry(4000123, 0b01)], [])
    with pytest.raises(ValueError, match=r"entries\[0\]\.doors_mask"):
        await driver.write_allow_list([AllowEntry(7, 0b100)], [])
    with pytest.raises(ValueError, match=r"entries\[1\]\.schedule_id"):
        await driver.write_allow_list([AllowEntry(7, 1), AllowEntry(8, 1, schedule_id=9)], [])
    assert await driver.read_checksum() == good.checksum


async def test_wrong_scbk_is_refused(sim: OsdpSimulator, state_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-keys.json"
    store_keys(other, {DOOR1: Scbk.generate(), DOOR2: Scbk.generate()})
    drv = driver_for(sim, state_dir, other)
    with pytest.raises(DeviceUnavailable, match="secure channel not established") as err:
        await drv.open()
    assert "door 1 (reader 101)" in str(err.value)
    assert "door 2 (reader 102)" in str(err.value)
    assert _commands(sim, DOOR1) == _commands(sim, DOOR2) == []
    assert not sim.readers[DOOR1].sc_active


async def test_malformed_card_data_is_rejected_and_the_panel_carries_on(
    driver: OsdpReaderDriver,
    sim: OsdpSimulator,
    control: ControlClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.osdp")
    await _write(driver, AllowEntry(4000123, 0b01))
    # 40 bits do not fit a 32-bit credential; a sub-reader the door does not have.
    await control.call("present_raw", data="0102030405", bits=40, reader=DOOR1)
    await _events(driver, 1)
    await control.call("present_raw", data="003d0a5b", bits=32, reader=DOOR1, reader_no=3)
    events = await _events(driver, 2)
    assert [(e.kind, e.credential, e.reason) for e in events] == [
        (ControllerEventKind.DENIED, 0, DenyReason.UNREADABLE_CARD),
        (ControllerEventKind.DENIED, 0, DenyReason.UNREADABLE_CARD),
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert any("card read rejected: length: 40 bits" in m for m in messages)
    assert any("card read rejected: reader_no" in m for m in messages)
    await wait_for(
        lambda: len([c for c in _commands(sim, DOOR1) if c.get("on_color_name") == "red"]) == 2,
        what="two red LEDs",
    )
    await control.call("present", card=4000123, reader=DOOR1)
    events = await _events(driver, 3)
    assert events[2].kind is ControllerEventKind.GRANTED


async def test_bad_status_reports_are_rejected_with_a_reason(
    driver: OsdpReaderDriver, control: ControlClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.osdp")
    await control.call("status_report", reader=DOOR1, tamper=7, power=0)
    await wait_for(
        lambda: any("tamper byte 0x07" in r.getMessage() for r in caplog.records),
        what="the rejection logged",
    )
    assert [e for e in await driver.read_events(0) if e.kind not in LINK] == []
    await control.call("tamper", reader=DOOR1, active=True)
    (event,) = await _events(driver, 1, {ControllerEventKind.TAMPER})
    assert (event.kind, event.door, event.reason) == (ControllerEventKind.TAMPER, 1, None)


async def test_garbage_and_forged_frames_on_the_line_change_nothing(
    driver: OsdpReaderDriver, sim: OsdpSimulator, control: ControlClient
) -> None:
    await _write(driver, AllowEntry(4000123, 0b01))
    junk = [
        "ff" * 40,
        "53e5",  # a start of message and nothing more
        # Plain-text replies (ACK, PDID) from reader 101 with a valid CRC, while its session
        # is secure:
        *(_reply_frame(0xE5, ctrl, 0x40).hex() for ctrl in (4, 5, 6, 7)),
        _reply_frame(0xE5, 5, 0x45, bytes(12)).hex(),
    ]
    for data in junk:
        await control.call("inject", data=data)
    await control.call("present", card=4000123, reader=DOOR1)
    (event,) = await _events(driver, 1)
    assert (event.kind, event.credential) == (ControllerEventKind.GRANTED, 4000123)
    assert all(r["secure_channel"] for r in driver.reader_status())


async def test_the_same_driver_opens_again_once_its_reader_is_back(
    sim: OsdpSimulator, control: ControlClient, state_dir: Path, key_file: Path
) -> None:
    await control.call("offline", reader=DOOR1)
    await control.call("offline", reader=DOOR2)
    drv = driver_for(sim, state_dir, key_file, connect_timeout_s=1.0)
    with pytest.raises(DeviceUnavailable, match="no reply within 1 s"):
        await drv.open()
    await control.call("online", reader=DOOR1)
    await drv.open()
    try:
        assert (await drv.read_info()).doors == 2
        assert drv.reader_status()[0]["online"]
    finally:
        await drv.close()


async def test_unexpected_reports_are_logged_and_ignored(
    driver: OsdpReaderDriver, control: ControlClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.osdp")
    await _write(driver, AllowEntry(4000123, 0b01))
    await control.call("keypad", keys="1234#", reader=DOOR1)
    await wait_for(
        lambda: any("unexpected report" in r.getMessage() for r in caplog.records),
        what="the keypad report logged",
    )
    await control.call("present", card=4000123, reader=DOOR1)
    (event,) = await _events(driver, 1)
    assert (event.kind, event.credential) == (ControllerEventKind.GRANTED, 4000123)
    assert [e for e in await driver.read_events(0) if e.kind not in LINK] == [event]


async def test_settings_are_applied_kept_and_read_back(
    sim: OsdpSimulator, control: ControlClient, state_dir: Path, key_file: Path
) -> None:
    first = driver_for(sim, state_dir, key_file)
    await first.open()
    try:
        assert await first.read_settings() == ControllerSettings(
            pulse_seconds=3,
            held_open_seconds=30,
            door_modes=((1, DoorMode.LOCKED), (2, DoorMode.LOCKED)),
        )
        await first.write_settings(
            ControllerSettings(pulse_seconds=7, door_modes=((2, DoorMode.UNLOCKED),))
        )
        held = await wait_for(
            lambda: [c for c in _commands(sim, DOOR2) if c["command"] == "output"],
            what="door 2 held open",
        )
        assert held[0]["control_code"] == 2
        for bad, field in (
            (ControllerSettings(pulse_seconds=30), "pulse_seconds"),
            (ControllerSettings(held_open_seconds=0), "held_open_seconds"),
            (ControllerSettings(door_modes=((3, DoorMode.LOCKED),)), "door"),
        ):
            with pytest.raises(ValueError, match=field):
                await first.write_settings(bad)
        await _write(first, AllowEntry(4000123, 0b01))
        await control.call("present", card=4000123, reader=DOOR1)
        await _events(first, 1)
        pulse = await wait_for(
            lambda: [c for c in _commands(sim, DOOR1) if c["command"] == "output"],
            what="the strike pulse",
        )
        assert (pulse[0]["control_code"], pulse[0]["timer_count"]) == (5, 70)
    finally:
        await first.close()
    second = driver_for(sim, state_dir, key_file)
    await second.open()
    try:
        assert await second.read_settings() == ControllerSettings(
            pulse_seconds=7,
            held_open_seconds=30,
            door_modes=((1, DoorMode.LOCKED), (2, DoorMode.UNLOCKED)),
        )
    finally:
        await second.close()


async def test_the_panel_decides_on_the_clock_the_gateway_set(
    driver: OsdpReaderDriver, control: ControlClient
) -> None:
    now = datetime.now(UTC)
    assert abs((await driver.read_clock() - now).total_seconds()) < 60
    tomorrow = now + timedelta(days=1)
    await _write(driver, AllowEntry(4000123, 0b01, valid_from=now + timedelta(hours=12)))
    await driver.set_clock(tomorrow)
    assert abs((await driver.read_clock() - tomorrow).total_seconds()) < 60
    with pytest.raises(ValueError, match="at: must be a timezone-aware"):
        await driver.set_clock(datetime(2026, 1, 1))
    await control.call("present", card=4000123, reader=DOOR1)
    assert await driver.wait_for_events(15.0)
    (event,) = await _events(driver, 1)
    assert (event.kind, event.reason) == (ControllerEventKind.GRANTED, None)
    assert event.at > now + timedelta(hours=12)
