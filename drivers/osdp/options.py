"""The ``options`` table of an ``osdp-reader`` device, validated.

Every error is a ``ValueError`` that names the option (``readers[1].address: ...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.osdp.cards import CARD_FORMATS, CardFormat

BAUDRATES = (9600, 19200, 38400, 57600, 115200, 230400)
LOG_LEVELS = ("error", "warning", "info", "debug")
DEFAULT_TIMEZONE = "Europe/Stockholm"
MAX_ADDRESS = 126
MAX_READERS = 8
"""libosdp's limit of readers on one control panel."""

_OPTIONS = {
    "device_id",
    "port",
    "baudrate",
    "state_dir",
    "key_file",
    "timezone",
    "address",
    "readers",
    "pulse_s",
    "deny_s",
    "card_format",
    "capacity",
    "connect_timeout_s",
    "retry_s",
    "refresh_ms",
    "log_level",
}
_READER_OPTIONS = {"address", "door", "output", "led", "reader_no"}


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    """One reader on the bus: its OSDP address, the door it guards, the output that drives
    the door's strike relay and the LED it shows decisions on."""

    address: int
    door: int
    output: int = 0
    led: int = 0
    reader_no: int = 0


@dataclass(frozen=True, slots=True)
class OsdpOptions:
    port: str
    state_dir: Path
    key_file: Path
    readers: tuple[ReaderConfig, ...]
    device_id: str | None = None
    baudrate: int = 115200
    timezone: str = DEFAULT_TIMEZONE
    pulse_s: float = 3.0
    deny_s: float = 2.0
    card_format: CardFormat = "raw"
    capacity: int = 10000
    connect_timeout_s: float = 5.0
    retry_s: float = 5.0
    refresh_ms: int = 5
    log_level: str = "warning"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def reader_for_door(self, door: int) -> ReaderConfig:
        for r in self.readers:
            if r.door == door:
                return r
        raise ValueError(f"door: must be in 1..{len(self.readers)}, got {door!r}")


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be in {low}..{high}, got {value}")
    return value


def _seconds(value: Any, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: must be a number of seconds, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be in {low:g}..{high:g} seconds, got {value}")
    return float(value)


def _path(value: Any, name: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: required, a directory or file path")
    return Path(value.strip())


def _reader(raw: Any, index: int) -> ReaderConfig:
    name = f"readers[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{name}: must be a table with at least an address")
    unknown = sorted(set(raw) - _READER_OPTIONS)
    if unknown:
        raise ValueError(
            f"{name}.{unknown[0]}: unknown option (known: {', '.join(sorted(_READER_OPTIONS))})"
        )
    if "address" not in raw:
        raise ValueError(f"{name}.address: required (the reader's OSDP address 0..126)")
    return ReaderConfig(
        address=_int(raw["address"], f"{name}.address", 0, MAX_ADDRESS),
        door=_int(raw.get("door", index + 1), f"{name}.door", 1, MAX_READERS),
        output=_int(raw.get("output", 0), f"{name}.output", 0, 255),
        led=_int(raw.get("led", 0), f"{name}.led", 0, 255),
        reader_no=_int(raw.get("reader_no", 0), f"{name}.reader_no", 0, 255),
    )


def parse_options(options: Mapping[str, Any]) -> OsdpOptions:
    """Validate the options of an ``osdp-reader`` device."""
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown option (known: {', '.join(sorted(_OPTIONS))})")
    device_id = options.get("device_id")
    if device_id is not None and not isinstance(device_id, str):
        raise ValueError(f"device_id: must be a string, got {device_id!r}")
    port = options.get("port")
    if not isinstance(port, str) or not port.strip():
        raise ValueError("port: required, the serial device (RS-485 adapter) or a pyserial URL")
    state_dir = _path(options.get("state_dir"), "state_dir")
    key_file = (
        _path(options["key_file"], "key_file") if "key_file" in options else state_dir / "scbk.json"
    )
    baudrate = options.get("baudrate", 115200)
    if baudrate not in BAUDRATES or isinstance(baudrate, bool):
        raise ValueError(f"baudrate: must be one of {BAUDRATES}, got {baudrate!r}")
    timezone = options.get("timezone", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
    if "readers" in options and "address" in options:
        raise ValueError("address: give either address (one reader) or readers, not both")
    if "readers" in options:
        raw_readers = options["readers"]
        if not isinstance(raw_readers, list) or not raw_readers:
            raise ValueError("readers: must be a non-empty list of reader tables")
        if len(raw_readers) > MAX_READERS:
            raise ValueError(f"readers: at most {MAX_READERS} readers on one bus")
        readers = tuple(_reader(r, i) for i, r in enumerate(raw_readers))
    else:
        readers = (_reader({"address": options.get("address", 1), "door": 1}, 0),)
    addresses = [r.address for r in readers]
    for i, r in enumerate(readers):
        if addresses.index(r.address) != i:
            raise ValueError(f"readers[{i}].address: address {r.address} appears twice")
    doors = sorted(r.door for r in readers)
    if doors != list(range(1, len(readers) + 1)):
        raise ValueError(
            f"readers: doors must be numbered 1..{len(readers)}, one reader each, got {doors}"
        )
    card_format = options.get("card_format", "raw")
    if card_format not in CARD_FORMATS:
        raise ValueError(f"card_format: must be one of {CARD_FORMATS}, got {card_format!r}")
    log_level = options.get("log_level", "warning")
    if log_level not in LOG_LEVELS:
        raise ValueError(f"log_level: must be one of {LOG_LEVELS}, got {log_level!r}")
    return OsdpOptions(
        port=port.strip(),
        state_dir=state_dir,
        key_file=key_file,
        readers=readers,
        device_id=device_id,
        baudrate=baudrate,
        timezone=timezone,
        pulse_s=_seconds(options.get("pulse_s", 3.0), "pulse_s", 0.1, 25.5),
        deny_s=_seconds(options.get("deny_s", 2.0), "deny_s", 0.1, 25.5),
        card_format=card_format,
        capacity=_int(options.get("capacity", 10000), "capacity", 1, 1_000_000),
        connect_timeout_s=_seconds(
            options.get("connect_timeout_s", 5.0), "connect_timeout_s", 0.5, 60.0
        ),
        retry_s=_seconds(options.get("retry_s", 5.0), "retry_s", 0.5, 3600.0),
        refresh_ms=_int(options.get("refresh_ms", 5), "refresh_ms", 1, 40),
        log_level=log_level,
    )


__all__ = ["BAUDRATES", "DEFAULT_TIMEZONE", "OsdpOptions", "ReaderConfig", "parse_options"]
