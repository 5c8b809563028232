"""A simulated OSDP bus with its readers and their control interface.

:class:`OsdpSimulator` is what a test, the bench or ``lockgate sim osdp`` hosts. Its control
commands (JSON lines, see :mod:`simulators.control`; ``reader`` is the reader's address and
may be left out when there is one reader):

``present(card, reader, encoding="raw", bits=32)``
    A card carrying number ``card`` is read (``encoding`` ``raw`` or ``wiegand26``).
``present_raw(data, bits, reader, format=1, direction=0, reader_no=0)``
    A card read with hex ``data`` of ``bits`` bits, as given: for malformed reads.
``tamper(reader, active=true)`` / ``power(reader, ok=false)``
    The tamper switch opens (closes), the power supply fails (recovers): a local status
    report on the next poll.
``status_report(reader, tamper, power)``
    A local status report with these raw byte values (for reports that are not 0 or 1).
``keypad(keys, reader)``
    Keys pressed on the reader's keypad (``osdp_KEYPAD``; the panel has no use for them).
``offline(reader, seconds=None)`` / ``online(reader)``
    Cut the reader off the bus (for ``seconds``, or until ``online``), or reconnect it.
``inject(data)``
    Put raw hex bytes on the line towards the panel.
``commands(reader, clear=false)``
    The commands the reader received: LED, buzzer, output, text, key set (never the key).
``status()``
    Every reader: online, secure channel, own or default key, cut, tamper, power.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.osdp.keys import Scbk, load_keys, store_keys
from simulators.control import ControlServer, bool_arg, int_arg
from simulators.osdp.bus import PtyBus
from simulators.osdp.reader import ReaderSpec, SimulatedReader


def _hex_arg(name: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be a string of hex digits, got {value!r}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not hex digits") from None


class OsdpSimulator:
    """A bus of simulated readers on a pseudo-terminal, and (optionally) a control server.

    ``key_file`` (the driver's key-file format) gives readers their keys; a reader without
    one starts on the default key. Keys the panel sets are written back to it."""

    def __init__(
        self,
        readers: list[ReaderSpec],
        *,
        control_host: str = "127.0.0.1",
        control_port: int | None = 0,
        key_file: Path | None = None,
    ) -> None:
        if not readers:
            raise ValueError("readers: at least one reader")
        addresses = [r.address for r in readers]
        if len(set(addresses)) != len(addresses):
            raise ValueError("readers: every reader needs its own address")
        self.key_file = key_file
        self._specs = readers
        self.bus: PtyBus | None = None
        self.readers: dict[int, SimulatedReader] = {}
        self.control: ControlServer | None = None
        if control_port is not None:
            self.control = ControlServer(host=control_host, port=control_port)
            self._register(self.control)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: list[asyncio.TimerHandle] = []

    @classmethod
    def from_key_file(
        cls, addresses: list[int], key_file: Path | None, **kwargs: Any
    ) -> OsdpSimulator:
        """Readers at ``addresses`` with the keys ``key_file`` holds for them (if any)."""
        keys: dict[int, Scbk] = {}
        if key_file is not None and key_file.exists():
            keys = load_keys(key_file)
        specs = [ReaderSpec(a, keys.get(a), serial_number=a) for a in addresses]
        return cls(specs, key_file=key_file, **kwargs)

    @property
    def path(self) -> str:
        """The serial port the panel opens."""
        if self.bus is None:
            raise RuntimeError("the simulator is not started")
        return self.bus.path

    def driver_options(self) -> dict[str, Any]:
        """The ``port`` and ``readers`` options of an ``osdp-reader`` device on this bus."""
        return {
            "port": self.path,
            "readers": [{"address": s.address, "door": i + 1} for i, s in enumerate(self._specs)],
        }

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "port": self.path,
            "readers": [r.status() for r in self.readers.values()],
        }
        if self.control is not None:
            out["control_port"] = self.control.port
        return out

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.bus = PtyBus()
        for spec in self._specs:
            reader = SimulatedReader(self.bus, spec, on_new_key=self._store_key)
            self.readers[spec.address] = reader
            reader.start()
        if self.control is not None:
            try:
                await self.control.start()
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self.control is not None:
            await self.control.close()
        readers, self.readers = list(self.readers.values()), {}
        for reader in readers:
            await asyncio.to_thread(reader.stop)
        if self.bus is not None:
            self.bus.close()
            self.bus = None

    async def __aenter__(self) -> OsdpSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _store_key(self, address: int, key: Scbk) -> None:
        """Called from the reader's thread when the panel set a new key."""
        if self.key_file is None:
            return
        keys = load_keys(self.key_file) if self.key_file.exists() else {}
        keys[address] = key
        store_keys(self.key_file, keys)

    def reader(self, address: Any = None) -> SimulatedReader:
        if address is None:
            if len(self.readers) != 1:
                raise ValueError(f"reader: give the address, one of {sorted(self.readers)}")
            return next(iter(self.readers.values()))
        number = int_arg("reader", address, 0, 126)
        if number not in self.readers:
            raise ValueError(f"reader: no reader at address {number} (have {sorted(self.readers)})")
        return self.readers[number]

    # ------------------------------------------------------------------ commands

    def _register(self, control: ControlServer) -> None:
        commands: dict[str, tuple[Callable[..., Any], str]] = {
            "present": (self.present, "present(card, reader, encoding='raw', bits=32)"),
            "present_raw": (
                self.present_raw,
                "present_raw(data, bits, reader, format=1, direction=0, reader_no=0)",
            ),
            "tamper": (self.tamper, "tamper(reader, active=true): the tamper switch"),
            "power": (self.power, "power(reader, ok=false): the reader's power supply"),
            "status_report": (
                self.status_report,
                "status_report(reader, tamper, power): raw local status bytes",
            ),
            "keypad": (self.keypad, "keypad(keys, reader): keys pressed on the keypad"),
            "offline": (self.offline, "offline(reader, seconds=None): cut off the bus"),
            "online": (self.online, "online(reader): back on the bus"),
            "inject": (self.inject, "inject(data): raw hex bytes to the panel"),
            "commands": (self.commands, "commands(reader, clear=false): what it was told"),
            "status": (self.status, "status(): every reader"),
        }
        for name, (handler, doc) in commands.items():
            control.register(name, handler, doc)

    async def present(
        self, card: Any, reader: Any = None, encoding: Any = "raw", bits: Any = 32
    ) -> dict[str, Any]:
        r = self.reader(reader)
        number = int_arg("card", card, 1, 0xFFFFFFFF)
        count = int_arg("bits", bits, 1, 32)
        if encoding not in ("raw", "wiegand26"):
            raise ValueError(f"encoding: must be 'raw' or 'wiegand26', got {encoding!r}")
        return {"queued": r.present(number, encoding=encoding, bits=count)}

    async def present_raw(
        self,
        data: Any,
        bits: Any,
        reader: Any = None,
        format: Any = 1,
        direction: Any = 0,
        reader_no: Any = 0,
    ) -> dict[str, Any]:
        r = self.reader(reader)
        raw = _hex_arg("data", data)
        if len(raw) > 64:
            raise ValueError("data: at most 64 bytes")
        queued = r.present_bits(
            raw,
            int_arg("bits", bits, 0, 512),
            card_format=int_arg("format", format, 0, 1),
            direction=int_arg("direction", direction, 0, 255),
            reader_no=int_arg("reader_no", reader_no, 0, 255),
        )
        return {"queued": queued}

    async def tamper(self, reader: Any = None, active: Any = True) -> dict[str, Any]:
        r = self.reader(reader)
        return {"queued": r.set_tamper(bool_arg("active", active))}

    async def power(self, reader: Any = None, ok: Any = False) -> dict[str, Any]:
        r = self.reader(reader)
        return {"queued": r.set_power_failure(not bool_arg("ok", ok))}

    async def status_report(self, tamper: Any, power: Any, reader: Any = None) -> dict[str, Any]:
        r = self.reader(reader)
        return {
            "queued": r.report_local_status(
                int_arg("tamper", tamper, 0, 255), int_arg("power", power, 0, 255)
            )
        }

    async def keypad(self, keys: Any, reader: Any = None) -> dict[str, Any]:
        r = self.reader(reader)
        if not isinstance(keys, str) or not keys or len(keys) > 64 or not keys.isascii():
            raise ValueError(f"keys: must be 1..64 ASCII characters, got {keys!r}")
        return {"queued": r.press_keys(keys.encode())}

    async def offline(self, reader: Any = None, seconds: Any = None) -> dict[str, Any]:
        r = self.reader(reader)
        r.set_offline(True)
        if seconds is not None:
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise ValueError(f"seconds: must be a positive number, got {seconds!r}")
            assert self._loop is not None
            self._timers.append(self._loop.call_later(float(seconds), r.set_offline, False))
        return r.status()

    async def online(self, reader: Any = None) -> dict[str, Any]:
        r = self.reader(reader)
        r.set_offline(False)
        return r.status()

    async def inject(self, data: Any) -> dict[str, Any]:
        raw = _hex_arg("data", data)
        if self.bus is None:
            raise ValueError("the bus is not running")
        return {"sent": self.bus.inject(raw)}

    async def commands(self, reader: Any = None, clear: Any = False) -> list[dict[str, Any]]:
        return self.reader(reader).commands(clear=bool_arg("clear", clear))

    async def status(self) -> dict[str, Any]:
        return self.describe()


__all__ = ["OsdpSimulator"]
