"""The control interface: present cards, move doors, cut the power, drift the clock, and the
transport faults as the independent client sees them."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from uhppoted.uhppote_async import UhppoteAsync

from simulators.control import ControlClient, ControlError
from simulators.uhppote import UhppoteController, UhppoteSimulator
from simulators.uhppote.controller import CardRecord

from .conftest import SECOND, SERIAL

Target = tuple[int, str, str]


async def test_present_follows_the_card_table(
    control: ControlClient, controller: UhppoteController
) -> None:
    controller.put_card(CardRecord(9, date(2020, 1, 1), date(2099, 1, 1), (1, 0, 0, 0)))
    granted = await control.call("present", card=9, door=1, serial=SERIAL)
    assert granted == {"granted": True, "reason": "swipe", "index": 1}
    denied = await control.call("present", card=9, door=2, serial=SERIAL)
    assert denied["granted"] is False and denied["reason"] == "no_privilege"
    with pytest.raises(ControlError, match="serial: required"):
        await control.call("present", card=9, door=1)
    with pytest.raises(ControlError, match=r"door: must be in 1\.\.2"):
        await control.call("present", card=9, door=3, serial=SECOND)


async def test_doors_button_and_alarms(
    control: ControlClient, controller: UhppoteController
) -> None:
    state = await control.call("door", door=1, serial=SERIAL, open=True)
    assert state["open"] is True
    assert controller.event(controller.last_event).reason == 0x26  # type: ignore[union-attr]
    assert (await control.call("button", door=2, serial=SERIAL))["unlocked"] is True
    index = (await control.call("held_open", door=1, serial=SERIAL))["index"]
    assert controller.event(index).reason == 0x25  # type: ignore[union-attr]


async def test_power_loss_and_clock(control: ControlClient, controller: UhppoteController) -> None:
    controller.put_card(CardRecord(9, date(2020, 1, 1), date(2099, 1, 1), (1, 0, 0, 0)))
    assert (await control.call("power_loss", serial=SERIAL))["power_losses"] == 1
    assert controller.card_count == 0
    before = controller.now()
    await control.call("drift", seconds=-3600, serial=SERIAL)
    assert abs((before - controller.now()) - timedelta(hours=1)) <= timedelta(seconds=2)
    set_to = await control.call("set_time", at="2030-01-02T03:04:05Z", serial=SERIAL, frozen=True)
    assert set_to["clock"] == "2030-01-02T04:04:05"
    with pytest.raises(ControlError, match="at: must carry a time zone"):
        await control.call("set_time", at="2030-01-02T03:04:05", serial=SERIAL)
    status = await control.call("status")
    assert set(status["controllers"]) == {str(SERIAL), str(SECOND)}


async def test_dropped_replies(
    control: ControlClient, client: UhppoteAsync, target: Target
) -> None:
    await control.call("fault", kind="drop", count=1)
    with pytest.raises(TimeoutError):
        await client.get_time(target, timeout=0.3)
    assert (await client.get_time(target, timeout=1)).controller == SERIAL


async def test_delayed_replies(
    control: ControlClient, client: UhppoteAsync, target: Target
) -> None:
    await control.call("fault", kind="delay", seconds=5)
    with pytest.raises(TimeoutError):
        await client.get_cards(target, timeout=0.2)
    await control.call("fault", kind="clear")
    assert (await client.get_cards(target, timeout=1)).cards == 0


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("som", "start of message"),
        ("function", "function code"),
        ("garbage", "invalid reply"),
    ],
)
async def test_malformed_replies_are_refused_by_the_client(
    control: ControlClient, client: UhppoteAsync, sim: UhppoteSimulator, how: str, error: str
) -> None:
    target = (SERIAL, f"127.0.0.1:{sim.server.port}", "udp")
    await control.call("fault", kind="malformed", how=how, count=1)
    with pytest.raises(ValueError, match=error):
        await client.get_cards(target, timeout=1)
    assert (await client.get_cards(target, timeout=1)).cards == 0


async def test_short_and_wrong_serial_replies(
    control: ControlClient, client: UhppoteAsync, sim: UhppoteSimulator
) -> None:
    target = (SERIAL, f"127.0.0.1:{sim.server.port}", "udp")
    await control.call("fault", kind="malformed", how="short", count=1)
    with pytest.raises(TimeoutError):  # the library drops packets that are not 64 bytes
        await client.get_cards(target, timeout=0.3)
    await control.call("fault", kind="malformed", how="serial", count=1)
    reply = await client.get_cards(target, timeout=1)
    assert reply.controller == SERIAL + 1


async def test_fault_arguments_are_checked(control: ControlClient) -> None:
    with pytest.raises(ControlError, match="kind: must be one of"):
        await control.call("fault", kind="melt")
    with pytest.raises(ControlError, match="how: must be one of"):
        await control.call("fault", kind="malformed", how="odd")
    with pytest.raises(ControlError, match="seconds: not an argument of fault 'drop'"):
        await control.call("fault", kind="drop", seconds=1)
    with pytest.raises(ControlError, match="serial: that controller has no listener"):
        await control.call("fault", kind="replay_event", serial=SERIAL)


async def test_request_log(control: ControlClient, client: UhppoteAsync, target: Target) -> None:
    await client.get_card(target, 4242, timeout=1)
    logged = await control.call("requests", limit=1)
    assert logged == [
        {"serial": SERIAL, "function": "GET_CARD", "argument": 4242, "via": target[2]}
    ]


async def test_bad_request_packets_are_logged_not_answered(sim: UhppoteSimulator) -> None:
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[bytes] = asyncio.Queue()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            received.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(
        Proto, remote_addr=("127.0.0.1", sim.server.port)
    )
    try:
        transport.sendto(b"\x17\x94" + bytes(10))
        transport.sendto(b"\x17\x99" + bytes(62))
        transport.sendto(bytes(64))

        async def logged() -> None:
            while len(sim.server.rejected) < 3:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(logged(), 2)
    finally:
        transport.close()
    assert received.empty()
    assert sim.server.rejected[0] == "request length: a packet is 64 bytes, got 12"
    assert "unknown function code 0x99" in sim.server.rejected[1]
    assert "start of message" in sim.server.rejected[2]
