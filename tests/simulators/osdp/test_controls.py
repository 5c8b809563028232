"""The control interface of the OSDP simulator, over its TCP port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from drivers.osdp import Scbk
from simulators.control import ControlClient, ControlError
from simulators.osdp import OsdpSimulator, ReaderSpec


@pytest.fixture
async def client() -> AsyncIterator[tuple[OsdpSimulator, ControlClient]]:
    async with OsdpSimulator([ReaderSpec(3, Scbk.generate()), ReaderSpec(4, None)]) as sim:
        assert sim.control is not None
        async with ControlClient("127.0.0.1", sim.control.port) as c:
            yield sim, c


async def test_help_lists_every_command(client: tuple[OsdpSimulator, ControlClient]) -> None:
    _, c = client
    names = set(await c.call("help"))
    assert {
        "present", "present_raw", "tamper", "power", "status_report", "keypad", "offline",
        "online", "inject", "commands", "status",
    } <= names  # fmt: skip


async def test_status_shows_readers_without_keys(
    client: tuple[OsdpSimulator, ControlClient],
) -> None:
    sim, c = client
    status = await c.call("status")
    assert status["port"] == sim.path
    assert [(r["address"], r["key"]) for r in status["readers"]] == [
        (3, "own"),
        (4, "default (install mode)"),
    ]


async def test_offline_and_online_cut_and_restore_a_reader(
    client: tuple[OsdpSimulator, ControlClient],
) -> None:
    sim, c = client
    assert (await c.call("offline", reader=3))["cut"] is True
    assert sim.readers[3].channel.cut
    assert not sim.readers[4].channel.cut
    assert (await c.call("online", reader=3))["cut"] is False


async def test_events_are_queued_and_commands_listed(
    client: tuple[OsdpSimulator, ControlClient],
) -> None:
    _, c = client
    assert await c.call("present", card=42, reader=3) == {"queued": True}
    assert await c.call("present", card=42, reader=3, encoding="wiegand26") == {"queued": True}
    assert await c.call("present_raw", data="ff", bits=8, reader=3) == {"queued": True}
    assert await c.call("tamper", reader=4) == {"queued": True}
    assert await c.call("power", reader=4, ok=True) == {"queued": True}
    assert await c.call("commands", reader=3) == []
    assert (await c.call("inject", data="ff53"))["sent"] == 2


@pytest.mark.parametrize(
    ("command", "arguments", "message"),
    [
        ("present", {"card": 42}, "reader: give the address"),
        ("present", {"card": 42, "reader": 9}, "reader: no reader at address 9"),
        ("present", {"card": 0, "reader": 3}, "card: must be in 1.."),
        ("present", {"card": "x", "reader": 3}, "card: must be an integer"),
        ("present", {"card": 5, "reader": 3, "encoding": "ascii"}, "encoding: must be"),
        ("present_raw", {"data": "zz", "bits": 8, "reader": 3}, "data: 'zz' is not hex"),
        ("tamper", {"reader": 3, "active": "yes"}, "active: must be true or false"),
        ("offline", {"reader": 3, "seconds": -1}, "seconds: must be a positive number"),
        ("inject", {"data": 5}, "data: must be a string of hex digits"),
        ("keypad", {"keys": "", "reader": 3}, "keys: must be 1..64 ASCII characters"),
        ("present", {"card": 5, "reader": 3, "colour": 1}, "bad arguments"),
    ],
)
async def test_bad_arguments_name_the_field(
    client: tuple[OsdpSimulator, ControlClient],
    command: str,
    arguments: dict[str, object],
    message: str,
) -> None:
    _, c = client
    with pytest.raises(ControlError, match=message):
        await c.call(command, **arguments)
