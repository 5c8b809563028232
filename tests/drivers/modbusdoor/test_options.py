"""ModbusDoorController.from_options and the entry point."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.base import DeviceConfig
from drivers.modbusdoor import ModbusDoorController
from drivers.registry import available_drivers, load_door_controller


def test_tcp_defaults() -> None:
    drv = ModbusDoorController.from_options({"host": "10.0.0.5"})
    s = drv._link.settings
    assert (s.transport, s.host, s.port, s.unit, s.timeout_s, s.retries) == (
        "tcp",
        "10.0.0.5",
        502,
        1,
        1.0,
        2,
    )


def test_rtu_options() -> None:
    drv = ModbusDoorController.from_options(
        {"transport": "rtu", "port": "/dev/ttyUSB0", "baudrate": 9600, "unit": 17}
    )
    s = drv._link.settings
    assert (s.transport, s.port, s.baudrate, s.unit) == ("rtu", "/dev/ttyUSB0", 9600, 17)
    assert "rtu /dev/ttyUSB0 @9600 unit 17" in s.where


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"host": "h", "colour": "red"}, "colour"),
        ({"transport": "udp", "host": "h"}, "transport"),
        ({}, "host"),
        ({"host": " "}, "host"),
        ({"host": "h", "port": 0}, "port"),
        ({"host": "h", "port": 70000}, "port"),
        ({"host": "h", "port": "502"}, "port"),
        ({"host": "h", "port": True}, "port"),
        ({"transport": "rtu"}, "port"),
        ({"transport": "rtu", "port": 3}, "port"),
        ({"transport": "rtu", "port": "/dev/x", "host": "h"}, "host"),
        ({"transport": "rtu", "port": "/dev/x", "baudrate": 12345}, "baudrate"),
        ({"host": "h", "unit": 0}, "unit"),
        ({"host": "h", "unit": 248}, "unit"),
        ({"host": "h", "timeout_s": 0}, "timeout_s"),
        ({"host": "h", "timeout_s": "1"}, "timeout_s"),
        ({"host": "h", "retries": -1}, "retries"),
        ({"host": "h", "retries": 11}, "retries"),
        ({"host": "h", "commit_timeout_s": -2}, "commit_timeout_s"),
        ({"host": "h", "patch": "yes"}, "patch"),
        ({"host": "h", "device_id": 5}, "device_id"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        ModbusDoorController.from_options(options)


def test_registered_as_modbus_door() -> None:
    assert available_drivers()["modbus-door"] == "drivers.modbusdoor:ModbusDoorController"
    drv = load_door_controller(
        DeviceConfig("gate-3", "modbus-door", {"host": "127.0.0.1", "port": 1502})
    )
    assert isinstance(drv, ModbusDoorController)
    assert drv.device_id == "gate-3"
