"""Driver options: every bad one is refused with its name and the reason; the driver is found
by its entry-point name."""

from __future__ import annotations

import re
from typing import Any

import pytest

from drivers.registry import load_driver_class
from drivers.uhppote import UhppoteDoorController

GOOD = {"serial": 423187757, "address": "192.168.1.100", "timezone": "Europe/Stockholm"}


def test_registered_as_uhppote_door() -> None:
    assert load_driver_class("uhppote-door") is UhppoteDoorController
    assert UhppoteDoorController.atomic_writes is False


def test_defaults() -> None:
    d = UhppoteDoorController.from_options(GOOD)
    assert d._link.settings.address == "192.168.1.100:60000"
    assert d._link.settings.transport == "udp"
    assert (d.doors, d.capacity, d.rounding) == (4, 20_000, "inward")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"serial": None}, "serial: required"),
        ({"serial": 0}, "serial: must be in 1..4294967294, got 0"),
        ({"serial": "12"}, "serial: must be an integer"),
        ({"address": "controller.local"}, "address: 'controller.local' is not an IPv4 address"),
        ({"address": "10.0.0.1:70000"}, "address: '70000' is not a port number"),
        ({"timezone": None}, "timezone: required"),
        ({"timezone": "Mars/Base"}, "timezone: unknown time zone 'Mars/Base'"),
        ({"transport": "serial"}, "transport: must be 'udp' or 'tcp'"),
        ({"doors": 3}, "doors: a UHPPOTE controller has 1, 2 or 4 doors, got 3"),
        ({"listen": "127.0.0.1"}, "listen: give the port"),
        ({"listener_address": "10.0.0.1:60001"}, "listener_address: needs listen"),
        ({"rounding": "nearest"}, "rounding: must be 'inward' or 'outward'"),
        ({"timeout_s": 0}, "timeout_s: must be more than 0"),
        ({"marker_card": 0}, "marker_card: must be in 1..4294967294"),
        ({"colour": "red"}, "colour: unknown option"),
    ],
)
def test_bad_options_are_refused(change: dict[str, Any], message: str) -> None:
    options = {**GOOD, **change}
    options = {k: v for k, v in options.items() if v is not None}
    with pytest.raises(ValueError, match=re.escape(message)):
        UhppoteDoorController.from_options(options)
