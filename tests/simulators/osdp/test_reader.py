"""The simulated reader against libosdp's own ControlPanel (not the lockgate driver), over the
pseudo-terminal: secure channel, card reads, status reports, commands recorded, key set."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import osdp
import pytest
import serial

from drivers.osdp import Scbk
from drivers.osdp.keys import load_keys
from simulators.osdp import OsdpSimulator, ReaderSpec

KEY = Scbk(bytes(range(16)))


class _Line(osdp.Channel):  # type: ignore[misc]
    def __init__(self, path: str) -> None:
        super().__init__()
        self.port = serial.Serial(path, 115200, timeout=0)

    def read(self, max_bytes: int) -> bytes:
        return bytes(self.port.read(max_bytes))

    def write(self, buf: bytes) -> int:
        return int(self.port.write(buf) or 0)

    def flush(self) -> None:
        self.port.reset_input_buffer()


class _Panel:
    """libosdp's ControlPanel for one reader, with its events collected."""

    def __init__(self, path: str, address: int, scbk: bytes | None, flags: list[int]) -> None:
        self.line = _Line(path)
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.address = address
        self.cp = osdp.ControlPanel(
            [osdp.PDInfo(address, self.line, scbk=scbk, flags=flags)],
            log_level=osdp.LogLevel.Warning,
            event_handler=self._on_event,
        )

    def _on_event(self, pd: int, event: dict[str, Any]) -> int:
        with self._lock:
            self.events.append(event)
        return 0

    def taken(self, kind: int) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["event"] == kind]

    def stop(self) -> None:
        self.cp.stop()
        self.cp.ctx = None
        self.line.port.close()


async def _until(probe: Any, what: str, timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := probe()):
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return value


@pytest.fixture
async def sim() -> AsyncIterator[OsdpSimulator]:
    async with OsdpSimulator([ReaderSpec(7, KEY)], control_port=None) as simulator:
        yield simulator


@pytest.fixture
def panel(sim: OsdpSimulator) -> Iterator[_Panel]:
    p = _Panel(sim.path, 7, KEY.reveal(), [osdp.LibFlag.EnforceSecure])
    p.cp.start()
    try:
        yield p
    finally:
        p.stop()


async def test_secure_session_card_read_and_commands(sim: OsdpSimulator, panel: _Panel) -> None:
    reader = sim.readers[7]
    await _until(lambda: panel.cp.is_sc_active(7), "the secure channel")
    assert reader.sc_active
    assert reader.present(0x00BC614E)
    (read,) = await _until(lambda: panel.taken(osdp.Event.CardRead), "the card read")
    assert (read["format"], read["length"], read["data"]) == (1, 32, bytes.fromhex("00bc614e"))
    led = {
        "command": osdp.Command.LED, "reader": 0, "led_number": 0, "temporary": True,
        "control_code": 2, "on_count": 5, "off_count": 5, "on_color": osdp.CommandLEDColor.Amber,
        "off_color": osdp.CommandLEDColor.Black, "timer_count": 20,
    }  # fmt: skip
    assert panel.cp.submit_command(7, led)
    (seen,) = await _until(reader.commands, "the LED command")
    assert seen["command"] == "led"
    assert (seen["on_color_name"], seen["on_count"], seen["timer_count"]) == ("amber", 5, 20)
    assert reader.commands(clear=True) and reader.commands() == []


async def test_tamper_and_power_are_local_status_reports(sim: OsdpSimulator, panel: _Panel) -> None:
    await _until(lambda: panel.cp.is_sc_active(7), "the secure channel")
    sim.readers[7].set_tamper(True)
    sim.readers[7].set_power_failure(True)
    reports = await _until(
        lambda: len(panel.taken(osdp.Event.Status)) >= 2 and panel.taken(osdp.Event.Status),
        "two status reports",
    )
    assert [(r["type"], r["report"]) for r in reports] == [
        (osdp.StatusReportType.Local, b"\x01\x00"),
        (osdp.StatusReportType.Local, b"\x01\x01"),
    ]


async def test_a_reader_on_the_default_key_takes_the_key_the_panel_sets(tmp_path: Path) -> None:
    key_file = tmp_path / "reader-keys.json"
    async with OsdpSimulator.from_key_file([9], key_file, control_port=None) as sim:
        reader = sim.readers[9]
        assert reader.scbk is None
        new = Scbk.generate()
        # Without ENFORCE_SECURE, libosdp falls back to the default key and sets the new one.
        p = _Panel(sim.path, 9, new.reveal(), [])
        p.cp.start()
        try:
            await _until(lambda: reader.scbk == new and p.cp.is_sc_active(9), "the new key")
        finally:
            p.stop()
    assert load_keys(key_file) == {9: new}
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert [c["command"] for c in reader.commands()] == ["keyset"]


async def test_a_reader_with_a_key_refuses_another(sim: OsdpSimulator) -> None:
    flags = [osdp.LibFlag.EnforceSecure, osdp.LibFlag.EnableNotification]
    p = _Panel(sim.path, 7, Scbk.generate().reveal(), flags)
    p.cp.start()
    try:
        notes = await _until(
            lambda: [
                e for e in p.taken(osdp.Event.Notification)
                if e["type"] == osdp.EventNotification.PeripheralDeviceStatus
            ],
            "the panel giving up",
        )  # fmt: skip
        assert notes[0]["arg0"] == 0
        assert not sim.readers[7].sc_active
    finally:
        p.stop()
