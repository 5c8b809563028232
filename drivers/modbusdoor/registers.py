"""The lockgate door-controller register map: addresses, field codes and pure codecs.

This module is the executable form of ``docs/protocols/door-controller.md``; the spec's
golden vectors are checked against it by the test suite. It does no I/O. Both the driver
(:mod:`drivers.modbusdoor.driver`) and the simulator (:mod:`simulators.controller`) use it.

Conventions
-----------
* Registers are 16-bit. A 32-bit field (``u32``) takes two registers, **high word first**
  (big-endian word order, the Modbus convention), and must be written in one request.
* Times are unsigned 32-bit Unix seconds (UTC). In an allow-list entry ``valid_from`` 0 means
  "since always" and ``valid_until`` ``0xFFFFFFFF`` means "for ever".
* ASCII fields are padded with NUL bytes; two characters per register, first one in the
  high byte.

Errors: encoders raise :class:`EncodeError` (a ``ValueError``) for values the map cannot
represent; decoders raise :class:`DecodeError` for register contents that are not valid per
the map. Both name the offending field.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

from drivers.base import (
    AllowEntry,
    ControllerEvent,
    ControllerEventKind,
    DoorMode,
    HardwareSchedule,
    ScheduleWindow,
)
from drivers.base import DenyReason as ContractDenyReason

# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------

MAGIC = 0x4C47
"""``"LG"``: first input register of every controller speaking this map."""
MAP_VERSION = 1

MAX_WRITE_REGISTERS = 123
"""Most registers one Write Multiple Registers (FC 16) request may carry."""
MAX_READ_REGISTERS = 125
"""Most registers one Read Holding/Input Registers (FC 03/04) request may return."""

MAX_DOORS = 16
MAX_CAPACITY = 7168
"""Most allow-list entries the address space has room for."""
MAX_SCHEDULE_ID = 254
MAX_SCHEDULE_SLOTS = 254
MAX_WINDOWS = 8
MAX_EVENT_WINDOW = 12
CONTROLLER_ID_BYTES = 32
FIRMWARE_BYTES = 16

U16_MAX = 0xFFFF
U32_MAX = 0xFFFFFFFF
TIME_UNBOUNDED_FROM = 0
TIME_UNBOUNDED_UNTIL = U32_MAX
MINUTES_PER_DAY = 1440

# ---------------------------------------------------------------------------------------------
# Input registers (FC 04, read-only)
# ---------------------------------------------------------------------------------------------

IDENT_MAGIC = 0x0000
IDENT_MAP_VERSION = 0x0001
IDENT_CONTROLLER_ID = 0x0002  # 16 registers, ASCII
IDENT_DOORS = 0x0012
IDENT_CAPACITY = 0x0013
IDENT_SCHEDULE_SLOTS = 0x0014
IDENT_EVENT_CAPACITY = 0x0015
IDENT_EVENT_WINDOW = 0x0016
IDENT_GENERATION = 0x0017  # u32
IDENT_FIRMWARE = 0x0019  # 8 registers, ASCII
IDENTITY_BASE = IDENT_MAGIC
IDENTITY_COUNT = 0x21

STATUS_COMMIT = 0x0040
STATUS_COMMAND_TAG = 0x0041
STATUS_ACTIVE_CHECKSUM = 0x0042  # u32
STATUS_ACTIVE_ENTRIES = 0x0044
STATUS_ACTIVE_SCHEDULES = 0x0045
STATUS_GENERATION = 0x0046  # u32
STATUS_STAGING_CHECKSUM = 0x0048  # u32
STATUS_BASE = STATUS_COMMIT
STATUS_COUNT = 10

EVENT_STORED = 0x0080
EVENT_FLAGS = 0x0081
EVENT_OLDEST = 0x0082  # u32
EVENT_NEWEST = 0x0084  # u32
EVENT_CURSOR = 0x0086  # u32
EVENT_WINDOW_COUNT = 0x0088
EVENT_HEADER_BASE = EVENT_STORED
EVENT_HEADER_COUNT = 16  # 0x0089..0x008F are reserved and read 0
EVENT_WINDOW = 0x0090
EVENT_RECORD_REGISTERS = 8

EVENT_FLAG_OVERFLOW = 0x0001

# ---------------------------------------------------------------------------------------------
# Holding registers (FC 03 read, FC 06/16 write)
# ---------------------------------------------------------------------------------------------

HOLD_CLOCK = 0x0000  # u32
HOLD_PULSE_SECONDS = 0x0002
HOLD_HELD_OPEN_SECONDS = 0x0003
HOLD_EVENT_READ_AFTER = 0x0010  # u32
HOLD_EVENT_ACK = 0x0012  # u32
HOLD_STAGING_ENTRIES = 0x0020
HOLD_STAGING_SCHEDULES = 0x0021
HOLD_EXPECTED_CHECKSUM = 0x0022  # u32
HOLD_COMMAND = 0x0024
HOLD_COMMAND_TAG = 0x0025
COMMIT_BLOCK_BASE = HOLD_STAGING_ENTRIES
COMMIT_BLOCK_COUNT = 6
HOLD_DOOR_BASE = 0x0100
DOOR_STRIDE = 2
DOOR_MODE_OFFSET = 0
DOOR_SCHEDULE_OFFSET = 1
HOLD_SCHEDULE_TABLE = 0x0400
SCHEDULE_RECORD_REGISTERS = 1 + 3 * MAX_WINDOWS  # 25
HOLD_ENTRY_TABLE = 0x2000
ENTRY_RECORD_REGISTERS = 8

PULSE_SECONDS_RANGE = (1, 600)
HELD_OPEN_SECONDS_RANGE = (1, 3600)
DEFAULT_PULSE_SECONDS = 5
DEFAULT_HELD_OPEN_SECONDS = 30

# ---------------------------------------------------------------------------------------------
# Coils (FC 01 read, FC 05/15 write) and discrete inputs (FC 02)
# ---------------------------------------------------------------------------------------------

COIL_PULSE_BASE = 0x0000
DI_DOOR_BASE = 0x0000
DI_STRIDE = 4
DI_OPEN = 0
DI_FORCED = 1
DI_HELD_OPEN = 2
DI_UNLOCKED = 3


def door_mode_address(door: int) -> int:
    """Holding register with the mode of ``door`` (1-based)."""
    return HOLD_DOOR_BASE + (door - 1) * DOOR_STRIDE + DOOR_MODE_OFFSET


def door_schedule_address(door: int) -> int:
    """Holding register with the schedule id used by ``door`` in scheduled mode."""
    return HOLD_DOOR_BASE + (door - 1) * DOOR_STRIDE + DOOR_SCHEDULE_OFFSET


def pulse_coil_address(door: int) -> int:
    return COIL_PULSE_BASE + door - 1


def door_inputs_address(door: int) -> int:
    """First of the ``DI_STRIDE`` discrete inputs of ``door``."""
    return DI_DOOR_BASE + (door - 1) * DI_STRIDE


def entry_address(row: int) -> int:
    """First holding register of staging row ``row`` (0-based)."""
    return HOLD_ENTRY_TABLE + row * ENTRY_RECORD_REGISTERS


def schedule_address(slot: int) -> int:
    """First holding register of staging schedule slot ``slot`` (0-based)."""
    return HOLD_SCHEDULE_TABLE + slot * SCHEDULE_RECORD_REGISTERS


# ---------------------------------------------------------------------------------------------
# Codes
# ---------------------------------------------------------------------------------------------


class CommitStatus(IntEnum):
    """Value of ``STATUS_COMMIT``: the outcome of the last command."""

    IDLE = 0
    BUSY = 1
    OK = 2
    CHECKSUM_ERROR = 3
    CAPACITY_EXCEEDED = 4
    INVALID_ENTRY = 5
    REJECTED = 6


class Command(IntEnum):
    """Values written to ``HOLD_COMMAND``."""

    NONE = 0
    COMMIT = 1
    COPY_ACTIVE_TO_STAGING = 2


class DoorModeCode(IntEnum):
    LOCKED = 0
    UNLOCKED = 1
    SCHEDULED = 2
    LOCKDOWN = 3


class EventKindCode(IntEnum):
    GRANTED = 1
    DENIED = 2
    FORCED = 3
    HELD_OPEN = 4
    PULSED = 5


class DenyReason(IntEnum):
    """High byte of an event's kind register; 0 for every kind except ``DENIED``."""

    NONE = 0
    UNKNOWN_CREDENTIAL = 1
    DOOR_NOT_ALLOWED = 2
    OUTSIDE_VALIDITY = 3
    OUTSIDE_SCHEDULE = 4
    LOCKDOWN = 5


DOOR_MODE_CODES: dict[DoorMode, DoorModeCode] = {
    DoorMode.LOCKED: DoorModeCode.LOCKED,
    DoorMode.UNLOCKED: DoorModeCode.UNLOCKED,
    DoorMode.SCHEDULED: DoorModeCode.SCHEDULED,
    DoorMode.LOCKDOWN: DoorModeCode.LOCKDOWN,
}
DOOR_MODES: dict[DoorModeCode, DoorMode] = {code: mode for mode, code in DOOR_MODE_CODES.items()}

EVENT_KINDS: dict[EventKindCode, ControllerEventKind] = {
    EventKindCode.GRANTED: ControllerEventKind.GRANTED,
    EventKindCode.DENIED: ControllerEventKind.DENIED,
    EventKindCode.FORCED: ControllerEventKind.FORCED,
    EventKindCode.HELD_OPEN: ControllerEventKind.HELD_OPEN,
    EventKindCode.PULSED: ControllerEventKind.PULSED,
}
DENY_REASONS: dict[DenyReason, ContractDenyReason] = {
    DenyReason.UNKNOWN_CREDENTIAL: ContractDenyReason.UNKNOWN_CREDENTIAL,
    DenyReason.DOOR_NOT_ALLOWED: ContractDenyReason.DOOR_NOT_ALLOWED,
    DenyReason.OUTSIDE_VALIDITY: ContractDenyReason.OUTSIDE_VALIDITY,
    DenyReason.OUTSIDE_SCHEDULE: ContractDenyReason.OUTSIDE_SCHEDULE,
    DenyReason.LOCKDOWN: ContractDenyReason.LOCKDOWN,
}
EVENT_KIND_CODES: dict[ControllerEventKind, EventKindCode] = {
    kind: code for code, kind in EVENT_KINDS.items()
}

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class RegisterMapError(ValueError):
    """A value does not fit the register map. ``field`` names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EncodeError(RegisterMapError):
    """A value cannot be written in this map (out of range, naive time, ...)."""


class DecodeError(RegisterMapError):
    """Registers read from a controller are not valid per the map."""


# ---------------------------------------------------------------------------------------------
# Primitive codecs
# ---------------------------------------------------------------------------------------------


def split_u32(value: int) -> list[int]:
    """``value`` as two registers, high word first."""
    return [(value >> 16) & U16_MAX, value & U16_MAX]


def join_u32(high: int, low: int) -> int:
    return (high << 16) | low


def registers_to_bytes(registers: Iterable[int]) -> bytes:
    """Big-endian bytes of ``registers`` (the bytes a Modbus frame carries)."""
    values = tuple(registers)
    try:
        return struct.pack(f">{len(values)}H", *values)
    except struct.error:
        raise ValueError("a register holds a value outside 0..65535") from None


def bytes_to_registers(data: bytes) -> list[int]:
    if len(data) % 2:
        raise ValueError("an odd number of bytes does not fill whole registers")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def check_registers(registers: Sequence[int], count: int, field: str) -> None:
    """Refuse a register list of the wrong length or with values outside 0..65535."""
    if len(registers) != count:
        raise DecodeError(field, f"expected {count} registers, got {len(registers)}")
    for i, r in enumerate(registers):
        if not isinstance(r, int) or not 0 <= r <= U16_MAX:
            raise DecodeError(field, f"register {i} holds {r!r}, not a 16-bit value")


def encode_ascii(text: str, size: int, field: str) -> list[int]:
    """``text`` as printable ASCII, NUL-padded to ``size`` bytes."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(field, "must be ASCII") from None
    if len(raw) > size:
        raise EncodeError(field, f"longer than {size} characters")
    if any(not 0x20 < b < 0x7F for b in raw):
        raise EncodeError(field, "must be printable ASCII without spaces")
    return bytes_to_registers(raw.ljust(size, b"\0"))


def decode_ascii(registers: Sequence[int], field: str) -> str:
    raw = registers_to_bytes(registers)
    text = raw.rstrip(b"\0")
    if b"\0" in text:
        raise DecodeError(field, "NUL byte inside the text")
    if any(not 0x20 < b < 0x7F for b in text):
        raise DecodeError(field, "not printable ASCII")
    return text.decode("ascii")


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise EncodeError(field, "must be a timezone-aware datetime")
    return value


def encode_time(value: datetime, field: str, *, rounding: str) -> int:
    """Unix seconds of ``value``; ``rounding`` is ``"up"`` or ``"down"`` for fractions."""
    stamp = _aware(value, field).timestamp()
    seconds = math.ceil(stamp) if rounding == "up" else math.floor(stamp)
    if not 0 <= seconds < U32_MAX:
        raise EncodeError(field, f"{value.isoformat()} is outside 1970-01-01..2106-02-07")
    return seconds


def decode_time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def unix_seconds(value: datetime, field: str = "time") -> int:
    """Whole Unix seconds of an aware ``value`` (rounded down), range-checked for u32."""
    return encode_time(value, field, rounding="down")


# ---------------------------------------------------------------------------------------------
# Allow-list entries
# ---------------------------------------------------------------------------------------------


def encode_entry(entry: AllowEntry) -> list[int]:
    """An :class:`AllowEntry` as its 8-register staging record.

    Layout: credential u32, doors mask u16, valid_from u32, valid_until u32, schedule id u16.
    Fractions of a second are rounded towards the *narrower* window (``valid_from`` up,
    ``valid_until`` down), so a controller never grants outside the requested window.
    """
    if not 1 <= entry.credential <= U32_MAX:
        raise EncodeError("credential", f"{entry.credential} is not in 1..4294967295")
    if not 1 <= entry.doors_mask <= U16_MAX:
        raise EncodeError("doors_mask", f"{entry.doors_mask:#x} is not in 0x0001..0xffff")
    if not 0 <= entry.schedule_id <= MAX_SCHEDULE_ID:
        raise EncodeError("schedule_id", f"{entry.schedule_id} is not in 0..{MAX_SCHEDULE_ID}")
    if entry.valid_from is None:
        start = TIME_UNBOUNDED_FROM
    else:
        start = encode_time(entry.valid_from, "valid_from", rounding="up")
        if start == TIME_UNBOUNDED_FROM:
            raise EncodeError("valid_from", "1970-01-01T00:00:00Z is the 'since always' value")
    if entry.valid_until is None:
        end = TIME_UNBOUNDED_UNTIL
    else:
        end = encode_time(entry.valid_until, "valid_until", rounding="down")
    return [
        *split_u32(entry.credential),
        entry.doors_mask,
        *split_u32(start),
        *split_u32(end),
        entry.schedule_id,
    ]


def decode_entry(registers: Sequence[int], field: str = "entry") -> AllowEntry:
    """The inverse of :func:`encode_entry`; refuses records that encode nothing valid."""
    check_registers(registers, ENTRY_RECORD_REGISTERS, field)
    credential = join_u32(registers[0], registers[1])
    mask = registers[2]
    start = join_u32(registers[3], registers[4])
    end = join_u32(registers[5], registers[6])
    schedule_id = registers[7]
    if credential == 0:
        raise DecodeError(f"{field}.credential", "0 is not a credential number")
    if mask == 0:
        raise DecodeError(f"{field}.doors_mask", "an entry must allow at least one door")
    if schedule_id > MAX_SCHEDULE_ID:
        raise DecodeError(f"{field}.schedule_id", f"{schedule_id} is not in 0..{MAX_SCHEDULE_ID}")
    return AllowEntry(
        credential=credential,
        doors_mask=mask,
        valid_from=None if start == TIME_UNBOUNDED_FROM else decode_time(start),
        valid_until=None if end == TIME_UNBOUNDED_UNTIL else decode_time(end),
        schedule_id=schedule_id,
    )


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------


def encode_schedule(schedule: HardwareSchedule) -> list[int]:
    """A :class:`HardwareSchedule` as its 25-register record: schedule id, then 8 windows of
    (days mask, start minute, end minute); unused windows are all zero."""
    if not 1 <= schedule.schedule_id <= MAX_SCHEDULE_ID:
        raise EncodeError("schedule_id", f"{schedule.schedule_id} is not in 1..{MAX_SCHEDULE_ID}")
    field = f"schedule {schedule.schedule_id}"
    if len(schedule.windows) > MAX_WINDOWS:
        raise EncodeError(f"{field}.windows", f"{len(schedule.windows)} > {MAX_WINDOWS}")
    out = [schedule.schedule_id]
    for i, w in enumerate(schedule.windows):
        wf = f"{field}.windows[{i}]"
        if not 1 <= w.days_mask <= 0x7F:
            raise EncodeError(f"{wf}.days_mask", f"{w.days_mask:#x} is not in 0x01..0x7f")
        if not 0 <= w.start_minute < w.end_minute <= MINUTES_PER_DAY:
            raise EncodeError(
                wf,
                f"need 0 <= start_minute < end_minute <= 1440, got "
                f"{w.start_minute}..{w.end_minute}",
            )
        out += [w.days_mask, w.start_minute, w.end_minute]
    out += [0] * (SCHEDULE_RECORD_REGISTERS - len(out))
    return out


def decode_schedule(registers: Sequence[int], field: str = "schedule") -> HardwareSchedule:
    check_registers(registers, SCHEDULE_RECORD_REGISTERS, field)
    schedule_id = registers[0]
    if not 1 <= schedule_id <= MAX_SCHEDULE_ID:
        raise DecodeError(f"{field}.schedule_id", f"{schedule_id} is not in 1..{MAX_SCHEDULE_ID}")
    windows: list[ScheduleWindow] = []
    ended = False
    for i in range(MAX_WINDOWS):
        days, start, end = registers[1 + 3 * i : 4 + 3 * i]
        wf = f"{field}.windows[{i}]"
        if days == 0:
            if start or end:
                raise DecodeError(wf, "an unused window must be all zero")
            ended = True
            continue
        if ended:
            raise DecodeError(wf, "a used window follows an unused one")
        if days > 0x7F:
            raise DecodeError(f"{wf}.days_mask", f"{days:#x} has bits above Sunday")
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise DecodeError(wf, f"minutes {start}..{end} are not an interval within a day")
        windows.append(ScheduleWindow(days, start, end))
    return HardwareSchedule(schedule_id=schedule_id, windows=tuple(windows))


def schedule_allows(schedule: HardwareSchedule, weekday: int, minute: int) -> bool:
    """Whether ``schedule`` allows local ``weekday`` (0 = Monday) at ``minute`` of the day."""
    return any(
        w.days_mask & (1 << weekday) and w.start_minute <= minute < w.end_minute
        for w in schedule.windows
    )


# ---------------------------------------------------------------------------------------------
# Checksum of an allow-list image
# ---------------------------------------------------------------------------------------------


def image_bytes(
    schedule_records: Sequence[Sequence[int]], entry_rows: Sequence[Sequence[int]]
) -> bytes:
    """The canonical encoding the checksum covers: schedule count u16, entry count u16, then
    every schedule record and every entry record, in table order, as big-endian registers."""
    header = [len(schedule_records), len(entry_rows)]
    return registers_to_bytes(itertools.chain(header, *schedule_records, *entry_rows))


def image_checksum(
    schedule_records: Sequence[Sequence[int]], entry_rows: Sequence[Sequence[int]]
) -> int:
    """CRC-32 (``zlib.crc32``) of :func:`image_bytes`."""
    return zlib.crc32(image_bytes(schedule_records, entry_rows)) & U32_MAX


def flat_checksum(
    schedule_registers: Sequence[int], schedules: int, entry_registers: Sequence[int], entries: int
) -> int:
    """:func:`image_checksum` of tables held as flat register lists (as a controller does)."""
    crc = zlib.crc32(registers_to_bytes([schedules, entries]))
    crc = zlib.crc32(
        registers_to_bytes(schedule_registers[: schedules * SCHEDULE_RECORD_REGISTERS]), crc
    )
    crc = zlib.crc32(registers_to_bytes(entry_registers[: entries * ENTRY_RECORD_REGISTERS]), crc)
    return crc & U32_MAX


EMPTY_CHECKSUM = image_checksum([], [])
"""Checksum of an empty allow-list without schedules (a controller after power loss)."""

# ---------------------------------------------------------------------------------------------
# Identity and status
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """The identity block (input registers ``0x0000..0x0020``)."""

    controller_id: str
    doors: int
    capacity: int
    schedule_slots: int
    event_capacity: int
    event_window: int
    generation: int
    firmware: str = ""
    magic: int = MAGIC
    map_version: int = MAP_VERSION


def encode_identity(identity: Identity) -> list[int]:
    if not identity.controller_id:
        raise EncodeError("controller_id", "must not be empty")
    _check_identity_ranges(identity, EncodeError)
    return [
        identity.magic,
        identity.map_version,
        *encode_ascii(identity.controller_id, CONTROLLER_ID_BYTES, "controller_id"),
        identity.doors,
        identity.capacity,
        identity.schedule_slots,
        identity.event_capacity,
        identity.event_window,
        *split_u32(identity.generation),
        *encode_ascii(identity.firmware, FIRMWARE_BYTES, "firmware"),
    ]


def _check_identity_ranges(identity: Identity, error: type[RegisterMapError]) -> None:
    checks: list[tuple[str, int, int, int]] = [
        ("magic", identity.magic, MAGIC, MAGIC),
        ("map_version", identity.map_version, MAP_VERSION, MAP_VERSION),
        ("doors", identity.doors, 1, MAX_DOORS),
        ("capacity", identity.capacity, 1, MAX_CAPACITY),
        ("schedule_slots", identity.schedule_slots, 0, MAX_SCHEDULE_SLOTS),
        ("event_capacity", identity.event_capacity, 1, U16_MAX),
        ("event_window", identity.event_window, 1, MAX_EVENT_WINDOW),
        ("generation", identity.generation, 0, U32_MAX),
    ]
    for name, value, low, high in checks:
        if not low <= value <= high:
            wanted = f"{low:#06x}" if low == high else f"{low}..{high}"
            raise error(name, f"{value} is not {wanted}")


def decode_identity(registers: Sequence[int]) -> Identity:
    """Decode and validate the identity block; a wrong magic or version is refused."""
    check_registers(registers, IDENTITY_COUNT, "identity")
    r = registers
    if r[0] != MAGIC:
        raise DecodeError("magic", f"{r[0]:#06x} is not {MAGIC:#06x}: not a lockgate controller")
    if r[1] != MAP_VERSION:
        raise DecodeError("map_version", f"version {r[1]} is not supported (need {MAP_VERSION})")
    controller_id = decode_ascii(r[2:18], "controller_id")
    if not controller_id:
        raise DecodeError("controller_id", "empty")
    identity = Identity(
        controller_id=controller_id,
        doors=r[0x12],
        capacity=r[0x13],
        schedule_slots=r[0x14],
        event_capacity=r[0x15],
        event_window=r[0x16],
        generation=join_u32(r[0x17], r[0x18]),
        firmware=decode_ascii(r[0x19:0x21], "firmware"),
    )
    _check_identity_ranges(identity, DecodeError)
    return identity


@dataclass(frozen=True, slots=True)
class Status:
    """The status block (input registers ``0x0040..0x0049``)."""

    commit: CommitStatus
    command_tag: int
    active_checksum: int
    active_entries: int
    active_schedules: int
    generation: int
    staging_checksum: int


def encode_status(status: Status) -> list[int]:
    return [
        int(status.commit),
        status.command_tag,
        *split_u32(status.active_checksum),
        status.active_entries,
        status.active_schedules,
        *split_u32(status.generation),
        *split_u32(status.staging_checksum),
    ]


def decode_status(registers: Sequence[int], *, capacity: int = MAX_CAPACITY) -> Status:
    """Decode the status block; counts above ``capacity`` or an unknown status are refused."""
    check_registers(registers, STATUS_COUNT, "status")
    try:
        commit = CommitStatus(registers[0])
    except ValueError:
        raise DecodeError("commit_status", f"unknown status code {registers[0]}") from None
    status = Status(
        commit=commit,
        command_tag=registers[1],
        active_checksum=join_u32(registers[2], registers[3]),
        active_entries=registers[4],
        active_schedules=registers[5],
        generation=join_u32(registers[6], registers[7]),
        staging_checksum=join_u32(registers[8], registers[9]),
    )
    if status.active_entries > capacity:
        raise DecodeError("active_entries", f"{status.active_entries} > capacity {capacity}")
    if status.active_schedules > MAX_SCHEDULE_SLOTS:
        raise DecodeError("active_schedules", f"{status.active_schedules} > {MAX_SCHEDULE_SLOTS}")
    return status


def encode_commit_block(
    *, entries: int, schedules: int, expected_checksum: int, command: Command, tag: int
) -> list[int]:
    """The 6 registers written at ``COMMIT_BLOCK_BASE`` to start a command."""
    for name, value, high in (
        ("entries", entries, U16_MAX),
        ("schedules", schedules, U16_MAX),
        ("expected_checksum", expected_checksum, U32_MAX),
        ("tag", tag, U16_MAX),
    ):
        if not 0 <= value <= high:
            raise EncodeError(name, f"{value} is not in 0..{high}")
    return [entries, schedules, *split_u32(expected_checksum), int(command), tag]


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One record of the event window, as stored by the controller."""

    sequence: int
    kind: EventKindCode
    reason: DenyReason
    door: int
    credential: int
    at: int

    def to_event(self) -> ControllerEvent:
        return ControllerEvent(
            sequence=self.sequence,
            kind=EVENT_KINDS[self.kind],
            credential=self.credential,
            door=self.door,
            at=decode_time(self.at),
            reason=None if self.reason is DenyReason.NONE else DENY_REASONS[self.reason],
        )


def encode_event(record: EventRecord) -> list[int]:
    """An event as its 8-register record: sequence u32, kind (low byte) | reason (high
    byte), door u16, credential u32, timestamp u32."""
    _check_event(record, EncodeError, "event")
    return [
        *split_u32(record.sequence),
        (int(record.reason) << 8) | int(record.kind),
        record.door,
        *split_u32(record.credential),
        *split_u32(record.at),
    ]


def _check_event(record: EventRecord, error: type[RegisterMapError], field: str) -> None:
    if not 1 <= record.sequence <= U32_MAX:
        raise error(f"{field}.sequence", f"{record.sequence} is not in 1..{U32_MAX}")
    if not 1 <= record.door <= MAX_DOORS:
        raise error(f"{field}.door", f"{record.door} is not in 1..{MAX_DOORS}")
    if not 0 <= record.credential <= U32_MAX or not 0 <= record.at <= U32_MAX:
        raise error(field, "credential and timestamp are 32-bit values")
    denied = record.kind is EventKindCode.DENIED
    if denied == (record.reason is DenyReason.NONE):
        raise error(f"{field}.reason", "a denial needs a reason and only a denial has one")
    has_credential = record.kind in (EventKindCode.GRANTED, EventKindCode.DENIED)
    if not has_credential and record.credential != 0:
        raise error(f"{field}.credential", f"must be 0 for a {record.kind.name} event")


def decode_event(registers: Sequence[int], field: str = "event") -> EventRecord:
    check_registers(registers, EVENT_RECORD_REGISTERS, field)
    kind_code = registers[2] & 0xFF
    reason_code = registers[2] >> 8
    try:
        kind = EventKindCode(kind_code)
    except ValueError:
        raise DecodeError(f"{field}.kind", f"unknown event kind {kind_code}") from None
    try:
        reason = DenyReason(reason_code)
    except ValueError:
        raise DecodeError(f"{field}.reason", f"unknown denial reason {reason_code}") from None
    record = EventRecord(
        sequence=join_u32(registers[0], registers[1]),
        kind=kind,
        reason=reason,
        door=registers[3],
        credential=join_u32(registers[4], registers[5]),
        at=join_u32(registers[6], registers[7]),
    )
    _check_event(record, DecodeError, field)
    return record


@dataclass(frozen=True, slots=True)
class EventHeader:
    """The event block header (input registers ``0x0080..0x008F``)."""

    stored: int
    overflow: bool
    oldest: int
    newest: int
    cursor: int
    window_count: int


def encode_event_header(header: EventHeader) -> list[int]:
    regs = [
        header.stored,
        EVENT_FLAG_OVERFLOW if header.overflow else 0,
        *split_u32(header.oldest),
        *split_u32(header.newest),
        *split_u32(header.cursor),
        header.window_count,
    ]
    return regs + [0] * (EVENT_HEADER_COUNT - len(regs))


def decode_event_header(
    registers: Sequence[int], *, event_capacity: int, event_window: int
) -> EventHeader:
    check_registers(registers, EVENT_HEADER_COUNT, "event header")
    flags = registers[1]
    if flags & ~EVENT_FLAG_OVERFLOW:
        raise DecodeError("event_flags", f"undefined flag bits in {flags:#06x}")
    if any(registers[9:]):
        raise DecodeError("event header", "reserved registers 0x0089..0x008F are not zero")
    header = EventHeader(
        stored=registers[0],
        overflow=bool(flags & EVENT_FLAG_OVERFLOW),
        oldest=join_u32(registers[2], registers[3]),
        newest=join_u32(registers[4], registers[5]),
        cursor=join_u32(registers[6], registers[7]),
        window_count=registers[8],
    )
    if header.stored > event_capacity:
        raise DecodeError("event_stored", f"{header.stored} > capacity {event_capacity}")
    if header.window_count > min(event_window, header.stored):
        raise DecodeError(
            "event_window_count",
            f"{header.window_count} events in a window of {event_window} "
            f"with {header.stored} stored",
        )
    if header.stored == 0:
        if header.oldest != 0:
            raise DecodeError("event_oldest", "must be 0 when no event is stored")
    elif not 1 <= header.oldest <= header.newest or (
        header.newest - header.oldest + 1 != header.stored
    ):
        raise DecodeError(
            "event_oldest",
            f"oldest {header.oldest}, newest {header.newest} and {header.stored} stored "
            "do not agree",
        )
    return header


def window_records_needed(window: int) -> int:
    """Registers of one read covering the event header and a window of ``window`` events."""
    return EVENT_HEADER_COUNT + window * EVENT_RECORD_REGISTERS
