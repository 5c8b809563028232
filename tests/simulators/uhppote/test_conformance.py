"""The simulator against the independent ``uhppoted`` client (its async API), over real UDP and
TCP sockets on 127.0.0.1: every function the driver uses, and the events pushed to a listener.
Each answer is decoded by the library and compared with the simulator's state."""

from __future__ import annotations

import asyncio
import socket
from datetime import date, datetime, time, timedelta
from ipaddress import IPv4Address
from typing import Any

from uhppoted import decode
from uhppoted.uhppote_async import UhppoteAsync

from simulators.uhppote import UhppoteController, UhppoteSimulator
from simulators.uhppote.controller import CardRecord, DoorControl, Reason

from .conftest import SECOND, SERIAL, TIMEOUT_S

Target = tuple[int, str, str]


async def test_get_controller(client: UhppoteAsync, target: Target) -> None:
    reply = await client.get_controller(target, timeout=TIMEOUT_S)
    assert reply.controller == SERIAL
    assert reply.ip_address == IPv4Address("192.168.1.100")
    assert reply.subnet_mask == IPv4Address("255.255.255.0")
    assert reply.gateway == IPv4Address("192.168.1.1")
    assert reply.mac_address == "00:12:78:37:2a:18"
    assert reply.version == "v8.92"
    assert reply.date == date(2018, 11, 5)


async def test_a_search_finds_every_controller(sim: UhppoteSimulator) -> None:
    searcher = UhppoteAsync(bind="127.0.0.1", broadcast=f"127.0.0.1:{sim.server.port}")
    found = await searcher.get_all_controllers(timeout=0.3)
    assert sorted(r.controller for r in found) == [SECOND, SERIAL]


async def test_set_ip_gets_no_reply_and_is_stored(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    ok = await client.set_ip(
        target, IPv4Address("10.0.0.7"), IPv4Address("255.0.0.0"), IPv4Address("10.0.0.1")
    )
    assert ok is True

    async def stored() -> None:
        while controller.network.address != "10.0.0.7":
            await asyncio.sleep(0.01)

    await asyncio.wait_for(stored(), 2)
    reply = await client.get_controller(target, timeout=TIMEOUT_S)
    assert (reply.ip_address, reply.gateway) == (IPv4Address("10.0.0.7"), IPv4Address("10.0.0.1"))


async def test_time_is_read_and_set(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    wanted = datetime(2031, 2, 3, 4, 5, 6)
    reply = await client.set_time(target, wanted, timeout=TIMEOUT_S)
    assert reply.controller == SERIAL
    assert abs(reply.datetime - wanted) <= timedelta(seconds=1)
    read = await client.get_time(target, timeout=TIMEOUT_S)
    assert abs(read.datetime - wanted) <= timedelta(seconds=2)
    assert abs(controller.now() - read.datetime) <= timedelta(seconds=1)


async def test_cards_are_put_read_counted_and_deleted(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    start, end = date(2024, 1, 1), date(2030, 12, 31)
    for card, doors, pin in ((10058400, (1, 0, 29, 0), 7531), (10058401, (0, 1, 1, 254), 0)):
        put = await client.put_card(target, card, start, end, *doors, pin, timeout=TIMEOUT_S)
        assert (put.controller, put.stored) == (SERIAL, True)
    assert controller.card(10058400) == CardRecord(10058400, start, end, (1, 0, 29, 0), 7531)
    assert (await client.get_cards(target, timeout=TIMEOUT_S)).cards == 2

    got = await client.get_card(target, 10058400, timeout=TIMEOUT_S)
    assert (got.card_number, got.start_date, got.end_date) == (10058400, start, end)
    assert (got.door_1, got.door_2, got.door_3, got.door_4, got.pin) == (1, 0, 29, 0, 7531)
    by_index = await client.get_card_by_index(target, 2, timeout=TIMEOUT_S)
    assert by_index.card_number == 10058401
    assert (by_index.door_2, by_index.door_4) == (1, 254)
    missing = await client.get_card(target, 99, timeout=TIMEOUT_S)
    assert missing.card_number == 0

    deleted = await client.delete_card(target, 10058400, timeout=TIMEOUT_S)
    assert deleted.deleted is True
    assert (await client.delete_card(target, 10058400, timeout=TIMEOUT_S)).deleted is False
    hole = await client.get_card_by_index(target, 1, timeout=TIMEOUT_S)
    assert hole.card_number == 0xFFFFFFFF
    beyond = await client.get_card_by_index(target, 3, timeout=TIMEOUT_S)
    assert beyond.card_number == 0
    assert (await client.get_cards(target, timeout=TIMEOUT_S)).cards == 1

    # A put fills the hole the delete left.
    await client.put_card(target, 77, start, end, 1, 1, 1, 1, 0, timeout=TIMEOUT_S)
    assert (await client.get_card_by_index(target, 1, timeout=TIMEOUT_S)).card_number == 77

    cleared = await client.delete_all_cards(target, timeout=TIMEOUT_S)
    assert cleared.deleted is True
    assert (await client.get_cards(target, timeout=TIMEOUT_S)).cards == 0


async def test_a_put_without_dates_or_beyond_capacity_is_refused(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    start, end = date(2024, 1, 1), date(2024, 12, 31)
    for card in range(1, controller.capacity + 1):
        assert controller.put_card(CardRecord(card, start, end, (1, 0, 0, 0)))
    full = await client.put_card(target, 999_999, start, end, 1, 0, 0, 0, 0, timeout=TIMEOUT_S)
    assert full.stored is False
    assert controller.card(999_999) is None


async def test_time_profiles_are_set_read_and_cleared(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    stored = await client.set_time_profile(
        target, 29, date(2024, 1, 1), date(2030, 12, 31),
        True, True, True, True, True, False, False,
        time(8, 30), time(11, 59), time(13, 0), time(16, 45), None, None, 3,
        timeout=TIMEOUT_S,
    )  # fmt: skip
    assert stored.stored is True
    profile = await client.get_time_profile(target, 29, timeout=TIMEOUT_S)
    assert profile.profile_id == 29
    assert (profile.start_date, profile.end_date) == (date(2024, 1, 1), date(2030, 12, 31))
    assert (profile.monday, profile.friday, profile.saturday) == (True, True, False)
    assert (profile.segment_1_start, profile.segment_1_end) == (time(8, 30), time(11, 59))
    assert (profile.segment_2_start, profile.segment_2_end) == (time(13, 0), time(16, 45))
    assert (profile.segment_3_start, profile.segment_3_end) == (time(0, 0), time(0, 0))
    assert profile.linked_profile_id == 3
    assert controller.profiles[29].linked == 3

    refused = await client.set_time_profile(
        target, 1, date(2024, 1, 1), date(2030, 12, 31),
        True, True, True, True, True, True, True, time(0, 0), time(23, 59),
        None, None, None, None, 0, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert refused.stored is False
    assert (await client.get_time_profile(target, 30, timeout=TIMEOUT_S)).profile_id == 0

    cleared = await client.delete_all_time_profiles(target, timeout=TIMEOUT_S)
    assert cleared.deleted is True
    assert (await client.get_time_profile(target, 29, timeout=TIMEOUT_S)).profile_id == 0


async def test_door_control_and_remote_open(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    initial = await client.get_door_control(target, 3, timeout=TIMEOUT_S)
    assert (initial.door, initial.mode, initial.delay) == (3, 3, 3)
    for mode in (1, 2, 3):
        reply = await client.set_door_control(target, 3, mode, 9, timeout=TIMEOUT_S)
        assert (reply.door, reply.mode, reply.delay) == (3, mode, 9)
        assert controller.doors[3].mode is DoorControl(mode)
    opened = await client.open_door(target, 3, timeout=TIMEOUT_S)
    assert opened.opened is True
    status = await client.get_status(target, timeout=TIMEOUT_S)
    assert status.relays & 0x04
    assert (status.event_door, status.event_reason, status.event_type) == (3, 0x2C, 0x02)


async def test_status_carries_the_newest_event_and_the_doors(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    empty = await client.get_status(target, timeout=TIMEOUT_S)
    assert empty.event_index == 0
    assert empty.event_type is None
    controller.put_card(CardRecord(5, date(2020, 1, 1), date(2099, 1, 1), (1, 1, 1, 1)))
    decision = controller.present(5, 2, direction=2)
    controller.record_special_events = True
    controller.move_door(2, True)
    status = await client.get_status(target, timeout=TIMEOUT_S)
    assert status.controller == SERIAL
    assert status.door_2_open is True
    assert status.door_1_open is False
    assert status.relays & 0x02
    assert status.event_index == decision.index + 1
    assert status.event_reason == Reason.DOOR_OPEN
    now = controller.now()
    assert abs(datetime.combine(status.system_date, status.system_time) - now) <= timedelta(
        seconds=1
    )


async def test_events_by_index_with_overwrite(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    controller.put_card(CardRecord(5, date(2020, 1, 1), date(2099, 1, 1), (1, 0, 0, 0)))
    for i in range(10):  # event log of 8: events 1 and 2 are overwritten
        controller.present(5, 1 + i % 2)
    event = await client.get_event(target, 3, timeout=TIMEOUT_S)
    assert (event.index, event.event_type, event.card) == (3, 0x01, 5)
    assert (event.access_granted, event.door, event.reason) == (True, 1, 0x01)
    denied = await client.get_event(target, 4, timeout=TIMEOUT_S)
    assert (denied.access_granted, denied.door, denied.reason) == (False, 2, 0x06)
    assert (await client.get_event(target, 1, timeout=TIMEOUT_S)).event_type == 0xFF
    assert (await client.get_event(target, 11, timeout=TIMEOUT_S)).event_type == 0x00
    assert (await client.get_event(target, 0, timeout=TIMEOUT_S)).index == 3
    assert (await client.get_event(target, 0xFFFFFFFF, timeout=TIMEOUT_S)).index == 10


async def test_event_index_bookmark(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    controller.put_card(CardRecord(5, date(2020, 1, 1), date(2099, 1, 1), (1, 0, 0, 0)))
    for _ in range(3):
        controller.present(5, 1)
    assert (await client.get_event_index(target, timeout=TIMEOUT_S)).event_index == 0
    assert (await client.set_event_index(target, 2, timeout=TIMEOUT_S)).updated is True
    assert (await client.set_event_index(target, 2, timeout=TIMEOUT_S)).updated is False
    assert (await client.set_event_index(target, 9, timeout=TIMEOUT_S)).updated is False
    assert (await client.get_event_index(target, timeout=TIMEOUT_S)).event_index == 2


async def test_record_special_events(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    controller.move_door(1, True)
    only = controller.event(controller.last_event)  # door open is not recorded, the alarm is
    assert only is not None
    assert (only.index, only.reason) == (1, Reason.FORCED_OPEN)
    assert (await client.record_special_events(target, True, timeout=TIMEOUT_S)).updated
    assert controller.record_special_events is True
    controller.move_door(1, False)
    assert controller.event(controller.last_event).reason == Reason.DOOR_CLOSED  # type: ignore[union-attr]


async def test_listener_is_set_read_and_receives_events(
    client: UhppoteAsync, target: Target, controller: UhppoteController
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listening = UhppoteAsync(bind="127.0.0.1", listen=f"127.0.0.1:{port}")
    received: list[Any] = []
    stop = asyncio.Event()
    task = asyncio.create_task(listening.listen(received.append, close=stop), name="listen")
    try:
        reply = await client.set_listener(
            target, IPv4Address("127.0.0.1"), port, 0, timeout=TIMEOUT_S
        )
        assert reply.ok is True
        got = await client.get_listener(target, timeout=TIMEOUT_S)
        assert (got.address, got.port, got.interval) == (IPv4Address("127.0.0.1"), port, 0)
        controller.put_card(CardRecord(6, date(2020, 1, 1), date(2099, 1, 1), (0, 1, 0, 0)))
        decision = controller.present(6, 2)

        async def arrived() -> None:
            while not received:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(arrived(), 3)
    finally:
        stop.set()
        await task
    event = received[0]
    assert (event.controller, event.event_index) == (SERIAL, decision.index)
    assert (event.event_type, event.event_access_granted, event.event_card) == (1, True, 6)
    assert (event.event_door, event.event_direction, event.event_reason) == (2, 1, 1)
    assert abs(event.event_timestamp - controller.now()) <= timedelta(seconds=1)
    assert event.relays & 0x02


def test_the_pushed_packet_decodes_as_an_event(controller: UhppoteController) -> None:
    controller.put_card(CardRecord(6, date(2020, 1, 1), date(2099, 1, 1), (0, 1, 0, 0)))
    controller.present(6, 1)
    packet = controller.event_packet(controller.event(1))
    event = decode.event(packet)
    assert (event.event_index, event.event_access_granted, event.event_reason) == (1, False, 6)


async def test_requests_for_another_serial_get_no_reply(
    client: UhppoteAsync, sim: UhppoteSimulator
) -> None:
    stranger = (123, f"127.0.0.1:{sim.server.port}", "udp")
    try:
        await client.get_time(stranger, timeout=0.2)
    except TimeoutError:
        pass
    else:
        raise AssertionError("a controller answered for serial number 123")
    assert "no controller with serial number 123" in sim.server.rejected[-1]
