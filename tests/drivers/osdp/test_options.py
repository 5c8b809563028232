"""Options of an osdp-reader device: defaults, and errors that name the option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.osdp import OsdpReaderDriver, ReaderConfig, parse_options

BASE = {"port": "/dev/ttyUSB0", "state_dir": "/var/lib/lockgate/osdp"}


def test_defaults_for_one_reader() -> None:
    opts = parse_options(BASE)
    assert opts.readers == (ReaderConfig(address=1, door=1),)
    assert opts.key_file == Path("/var/lib/lockgate/osdp/scbk.json")
    assert (opts.baudrate, opts.pulse_s, opts.deny_s, opts.card_format) == (115200, 3.0, 2.0, "raw")
    assert opts.timezone == "Europe/Stockholm"


def test_several_readers_each_on_its_door() -> None:
    opts = parse_options(
        {**BASE, "readers": [{"address": 5, "door": 2, "output": 1}, {"address": 9, "door": 1}]}
    )
    assert opts.reader_for_door(2) == ReaderConfig(address=5, door=2, output=1)
    assert opts.reader_for_door(1).address == 9
    assert isinstance(OsdpReaderDriver.from_options({**BASE, "address": 3}), OsdpReaderDriver)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"state_dir": "/x"}, "port: required"),
        ({"port": "/dev/ttyUSB0"}, "state_dir: required"),
        ({**BASE, "colour": "red"}, "colour: unknown option"),
        ({**BASE, "baudrate": 1200}, "baudrate: must be one of"),
        ({**BASE, "timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({**BASE, "address": 127}, r"readers\[0\]\.address: must be in 0\.\.126"),
        ({**BASE, "address": 1, "readers": [{"address": 2}]}, "address: give either"),
        ({**BASE, "readers": []}, "readers: must be a non-empty list"),
        ({**BASE, "readers": [{"door": 1}]}, r"readers\[0\]\.address: required"),
        (
            {**BASE, "readers": [{"address": 1, "led": "x"}]},
            r"readers\[0\]\.led: must be an integer",
        ),
        ({**BASE, "readers": [{"address": 1, "relay": 0}]}, r"readers\[0\]\.relay: unknown"),
        ({**BASE, "readers": [{"address": 1}, {"address": 1}]}, r"readers\[1\]\.address: .* twice"),
        ({**BASE, "readers": [{"address": 1, "door": 2}]}, r"doors must be numbered 1\.\.1"),
        ({**BASE, "pulse_s": 30}, r"pulse_s: must be in 0\.1\.\.25\.5"),
        ({**BASE, "pulse_s": True}, "pulse_s: must be a number"),
        ({**BASE, "card_format": "ascii"}, "card_format: must be one of"),
        ({**BASE, "capacity": 0}, "capacity: must be in"),
        ({**BASE, "refresh_ms": 100}, r"refresh_ms: must be in 1\.\.40"),
        ({**BASE, "log_level": "loud"}, "log_level: must be one of"),
        ({**BASE, "readers": [{"address": a} for a in range(9)]}, "at most 8 readers"),
    ],
)
def test_bad_options_name_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_options(options)
