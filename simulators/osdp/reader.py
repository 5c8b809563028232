"""A simulated OSDP reader: libosdp's ``PeripheralDevice`` on a pseudo-terminal bus.

The reader speaks real OSDP with the secure channel (its SCBK, or the default key SCBK-D
when it has none yet: a reader fresh from the factory, in install mode). Things happen to it
through methods (a card presented, the tamper switch, the power supply, the cable cut) and
it records every command the panel sends (LED, buzzer, output, text, key set) so tests can
check what the reader was told to do. A new key set by the panel (``osdp_KEYSET``) replaces
the reader's key, and ``on_new_key`` can store it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import osdp

from drivers.osdp.cards import raw_bits, wiegand26_bits
from drivers.osdp.keys import Scbk
from simulators.osdp.bus import PtyBus

log = logging.getLogger(__name__)

REFRESH_S = 0.005
VENDOR_CODE = 0x4C4754  # "LGT"

COLOR_NAMES = {
    osdp.CommandLEDColor.Black: "black",
    osdp.CommandLEDColor.Red: "red",
    osdp.CommandLEDColor.Green: "green",
    osdp.CommandLEDColor.Amber: "amber",
    osdp.CommandLEDColor.Blue: "blue",
    osdp.CommandLEDColor.Magenta: "magenta",
    osdp.CommandLEDColor.Cyan: "cyan",
    osdp.CommandLEDColor.White: "white",
}
COMMAND_NAMES = {
    osdp.Command.Output: "output",
    osdp.Command.LED: "led",
    osdp.Command.Buzzer: "buzzer",
    osdp.Command.Text: "text",
    osdp.Command.Keyset: "keyset",
    osdp.Command.Comset: "comset",
    osdp.Command.Manufacturer: "manufacturer",
    osdp.Command.Status: "status",
}


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """What a simulated reader is: its address, its key (None: still on the default key),
    its identity and what it has (outputs, LEDs, a buzzer)."""

    address: int
    scbk: Scbk | None = None
    serial_number: int = 1
    outputs: int = 1
    leds: int = 1
    buzzer: bool = True


class _LibReader(osdp.PeripheralDevice):  # type: ignore[misc]
    """The library's reader with commands going straight to our handler (the library would
    also queue each for ``get_command()``, which nothing reads here)."""

    def __init__(self, info: Any, caps: Any, handler: Callable[[dict[str, Any]], Any]) -> None:
        super().__init__(info, caps, log_level=osdp.LogLevel.Warning)
        self._handler = handler

    def _internal_command_handler(self, command: dict[str, Any]) -> Any:
        try:
            return self._handler(command)
        except Exception:
            log.exception("simulated reader: command handler failed on %r", command)
            return -1, None


class SimulatedReader:
    """One simulated reader on a bus. ``start`` runs it in a thread of its own."""

    def __init__(
        self,
        bus: PtyBus,
        spec: ReaderSpec,
        *,
        on_new_key: Callable[[int, Scbk], None] | None = None,
    ) -> None:
        self.spec = spec
        self.address = spec.address
        self.scbk = spec.scbk
        self._on_new_key = on_new_key
        self.channel = bus.channel()
        caps = [
            (osdp.Capability.OutputControl, 1, spec.outputs),
            (osdp.Capability.LEDControl, 1, spec.leds),
            (osdp.Capability.AudibleControl, 1 if spec.buzzer else 0, 1 if spec.buzzer else 0),
            (osdp.Capability.CheckCharacter, 1, 0),
            (osdp.Capability.CardDataFormat, 1, 0),
            (osdp.Capability.Readers, 0, 1),
        ]
        # The library always advertises the secure channel (AES-128) for its readers.
        info = osdp.PDInfo(
            spec.address,
            self.channel,
            scbk=spec.scbk.reveal() if spec.scbk is not None else None,
            name=f"sim-{spec.address}",
            id=osdp.PdId(1, 1, VENDOR_CODE, spec.serial_number, 0x010000),
        )
        self._pd: Any = _LibReader(info, osdp.PDCapabilities(caps), self._on_command)
        self._lock = threading.Lock()
        self._pd.lock = self._lock  # the library's own methods take this lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._records: list[dict[str, Any]] = []
        self._records_lock = threading.Lock()
        self.tamper = False
        self.power_failure = False

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"osdp-reader-{self.address}")
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                try:
                    self._pd.ctx.refresh()
                except Exception:
                    log.exception("simulated reader %d: refresh failed", self.address)
            self._stop.wait(REFRESH_S)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._pd.ctx = None

    # ------------------------------------------------------------------ what the panel sends

    def _on_command(self, command: dict[str, Any]) -> tuple[int, Any]:
        cid = command.get("command")
        record: dict[str, Any] = {
            "command": COMMAND_NAMES.get(cid, str(cid)),
            "at": time.time(),
            "monotonic": time.monotonic(),
        }
        if cid == osdp.Command.Keyset:
            record["type"] = command.get("type")
            data = command.get("data")
            if not isinstance(data, bytes) or len(data) != 16:
                record["accepted"] = False
                self._record(record)
                return -1, None
            key = Scbk(data)
            self.scbk = key
            record["accepted"] = True
            self._record(record)
            if self._on_new_key is not None:
                self._on_new_key(self.address, key)
            log.info("simulated reader %d: new SCBK set by the panel", self.address)
            return 0, None
        for name, value in command.items():
            if name == "command":
                continue
            record[name] = value.hex() if isinstance(value, bytes) else value
            if name in ("on_color", "off_color"):
                record[f"{name}_name"] = COLOR_NAMES.get(value, str(value))
        if cid == osdp.Command.Status:
            # The library's Python binding cannot fill in a status report: refuse (NAK).
            self._record(record)
            return -1, None
        self._record(record)
        return 0, None

    def _record(self, record: dict[str, Any]) -> None:
        with self._records_lock:
            self._records.append(record)

    def commands(self, *, clear: bool = False) -> list[dict[str, Any]]:
        """The commands received so far, oldest first (``clear``: and forget them)."""
        with self._records_lock:
            out = list(self._records)
            if clear:
                self._records.clear()
        return out

    # ------------------------------------------------------------------ what happens to it

    def _submit(self, event: dict[str, Any]) -> bool:
        with self._lock:
            if self._pd.ctx is None:
                return False
            return bool(self._pd.ctx.submit_event(event))

    def present_bits(
        self,
        data: bytes,
        bits: int,
        *,
        card_format: int = osdp.CardFormat.Wiegand,
        direction: int = 0,
        reader_no: int = 0,
    ) -> bool:
        """A card whose data is ``bits`` bits of ``data`` (left-aligned) is read."""
        return self._submit(
            {
                "event": osdp.Event.CardRead,
                "reader_no": reader_no,
                "format": card_format,
                "direction": direction,
                "length": bits,
                "data": data,
            }
        )

    def present(self, credential: int, *, encoding: str = "raw", bits: int = 32) -> bool:
        """A card carrying ``credential`` is read (``raw`` bits or ``wiegand26``)."""
        if encoding == "wiegand26":
            data, count = wiegand26_bits(credential)
        elif encoding == "raw":
            data, count = raw_bits(credential, bits)
        else:
            raise ValueError(f"encoding: must be 'raw' or 'wiegand26', got {encoding!r}")
        return self.present_bits(data, count)

    def press_keys(self, keys: bytes, *, reader_no: int = 0) -> bool:
        """Keys are pressed on the reader's keypad (sent as ``osdp_KEYPAD``)."""
        return self._submit({"event": osdp.Event.KeyPress, "reader_no": reader_no, "data": keys})

    def report_local_status(self, tamper: int, power: int) -> bool:
        """Send a local status report (tamper, power: 0 normal, 1 active) as the reader's next
        reply to a poll."""
        return self._submit(
            {
                "event": osdp.Event.Status,
                "type": osdp.StatusReportType.Local,
                "report": bytes([tamper, power]),
            }
        )

    def set_tamper(self, active: bool) -> bool:
        self.tamper = active
        return self.report_local_status(int(self.tamper), int(self.power_failure))

    def set_power_failure(self, failed: bool) -> bool:
        self.power_failure = failed
        return self.report_local_status(int(self.tamper), int(self.power_failure))

    def set_offline(self, offline: bool) -> None:
        """Cut the reader off the bus (it neither hears nor answers) or reconnect it."""
        self.channel.cut = offline

    # ------------------------------------------------------------------ state

    @property
    def online(self) -> bool:
        with self._lock:
            return self._pd.ctx is not None and bool(self._pd.ctx.is_online())

    @property
    def sc_active(self) -> bool:
        with self._lock:
            return self._pd.ctx is not None and bool(self._pd.ctx.is_sc_active())

    def status(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "online": self.online,
            "secure_channel": self.sc_active,
            "key": "own" if self.scbk is not None else "default (install mode)",
            "cut": self.channel.cut,
            "tamper": self.tamper,
            "power_failure": self.power_failure,
            "commands": len(self.commands()),
        }


__all__ = ["ReaderSpec", "SimulatedReader"]
