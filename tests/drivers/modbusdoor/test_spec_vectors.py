"""The golden vectors and address tables of docs/protocols/door-controller.md against the code."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu.bit_message import WriteSingleCoilRequest
from pymodbus.pdu.register_message import (
    ReadInputRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow
from drivers.modbusdoor import registers as rm

SPEC = Path(__file__).parents[3] / "docs" / "protocols" / "door-controller.md"
BLOCK = re.compile(r"```json golden=(?P<name>[\w-]+)\n(?P<body>.*?)```", re.DOTALL)


def _vectors() -> dict[str, dict[str, Any]]:
    text = SPEC.read_text(encoding="utf-8")
    out: dict[str, dict[str, Any]] = {}
    for m in BLOCK.finditer(text):
        assert m["name"] not in out, f"golden vector {m['name']} appears twice"
        out[m["name"]] = json.loads(m["body"])
    return out


VECTORS = _vectors()


def _words(text: str) -> list[int]:
    return [int(w, 16) for w in text.split()]


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _entry(v: dict[str, Any]) -> AllowEntry:
    return AllowEntry(
        credential=v["credential"],
        doors_mask=v["doors_mask"],
        valid_from=_time(v["valid_from"]),
        valid_until=_time(v["valid_until"]),
        schedule_id=v["schedule_id"],
    )


def _schedule(v: dict[str, Any]) -> HardwareSchedule:
    return HardwareSchedule(v["schedule_id"], tuple(ScheduleWindow(*w) for w in v["windows"]))


def _of_type(kind: str) -> list[str]:
    return sorted(name for name, v in VECTORS.items() if v["type"] == kind)


def test_the_spec_has_every_kind_of_vector() -> None:
    kinds = {v["type"] for v in VECTORS.values()}
    assert kinds >= {
        "entry",
        "schedule",
        "event",
        "identity",
        "checksum",
        "commit_block",
        "status",
        "event_header",
        "adu",
    }


@pytest.mark.parametrize("name", _of_type("entry"))
def test_entry_vectors(name: str) -> None:
    v = VECTORS[name]
    entry = _entry(v["value"])
    assert rm.encode_entry(entry) == _words(v["registers"])
    assert rm.decode_entry(_words(v["registers"])) == entry


@pytest.mark.parametrize("name", _of_type("schedule"))
def test_schedule_vectors(name: str) -> None:
    v = VECTORS[name]
    schedule = _schedule(v["value"])
    assert rm.encode_schedule(schedule) == _words(v["registers"])
    assert rm.decode_schedule(_words(v["registers"])) == schedule


@pytest.mark.parametrize("name", _of_type("event"))
def test_event_vectors(name: str) -> None:
    v = VECTORS[name]["value"]
    record = rm.decode_event(_words(VECTORS[name]["registers"]))
    event = record.to_event()
    assert record.reason.name.lower() == v["reason"]
    assert (event.sequence, event.kind.value, event.door, event.credential) == (
        v["sequence"],
        v["kind"],
        v["door"],
        v["credential"],
    )
    assert event.at == datetime.fromisoformat(v["at"])
    assert rm.encode_event(record) == _words(VECTORS[name]["registers"])


def test_identity_vector() -> None:
    v = VECTORS["identity"]
    identity = rm.Identity(**v["value"])
    assert rm.encode_identity(identity) == _words(v["registers"])
    assert rm.decode_identity(_words(v["registers"])) == identity
    assert len(_words(v["registers"])) == rm.IDENTITY_COUNT


@pytest.mark.parametrize("name", _of_type("checksum"))
def test_checksum_vectors(name: str) -> None:
    v = VECTORS[name]
    schedules = [rm.encode_schedule(_schedule(VECTORS[s]["value"])) for s in v["schedules"]]
    entries = [rm.encode_entry(_entry(VECTORS[e]["value"])) for e in v["entries"]]
    assert rm.image_bytes(schedules, entries) == _bytes(v["image"])
    assert rm.image_checksum(schedules, entries) == int(v["crc32"], 16)
    flat_s = [r for s in schedules for r in s]
    flat_e = [r for e in entries for r in e]
    assert rm.flat_checksum(flat_s, len(schedules), flat_e, len(entries)) == int(v["crc32"], 16)


def test_empty_checksum_constant() -> None:
    assert int(VECTORS["checksum-empty"]["crc32"], 16) == rm.EMPTY_CHECKSUM


def test_commit_block_vector() -> None:
    v = VECTORS["commit-block"]
    value = v["value"]
    regs = rm.encode_commit_block(
        entries=value["entries"],
        schedules=value["schedules"],
        expected_checksum=int(value["expected_checksum"], 16),
        command=rm.Command[value["command"].upper()],
        tag=value["tag"],
    )
    assert regs == _words(v["registers"])
    assert len(regs) == rm.COMMIT_BLOCK_COUNT


def test_status_vector() -> None:
    v = VECTORS["status-ok"]
    value = v["value"]
    status = rm.decode_status(_words(v["registers"]))
    assert status == rm.Status(
        commit=rm.CommitStatus[value["commit"].upper()],
        command_tag=value["command_tag"],
        active_checksum=int(value["active_checksum"], 16),
        active_entries=value["active_entries"],
        active_schedules=value["active_schedules"],
        generation=value["generation"],
        staging_checksum=int(value["staging_checksum"], 16),
    )
    assert rm.encode_status(status) == _words(v["registers"])


def test_event_header_vector() -> None:
    v = VECTORS["event-header"]
    header = rm.decode_event_header(_words(v["registers"]), event_capacity=256, event_window=12)
    assert header == rm.EventHeader(**v["value"])
    assert rm.encode_event_header(header) == _words(v["registers"])


def _request(spec: dict[str, Any], transaction_id: int) -> ModbusPDU:
    fn = spec["function"]
    common = {"dev_id": 1, "transaction_id": transaction_id}
    if fn == "read_input_registers":
        return ReadInputRegistersRequest(address=spec["address"], count=spec["count"], **common)
    if fn == "write_registers":
        values = _words(VECTORS[spec["values_from"]]["registers"])
        return WriteMultipleRegistersRequest(address=spec["address"], registers=values, **common)
    if fn == "write_register":
        return WriteSingleRegisterRequest(
            address=spec["address"], registers=[spec["value"]], **common
        )
    if fn == "write_coil":
        return WriteSingleCoilRequest(address=spec["address"], bits=[spec["value"]], **common)
    raise AssertionError(f"unknown function {fn} in the spec")


@pytest.mark.parametrize("name", _of_type("adu"))
def test_adu_vectors(name: str) -> None:
    v = VECTORS[name]
    tid = v["tcp"]["transaction_id"]
    assert FramerSocket(DecodePDU(False)).buildFrame(_request(v["request"], tid)) == _bytes(
        v["tcp"]["bytes"]
    )
    assert FramerRTU(DecodePDU(False)).buildFrame(_request(v["request"], 0)) == _bytes(v["rtu"])
    # A server decodes the spec's bytes back into the same request.
    for framer, raw in (
        (FramerSocket(DecodePDU(True)), _bytes(v["tcp"]["bytes"])),
        (FramerRTU(DecodePDU(True)), _bytes(v["rtu"])),
    ):
        used, pdu = framer.handleFrame(raw, 0, 0)
        assert used == len(raw)
        assert pdu is not None
        assert pdu.address == v["request"]["address"]
        assert pdu.dev_id == 1


def test_adu_addresses_are_the_map_addresses() -> None:
    assert VECTORS["adu-write-entry"]["request"]["address"] == rm.entry_address(0)
    assert VECTORS["adu-commit"]["request"]["address"] == rm.COMMIT_BLOCK_BASE
    assert VECTORS["adu-door-mode"]["request"]["address"] == rm.door_mode_address(2)
    assert VECTORS["adu-door-mode"]["request"]["value"] == rm.DoorModeCode.LOCKDOWN
    assert VECTORS["adu-pulse"]["request"]["address"] == rm.pulse_coil_address(2)
    assert VECTORS["adu-read-identity"]["request"]["count"] == rm.IDENTITY_COUNT


def _table_rows() -> list[tuple[str, int]]:
    """(name, address) of every row of the spec's tables that has an Address and a Name."""
    rows: list[tuple[str, int]] = []
    header: list[str] | None = None
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(line) <= {"|", "-", " "}:
            continue
        if "Address" in header and "Name" in header:
            name = cells[header.index("Name")]
            address = cells[header.index("Address")]
            if name:
                match = re.match(r"0x[0-9A-Fa-f]+", address)
                assert match, f"{name}: address cell {address!r} does not start with a hex value"
                rows.append((name, int(match.group(0), 16)))
    return rows


def test_spec_tables_match_the_constants() -> None:
    rows = _table_rows()
    assert len(rows) >= 35
    for name, address in rows:
        assert hasattr(rm, name), f"the spec names {name}, which registers.py does not define"
        assert getattr(rm, name) == address, f"{name}: spec says {address:#06x}"


def test_every_address_constant_is_in_the_spec() -> None:
    documented = {name for name, _ in _table_rows()}
    prefixes = ("IDENT_", "STATUS_", "EVENT_", "HOLD_")
    skip = {"STATUS_BASE", "STATUS_COUNT", "EVENT_HEADER_BASE", "EVENT_HEADER_COUNT"}
    skip |= {"EVENT_RECORD_REGISTERS", "EVENT_FLAG_OVERFLOW"}
    constants = {
        name
        for name, value in vars(rm).items()
        if name.startswith(prefixes) and name.isupper() and type(value) is int
    } - skip
    assert constants <= documented, f"undocumented: {sorted(constants - documented)}"
