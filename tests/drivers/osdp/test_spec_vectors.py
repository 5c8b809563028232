"""The golden frames of docs/protocols/osdp.md: decoded here by the specification's tables,
then checked against both ends of libosdp over a real pseudo-terminal: its control panel
must send exactly these commands and accept these replies; its reader must accept these
commands and send exactly these replies."""

from __future__ import annotations

import asyncio
import binascii
import json
import os
import re
import threading
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import osdp
import pytest
import serial

from drivers.osdp import commands
from drivers.osdp.options import ReaderConfig

SPEC = Path(__file__).parents[3] / "docs" / "protocols" / "osdp.md"
BLOCK = re.compile(r"```json golden=(?P<name>[\w-]+)\n(?P<body>.*?)```", re.DOTALL)
SESSION = [
    "id", "pdid", "cap", "pdcap", "poll-2", "ack-2", "led-3", "ack-3", "out-1", "ack-1",
    "buz-2", "ack-2", "poll-3", "raw-3", "poll-1", "lstatr-1",
]  # fmt: skip


def _vectors() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m in BLOCK.finditer(SPEC.read_text(encoding="utf-8")):
        assert m["name"] not in out, f"golden vector {m['name']} appears twice"
        out[m["name"]] = json.loads(m["body"])
    return out


VECTORS = _vectors()


def _frame(name: str) -> bytes:
    return bytes.fromhex(VECTORS[name]["frame"])


def crc16(data: bytes) -> int:
    """CRC-16 as the specification defines it: poly 0x1021, init 0x1D0F, MSB first."""
    return binascii.crc_hqx(data, 0x1D0F)


@dataclass(frozen=True)
class Decoded:
    address: int
    reply: bool
    sequence: int
    code: int
    data: bytes


def decode(frame: bytes) -> Decoded:
    """Decode a plain (no security block) frame by the field tables of the specification."""
    assert frame[0] == 0x53, "SOM"
    length = int.from_bytes(frame[2:4], "little")
    assert length == len(frame), "LEN counts the whole frame"
    ctrl = frame[4]
    assert ctrl & 0x04, "CRC mode"
    assert not ctrl & 0x08, "no security block in plain mode"
    assert not ctrl & 0xF0, "reserved CTRL bits"
    assert int.from_bytes(frame[-2:], "little") == crc16(frame[:-2]), "CRC-16"
    return Decoded(frame[1] & 0x7F, bool(frame[1] & 0x80), ctrl & 0x03, frame[5], frame[6:-2])


def test_the_crc_is_the_catalogued_crc16_aug_ccitt() -> None:
    assert crc16(b"123456789") == 0xE5CC


def test_every_session_frame_is_documented() -> None:
    assert set(SESSION) == set(VECTORS)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_golden_frame_decodes_to_its_fields(name: str) -> None:
    v = VECTORS[name]
    d = decode(_frame(name))
    f = v["fields"]
    assert (d.address, d.reply, d.sequence, d.code) == (
        f["address"],
        f["reply"],
        f["sequence"],
        f["code"],
    )
    assert d.data == bytes.fromhex(f["data"])


def test_records_follow_the_field_tables() -> None:
    led = decode(_frame("led-3")).data
    assert len(led) == 14
    reader, number, temp_code, on, off, on_color, off_color = led[:7]
    assert (reader, number, temp_code, on, off, on_color, off_color) == (0, 0, 2, 30, 0, 2, 0)
    assert int.from_bytes(led[7:9], "little") == 30
    assert led[9:] == bytes(5)  # permanent state: no operation
    out = decode(_frame("out-1")).data
    assert (out[0], out[1], int.from_bytes(out[2:4], "little")) == (0, 5, 30)
    raw = decode(_frame("raw-3")).data
    bits = int.from_bytes(raw[2:4], "little")
    assert (raw[0], raw[1], bits) == (0, 1, 32)
    assert int.from_bytes(raw[4 : 4 + (bits + 7) // 8], "big") == 4000347
    pdid = decode(_frame("pdid")).data
    assert int.from_bytes(pdid[0:3], "little") == 0x0A0B0C
    assert int.from_bytes(pdid[5:9], "little") == 0x01020304


# --------------------------------------------------------------------------- over the wire


class _Wire:
    """The test's end of a pseudo-terminal: whole frames in, bytes out."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._buf = bytearray()

    async def frame(self, timeout: float = 3.0) -> bytes:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            while self._buf and self._buf[0] != 0x53:  # mark bytes and line noise
                del self._buf[0]
            if len(self._buf) >= 4:
                length = int.from_bytes(self._buf[2:4], "little")
                if len(self._buf) >= length:
                    out = bytes(self._buf[:length])
                    del self._buf[:length]
                    return out
            try:
                self._buf += os.read(self.master, 1024)
            except BlockingIOError:
                if asyncio.get_running_loop().time() > deadline:
                    pytest.fail(f"no complete frame within {timeout} s (have {self._buf.hex()})")
                await asyncio.sleep(0.002)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


class _Serial(osdp.Channel):  # type: ignore[misc]
    def __init__(self, path: str) -> None:
        super().__init__()
        self.port = serial.Serial(path, 115200, timeout=0)

    def read(self, max_bytes: int) -> bytes:
        return bytes(self.port.read(max_bytes))

    def write(self, buf: bytes) -> int:
        return int(self.port.write(buf) or 0)

    def flush(self) -> None:
        self.port.reset_input_buffer()


@pytest.fixture
def wire() -> Iterator[_Wire]:
    w = _Wire()
    try:
        yield w
    finally:
        w.close()


async def test_libosdp_control_panel_sends_and_accepts_the_golden_frames(wire: _Wire) -> None:
    events: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_event(pd: int, event: dict[str, Any]) -> int:
        with lock:
            events.append(event)
        return 0

    line = _Serial(wire.path)
    cp = osdp.ControlPanel(
        [osdp.PDInfo(0, line, scbk=None, flags=[])],
        log_level=osdp.LogLevel.Error,
        event_handler=on_event,
    )
    cp.start()
    try:
        for name in SESSION:
            if VECTORS[name]["fields"]["reply"]:
                wire.send(_frame(name))
                continue
            assert (await wire.frame()).hex(" ") == VECTORS[name]["frame"], name
            if name == "poll-2":
                # Online now: the driver's grant commands, in the order it sends them.
                reader = ReaderConfig(address=0, door=1)
                assert cp.submit_command(0, commands.led_flash(reader, commands.GREEN, 3.0))
                assert cp.submit_command(0, commands.strike_pulse(reader, 3.0))
                assert cp.submit_command(0, commands.beep(reader))
        # The next poll shows the panel took the last reply; then look at what it reported.
        assert (await wire.frame()).hex(" ") == "53 00 08 00 06 60 89 cc"
        assert cp.is_online(0)
        pd_id = cp.get_pd_id(0)
        assert (pd_id.vendor_code, pd_id.model, pd_id.version) == (0x0A0B0C, 2, 1)
        assert pd_id.serial_number & 0xFFFFFFFF == 0x01020304
        with lock:
            reads = [e for e in events if e["event"] == osdp.Event.CardRead]
            status = [e for e in events if e["event"] == osdp.Event.Status]
        assert [(r["format"], r["length"], r["data"]) for r in reads] == [
            (1, 32, bytes.fromhex("003d0a5b"))
        ]
        assert [(s["type"], s["report"]) for s in status] == [
            (osdp.StatusReportType.Local, b"\x01\x00")
        ]
    finally:
        cp.stop()
        cp.ctx = None
        line.port.close()


async def test_libosdp_reader_accepts_and_answers_the_golden_frames(wire: _Wire) -> None:
    commands: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_command(command: dict[str, Any]) -> tuple[int, None]:
        with lock:
            commands.append(command)
        return 0, None

    line = _Serial(wire.path)
    pd = osdp.PeripheralDevice(
        osdp.PDInfo(0, line, scbk=None, id=osdp.PdId(1, 2, 0x0A0B0C, 0x01020304, 0x010203)),
        osdp.PDCapabilities(
            [
                (osdp.Capability.OutputControl, 1, 1),
                (osdp.Capability.LEDControl, 1, 1),
                (osdp.Capability.AudibleControl, 1, 1),
            ]
        ),
        log_level=osdp.LogLevel.Error,
        command_handler=on_command,
    )
    pd.start()
    try:
        for name in SESSION:
            if not VECTORS[name]["fields"]["reply"]:
                if name == "poll-3":
                    assert pd.submit_event({
                        "event": osdp.Event.CardRead, "reader_no": 0, "format": 1,
                        "direction": 0, "length": 32, "data": bytes.fromhex("003d0a5b"),
                    })  # fmt: skip
                if name == "poll-1":
                    assert pd.submit_event(
                        {"event": osdp.Event.Status, "type": osdp.StatusReportType.Local,
                         "report": b"\x01\x00"}
                    )  # fmt: skip
                wire.send(b"\xff" + _frame(name))
                continue
            got = await wire.frame()
            if name == "pdcap":
                # The library reports its own capability set; check the frame, not the list.
                d = decode(got)
                assert (d.reply, d.sequence, d.code, len(d.data) % 3) == (True, 1, 0x46, 0)
                continue
            assert got.hex(" ") == VECTORS[name]["frame"], name
        with lock:
            seen = list(commands)
        led, output, buzzer = seen
        assert (led["command"], led["temporary"], led["on_color"], led["on_count"]) == (
            osdp.Command.LED, True, osdp.CommandLEDColor.Green, 30,
        )  # fmt: skip
        assert led["timer_count"] == 30
        assert (output["command"], output["output_no"], output["control_code"]) == (
            osdp.Command.Output, 0, 5,
        )  # fmt: skip
        assert output["timer_count"] == 30
        assert (buzzer["command"], buzzer["control_code"], buzzer["on_count"]) == (
            osdp.Command.Buzzer, 2, 2,
        )  # fmt: skip
    finally:
        pd.stop()
        pd.ctx = None
        line.port.close()
