"""Events pushed to the listener and read by index: backfill across a restart, overwritten
indexes, a reset log, and bad packets that are refused without harm."""

from __future__ import annotations

import asyncio
import logging
import struct
from datetime import date

import pytest

from drivers.base import ControllerEventKind, DeviceTimeout, EventGap, ProtocolError
from drivers.uhppote import UhppoteDoorController
from simulators.control import ControlClient
from simulators.uhppote import UhppoteController, UhppoteSimulator
from simulators.uhppote.controller import CardRecord

from .conftest import SERIAL, driver_for


def _card(controller: UhppoteController, number: int = 55) -> None:
    controller.put_card(CardRecord(number, date(2020, 1, 1), date(2099, 1, 1), (1, 0, 0, 0)))


def _gets(sim: UhppoteSimulator, since: int) -> int:
    return sum(1 for r in list(sim.server.requests)[since:] if r.function == "GET_EVENT")


async def test_pushed_events_wake_the_caller_and_cost_no_reads(
    sim: UhppoteSimulator, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    assert controller.listener == driver.listening_on
    _card(controller)
    assert not await driver.wait_for_events(0.01)
    controller.present(55, 1)
    controller.present(55, 2)
    assert await driver.wait_for_events(3)
    listener = driver._listener
    assert listener is not None

    async def both_pushed() -> None:
        while listener.received_events < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(both_pushed(), 3)
    before = len(sim.server.requests)
    events = await driver.read_events(0)
    assert [(e.sequence, e.kind, e.credential, e.door) for e in events] == [
        (1, ControllerEventKind.GRANTED, 55, 1),
        (2, ControllerEventKind.DENIED, 55, 2),
    ]
    assert _gets(sim, before) == 0
    assert driver.last_event_index == 2


async def test_events_missed_while_the_gateway_was_down_are_read_back(
    sim: UhppoteSimulator, controller: UhppoteController
) -> None:
    _card(controller)
    async with driver_for(sim, listen="127.0.0.1:0") as first:
        controller.present(55, 1)
        assert await first.wait_for_events(3)
        got = await first.read_events(0)
        await first.ack_events(got[-1].sequence)
        cursor = got[-1].sequence
    # The gateway is down: these are pushed to nobody.
    for door in (1, 2, 1):
        controller.present(55, door)
    async with driver_for(sim) as second:
        before = len(sim.server.requests)
        missed = await second.read_events(cursor)
        assert [e.sequence for e in missed] == [2, 3, 4]
        assert _gets(sim, before) == 3
        # A caller that lost its cursor starts after the acknowledged bookmark.
        assert [e.sequence for e in await second.read_events(0)] == [2, 3, 4]
        await second.ack_events(4)
        assert await second.event_bookmark() == 4
        assert await second.read_events(0) == []


async def test_overwritten_events_are_reported_as_a_gap(
    sim: UhppoteSimulator, controller: UhppoteController, caplog: pytest.LogCaptureFixture
) -> None:
    _card(controller)
    for _ in range(40):  # the log keeps 30
        controller.present(55, 1)
    async with driver_for(sim) as driver:
        with caplog.at_level(logging.WARNING):
            events = await driver.read_events(5, limit=100)
    assert driver.event_gaps == [(6, 10)]
    assert driver.take_event_gaps() == [EventGap(6, 10, "overwritten")]
    assert driver.take_event_gaps() == [], "each gap is reported once"
    assert [e.sequence for e in events] == list(range(11, 41))
    assert "events 6..10 were overwritten before they were read" in caplog.text


async def test_a_cursor_beyond_the_log_is_a_reset(
    sim: UhppoteSimulator, controller: UhppoteController, caplog: pytest.LogCaptureFixture
) -> None:
    _card(controller)
    controller.present(55, 1)
    async with driver_for(sim) as driver:
        with caplog.at_level(logging.WARNING):
            assert await driver.read_events(500) == []
        assert driver.event_log_reset
        assert driver.take_event_gaps() == [EventGap(500, 1, "reset")]
        assert "below the cursor 500" in caplog.text
        assert len(await driver.read_events(0)) == 1
        assert not driver.event_log_reset


async def test_events_outside_the_contract_still_move_the_cursor(
    sim: UhppoteSimulator, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    controller.press_button(1)  # recorded: the driver switched special events on
    controller.move_door(1, True)
    controller.move_door(1, False)
    assert await driver.read_events(0) == []
    assert driver.last_event_index == 3
    before = len(sim.server.requests)
    assert await driver.read_events(0) == []
    assert _gets(sim, before) == 0


def _event_packet(serial: int, index: int) -> bytes:
    packet = bytearray(64)
    packet[0], packet[1] = 0x17, 0x20
    struct.pack_into("<II", packet, 4, serial, index)
    packet[12], packet[13], packet[14], packet[15] = 1, 1, 1, 1
    struct.pack_into("<I", packet, 16, 55)
    packet[20:27] = bytes.fromhex("20240515103000")
    packet[27] = 1
    return bytes(packet)


async def test_bad_pushed_packets_are_refused_with_a_reason(
    control: ControlClient,
    controller: UhppoteController,
    driver: UhppoteDoorController,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _card(controller)
    controller.present(55, 1)
    controller.present(55, 1)
    assert await driver.wait_for_events(3)
    listener = driver._listener
    assert listener is not None

    async def rejected(count: int) -> None:
        while listener.rejected + driver.events_rejected < count:
            await asyncio.sleep(0.01)

    with caplog.at_level(logging.WARNING):
        await control.call("fault", kind="raw_event", serial=SERIAL, hex="17200000")
        await control.call("fault", kind="raw_event", serial=SERIAL, hex="ab" * 64)
        await control.call(
            "fault", kind="raw_event", serial=SERIAL, hex=_event_packet(SERIAL + 1, 9).hex()
        )
        bad_door = bytearray(_event_packet(SERIAL, 3))
        bad_door[14] = 9
        await control.call("fault", kind="raw_event", serial=SERIAL, hex=bad_door.hex())
        await control.call("fault", kind="replay_event", serial=SERIAL)
        await asyncio.wait_for(rejected(5), 3)
    assert "4 bytes, an event is 64" in caplog.text
    assert "invalid reply start of message byte" in caplog.text
    assert f"event from controller {SERIAL + 1}, not served here" in caplog.text
    assert "door: door 9 is not one of the controller's 4" in caplog.text
    assert "replays index 1" in caplog.text
    # Nothing of it reached the caller, and the driver still works.
    events = await driver.read_events(0)
    assert [(e.sequence, e.credential) for e in events] == [(1, 55), (2, 55)]


@pytest.mark.parametrize("how", ["som", "function", "serial", "garbage"])
async def test_a_malformed_reply_is_logged_and_retried(
    control: ControlClient,
    driver: UhppoteDoorController,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    await control.call("fault", kind="malformed", how=how, count=1)
    with caplog.at_level(logging.WARNING):
        info = await driver.read_info()
    assert info.controller_id == str(SERIAL)
    assert "rejected the reply to GET_CONTROLLER" in caplog.text


async def test_replies_that_stay_malformed_are_a_protocol_error(
    control: ControlClient, driver: UhppoteDoorController
) -> None:
    await control.call("fault", kind="malformed", how="serial", count=-1)
    with pytest.raises(ProtocolError) as err:
        await driver.read_checksum()
    assert err.value.field == "serial"
    await control.call("fault", kind="clear")
    await driver.read_checksum()


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "drop", "count": -1},
        {"kind": "delay", "seconds": 2},
        {"kind": "malformed", "how": "short", "count": -1},
    ],
)
async def test_silence_is_a_timeout(
    control: ControlClient, driver: UhppoteDoorController, fault: dict[str, object]
) -> None:
    await control.call("fault", **fault)
    with pytest.raises(DeviceTimeout, match="no reply to GET_CARDS"):
        await driver.read_checksum()
    await control.call("fault", kind="clear")


async def test_a_dropped_reply_is_retried(
    control: ControlClient, controller: UhppoteController, driver: UhppoteDoorController
) -> None:
    await control.call("fault", kind="drop", count=1)
    await driver.pulse_door(1)
    assert controller.unlocked(1)


async def test_without_a_listener_the_caller_polls(sim: UhppoteSimulator) -> None:
    from drivers.modbusdoor import ModbusDoorController

    async with driver_for(sim) as polling:
        assert polling.listening_on is None
        assert await polling.wait_for_events(0.01) is False
    assert ModbusDoorController.atomic_writes is True
