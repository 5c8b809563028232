"""The state of a simulated door controller, independent of any wire protocol.

:class:`ControllerMemory` holds what a real controller keeps: the staging and active
allow-lists and schedule tables, the doors (mode, schedule, sensor, lock), the event FIFO,
the clock and the generation counter. The Modbus server (:mod:`simulators.controller.server`)
maps registers onto it; the control interface drives it (present a credential, cut the
power, move the clock).

Time-driven effects (a busy commit finishing, a door held open too long, a pulse ending)
are evaluated lazily from the controller's clock whenever the state is read or changed, so
the simulation is deterministic and needs no background task.

Non-volatile: the generation, the last event sequence number and the clock. Everything else
is lost by :meth:`ControllerMemory.power_loss`.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.base import AllowEntry, HardwareSchedule
from drivers.modbusdoor import registers as rm
from drivers.modbusdoor.registers import (
    CommitStatus,
    DenyReason,
    DoorModeCode,
    EventKindCode,
    EventRecord,
)

DEFAULT_TIMEZONE = "Europe/Stockholm"


@functools.lru_cache(maxsize=16384)
def _decode_row(row: tuple[int, ...]) -> AllowEntry:
    """Decoded entry rows, remembered: a commit decodes the whole table again."""
    return rm.decode_entry(row)


class WriteRefused(ValueError):
    """A write carries a value the controller does not accept (Modbus exception 03)."""


class DeviceBusy(Exception):
    """The controller is busy with a commit and refuses the write (Modbus exception 06)."""


@dataclass
class Door:
    """One door: its configuration (mode, schedule) and its physical state."""

    mode: DoorModeCode = DoorModeCode.LOCKED
    schedule_id: int = 0
    open: bool = False
    forced: bool = False
    held_open: bool = False
    released_until: float = 0.0
    """Instant until which a grant or a pulse keeps the lock released."""
    opened_at: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of presenting a credential at a door."""

    granted: bool
    reason: DenyReason
    sequence: int


@dataclass
class _PendingCommit:
    ready_at: float
    tag: int


@dataclass
class Faults:
    """Faults of the controller's firmware (the transport faults live in the server)."""

    reject_commits: bool = False
    """Every commit ends with status REJECTED."""
    corrupt_commits: bool = False
    """A commit reports OK but the last entry is lost on the way to the active table."""
    commit_busy_s: float = 0.0
    """A commit stays BUSY this long before it completes."""

    def clear(self) -> None:
        self.reject_commits = False
        self.corrupt_commits = False
        self.commit_busy_s = 0.0


class ControllerMemory:
    """Everything a simulated controller holds. Not thread-safe: use from one event loop."""

    def __init__(
        self,
        *,
        controller_id: str,
        doors: int = 4,
        capacity: int = 2000,
        schedule_slots: int = 64,
        event_capacity: int = 256,
        event_window: int = rm.MAX_EVENT_WINDOW,
        timezone: str = DEFAULT_TIMEZONE,
        firmware: str = "sim-1.0",
        generation: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
        self.timezone = timezone
        identity = rm.Identity(
            controller_id=controller_id,
            doors=doors,
            capacity=capacity,
            schedule_slots=schedule_slots,
            event_capacity=event_capacity,
            event_window=event_window,
            generation=generation,
            firmware=firmware,
        )
        rm.encode_identity(identity)  # validates every field, naming the bad one
        self.controller_id = controller_id
        self.door_count = doors
        self.capacity = capacity
        self.schedule_slots = schedule_slots
        self.event_capacity = event_capacity
        self.event_window = event_window
        self.firmware = firmware
        self.generation = generation
        self.faults = Faults()
        self._clock = clock
        self._offset = 0.0
        self._frozen: float | None = None
        self._sequence = 0
        self._reset_volatile()

    # ------------------------------------------------------------------ power and time

    def _reset_volatile(self) -> None:
        self.staging_schedules = [0] * (self.schedule_slots * rm.SCHEDULE_RECORD_REGISTERS)
        self.staging_entries = [0] * (self.capacity * rm.ENTRY_RECORD_REGISTERS)
        self.staging_entry_count = 0
        self.staging_schedule_count = 0
        self.expected_checksum = 0
        self.command_register = 0
        """HOLD_COMMAND as last written."""
        self.tag_register = 0
        """HOLD_COMMAND_TAG as last written; a command reports it in STATUS_COMMAND_TAG."""
        self.command_tag = 0
        self.commit_status = CommitStatus.IDLE
        self.staging_checksum = 0
        self.active_schedule_registers: list[int] = []
        self.active_entry_registers: list[int] = []
        self.active_entries: list[AllowEntry] = []
        self.active_schedules: dict[int, HardwareSchedule] = {}
        self.active_checksum = rm.EMPTY_CHECKSUM
        self.doors = [Door() for _ in range(self.door_count)]
        self.events: deque[EventRecord] = deque()
        self.overflow = False
        self.read_after = 0
        self.last_ack = 0
        self.pulse_seconds = rm.DEFAULT_PULSE_SECONDS
        self.held_open_seconds = rm.DEFAULT_HELD_OPEN_SECONDS
        self._pending: _PendingCommit | None = None

    def power_loss(self) -> int:
        """Lose everything volatile and start a new generation; returns the generation."""
        self._reset_volatile()
        self.generation = (self.generation + 1) & rm.U32_MAX
        return self.generation

    def now(self) -> float:
        """The controller's clock, Unix seconds."""
        if self._frozen is not None:
            return self._frozen
        return self._clock() + self._offset

    def set_time(self, at: float, *, frozen: bool = False) -> None:
        """Set the clock to ``at`` (Unix seconds); ``frozen`` stops it there."""
        if not 0 <= at < rm.U32_MAX:
            raise WriteRefused(f"clock: {at} is outside the u32 range of Unix seconds")
        self._frozen = at if frozen else None
        self._offset = at - self._clock()
        self.advance()

    def local_time(self, at: float | None = None) -> datetime:
        return datetime.fromtimestamp(self.now() if at is None else at, self.tz)

    def advance(self) -> None:
        """Apply what the passing of time has done since the last access."""
        now = self.now()
        if self._pending is not None and now >= self._pending.ready_at:
            self._pending = None
            self._finish_commit()
        for number, door in enumerate(self.doors, start=1):
            if (
                door.open
                and door.opened_at is not None
                and not door.forced
                and not door.held_open
                and not self._held_unlocked(door, now)
                and now - door.opened_at >= self.held_open_seconds
            ):
                door.held_open = True
                self._append(
                    EventKindCode.HELD_OPEN,
                    DenyReason.NONE,
                    number,
                    0,
                    at=door.opened_at + self.held_open_seconds,
                )

    # ------------------------------------------------------------------ identity and status

    def identity(self) -> rm.Identity:
        return rm.Identity(
            controller_id=self.controller_id,
            doors=self.door_count,
            capacity=self.capacity,
            schedule_slots=self.schedule_slots,
            event_capacity=self.event_capacity,
            event_window=self.event_window,
            generation=self.generation,
            firmware=self.firmware,
        )

    def status(self) -> rm.Status:
        self.advance()
        return rm.Status(
            commit=self.commit_status,
            command_tag=self.command_tag,
            active_checksum=self.active_checksum,
            active_entries=len(self.active_entries),
            active_schedules=len(self.active_schedules),
            generation=self.generation,
            staging_checksum=self.staging_checksum,
        )

    @property
    def busy(self) -> bool:
        self.advance()
        return self._pending is not None

    # ------------------------------------------------------------------ commands

    def command(self, command: int, tag: int) -> None:
        """Run a command written to the COMMAND register."""
        if self.busy:
            raise DeviceBusy("a commit is in progress")
        try:
            cmd = rm.Command(command)
        except ValueError:
            raise WriteRefused(f"COMMAND: unknown command {command}") from None
        if cmd is rm.Command.NONE:
            return
        self.command_tag = tag
        if cmd is rm.Command.COPY_ACTIVE_TO_STAGING:
            self._copy_active_to_staging()
            return
        if self.faults.commit_busy_s > 0:
            self.commit_status = CommitStatus.BUSY
            self._pending = _PendingCommit(self.now() + self.faults.commit_busy_s, tag)
            return
        self._finish_commit()

    def _copy_active_to_staging(self) -> None:
        n = len(self.active_schedule_registers)
        self.staging_schedules[:n] = self.active_schedule_registers
        n = len(self.active_entry_registers)
        self.staging_entries[:n] = self.active_entry_registers
        self.staging_schedule_count = len(self.active_schedules)
        self.staging_entry_count = len(self.active_entries)
        self.expected_checksum = self.active_checksum
        self.commit_status = CommitStatus.OK

    def _finish_commit(self) -> None:
        self.commit_status = self._commit()

    def _commit(self) -> CommitStatus:
        entries, schedules = self.staging_entry_count, self.staging_schedule_count
        if entries > self.capacity or schedules > self.schedule_slots:
            return CommitStatus.CAPACITY_EXCEEDED
        schedule_regs = self.staging_schedules[: schedules * rm.SCHEDULE_RECORD_REGISTERS]
        entry_regs = self.staging_entries[: entries * rm.ENTRY_RECORD_REGISTERS]
        self.staging_checksum = rm.flat_checksum(schedule_regs, schedules, entry_regs, entries)
        if self.staging_checksum != self.expected_checksum:
            return CommitStatus.CHECKSUM_ERROR
        try:
            decoded_schedules = self._decode_schedules(schedule_regs, schedules)
            decoded_entries = self._decode_entries(entry_regs, entries, decoded_schedules)
        except rm.DecodeError:
            return CommitStatus.INVALID_ENTRY
        if self.faults.reject_commits:
            return CommitStatus.REJECTED
        if self.faults.corrupt_commits and decoded_entries:
            decoded_entries.pop()
            entry_regs = entry_regs[: -rm.ENTRY_RECORD_REGISTERS]
        self.active_schedules = decoded_schedules
        self.active_entries = decoded_entries
        self.active_schedule_registers = list(schedule_regs)
        self.active_entry_registers = list(entry_regs)
        self.active_checksum = rm.flat_checksum(
            schedule_regs, len(decoded_schedules), entry_regs, len(decoded_entries)
        )
        return CommitStatus.OK

    def _decode_schedules(self, regs: list[int], count: int) -> dict[int, HardwareSchedule]:
        out: dict[int, HardwareSchedule] = {}
        size = rm.SCHEDULE_RECORD_REGISTERS
        for i in range(count):
            schedule = rm.decode_schedule(regs[i * size : (i + 1) * size], f"schedule slot {i}")
            if schedule.schedule_id in out:
                raise rm.DecodeError(f"schedule slot {i}", "duplicate schedule id")
            out[schedule.schedule_id] = schedule
        return out

    def _decode_entries(
        self, regs: list[int], count: int, schedules: dict[int, HardwareSchedule]
    ) -> list[AllowEntry]:
        out: list[AllowEntry] = []
        size = rm.ENTRY_RECORD_REGISTERS
        doors = (1 << self.door_count) - 1
        for i in range(count):
            try:
                entry = _decode_row(tuple(regs[i * size : (i + 1) * size]))
            except rm.DecodeError as exc:
                raise rm.DecodeError(f"entry row {i}", exc.reason) from None
            if entry.doors_mask & ~doors:
                raise rm.DecodeError(f"entry row {i}", "door beyond the controller's doors")
            if entry.schedule_id and entry.schedule_id not in schedules:
                raise rm.DecodeError(f"entry row {i}", "unknown schedule id")
            out.append(entry)
        return out

    # ------------------------------------------------------------------ settings

    def set_pulse_seconds(self, value: int) -> None:
        low, high = rm.PULSE_SECONDS_RANGE
        if not low <= value <= high:
            raise WriteRefused(f"PULSE_SECONDS: {value} is not in {low}..{high}")
        self.pulse_seconds = value

    def set_held_open_seconds(self, value: int) -> None:
        low, high = rm.HELD_OPEN_SECONDS_RANGE
        if not low <= value <= high:
            raise WriteRefused(f"HELD_OPEN_SECONDS: {value} is not in {low}..{high}")
        self.held_open_seconds = value

    # ------------------------------------------------------------------ doors

    def door(self, number: int) -> Door:
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"door: must be an integer, got {number!r}")
        if not 1 <= number <= self.door_count:
            raise ValueError(f"door: must be in 1..{self.door_count}, got {number}")
        self.advance()
        return self.doors[number - 1]

    def set_door_mode(self, number: int, code: int) -> None:
        door = self.door(number)
        try:
            door.mode = DoorModeCode(code)
        except ValueError:
            raise WriteRefused(f"DOOR_MODE door {number}: unknown mode {code}") from None
        if door.mode is DoorModeCode.LOCKDOWN:
            door.released_until = 0.0

    def set_door_schedule(self, number: int, schedule_id: int) -> None:
        door = self.door(number)
        if not 0 <= schedule_id <= rm.MAX_SCHEDULE_ID:
            raise WriteRefused(f"DOOR_SCHEDULE door {number}: {schedule_id} is not a schedule id")
        door.schedule_id = schedule_id

    def pulse(self, number: int) -> int:
        """Release the lock for the pulse time; returns the event sequence."""
        door = self.door(number)
        if door.mode is DoorModeCode.LOCKDOWN:
            raise WriteRefused(f"PULSE door {number}: the door is in lockdown")
        now = self.now()
        door.released_until = now + self.pulse_seconds
        return self._append(EventKindCode.PULSED, DenyReason.NONE, number, 0, at=now)

    def unlocked(self, number: int) -> bool:
        """Whether the lock of door ``number`` is released right now."""
        door = self.door(number)
        now = self.now()
        return self._held_unlocked(door, now) or (
            door.mode is not DoorModeCode.LOCKDOWN and door.released_until > now
        )

    def _held_unlocked(self, door: Door, now: float) -> bool:
        """Released by the door's mode (not by a grant or a pulse)."""
        if door.mode is DoorModeCode.UNLOCKED:
            return True
        if door.mode is DoorModeCode.SCHEDULED:
            return self._schedule_allows(door.schedule_id, now)
        return False

    def set_door_open(self, number: int, is_open: bool) -> None:
        """The door's position sensor changed. Opening a locked door is a forced entry."""
        door = self.door(number)
        now = self.now()
        if is_open and not door.open:
            door.open = True
            door.opened_at = now
            if not self.unlocked(number):
                door.forced = True
                self._append(EventKindCode.FORCED, DenyReason.NONE, number, 0, at=now)
        elif not is_open and door.open:
            door.open = False
            door.opened_at = None
            door.forced = False
            door.held_open = False

    # ------------------------------------------------------------------ decisions

    def present(self, credential: int, number: int) -> Decision:
        """A credential is presented at door ``number``: grant or deny, and log the event."""
        if isinstance(credential, bool) or not isinstance(credential, int):
            raise ValueError(f"credential: must be an integer, got {credential!r}")
        if not 1 <= credential <= rm.U32_MAX:
            raise ValueError(f"credential: must be in 1..{rm.U32_MAX}, got {credential}")
        door = self.door(number)
        now = self.now()
        reason = self._deny_reason(credential, number, door, now)
        if reason is DenyReason.NONE:
            door.released_until = now + self.pulse_seconds
            kind = EventKindCode.GRANTED
        else:
            kind = EventKindCode.DENIED
        sequence = self._append(kind, reason, number, credential, at=now)
        return Decision(granted=reason is DenyReason.NONE, reason=reason, sequence=sequence)

    def _deny_reason(self, credential: int, number: int, door: Door, now: float) -> DenyReason:
        if door.mode is DoorModeCode.LOCKDOWN:
            return DenyReason.LOCKDOWN
        entries = [e for e in self.active_entries if e.credential == credential]
        if not entries:
            return DenyReason.UNKNOWN_CREDENTIAL
        entries = [e for e in entries if e.doors_mask & (1 << (number - 1))]
        if not entries:
            return DenyReason.DOOR_NOT_ALLOWED
        at = datetime.fromtimestamp(now, UTC)
        entries = [
            e
            for e in entries
            if (e.valid_from is None or e.valid_from <= at)
            and (e.valid_until is None or at < e.valid_until)
        ]
        if not entries:
            return DenyReason.OUTSIDE_VALIDITY
        if not any(
            e.schedule_id == 0 or self._schedule_allows(e.schedule_id, now) for e in entries
        ):
            return DenyReason.OUTSIDE_SCHEDULE
        return DenyReason.NONE

    def _schedule_allows(self, schedule_id: int, now: float) -> bool:
        """Whether schedule ``schedule_id`` of the active table allows ``now``; a missing
        schedule (or id 0 on a door) allows nothing, so a misconfigured door stays locked."""
        schedule = self.active_schedules.get(schedule_id)
        if schedule is None:
            return False
        local = self.local_time(now)
        return rm.schedule_allows(schedule, local.weekday(), local.hour * 60 + local.minute)

    # ------------------------------------------------------------------ events

    def _append(
        self, kind: EventKindCode, reason: DenyReason, door: int, credential: int, *, at: float
    ) -> int:
        self._sequence += 1
        if len(self.events) >= self.event_capacity:
            self.events.popleft()
            self.overflow = True
        self.events.append(
            EventRecord(
                sequence=self._sequence,
                kind=kind,
                reason=reason,
                door=door,
                credential=credential,
                at=int(at),
            )
        )
        return self._sequence

    @property
    def last_sequence(self) -> int:
        return self._sequence

    def event_header(self) -> rm.EventHeader:
        self.advance()
        window = self.event_records()
        return rm.EventHeader(
            stored=len(self.events),
            overflow=self.overflow,
            oldest=self.events[0].sequence if self.events else 0,
            newest=self._sequence,
            cursor=self.read_after,
            window_count=len(window),
        )

    def event_records(self) -> list[EventRecord]:
        """The events after the read cursor, oldest first, at most one window."""
        if not self.events:
            return []
        skip = max(0, self.read_after + 1 - self.events[0].sequence)
        return list(itertools.islice(self.events, skip, skip + self.event_window))

    def acknowledge(self, up_to: int) -> None:
        """Drop the events up to and including ``up_to`` and clear the overflow flag. A
        value beyond the newest sequence ever assigned acknowledges events that do not
        exist: refused (exception 03), nothing changes."""
        if up_to > self._sequence:
            raise WriteRefused(f"EVENT_ACK: {up_to} is beyond the newest event {self._sequence}")
        while self.events and self.events[0].sequence <= up_to:
            self.events.popleft()
        self.last_ack = up_to
        self.overflow = False

    # ------------------------------------------------------------------ reports

    def report(self) -> dict[str, object]:
        """A JSON-friendly summary of the whole state (the control ``status`` command)."""
        status = self.status()
        return {
            "controller_id": self.controller_id,
            "generation": self.generation,
            "clock": datetime.fromtimestamp(int(self.now()), UTC).isoformat(),
            "timezone": self.timezone,
            "capacity": self.capacity,
            "schedule_slots": self.schedule_slots,
            "commit_status": status.commit.name.lower(),
            "command_tag": status.command_tag,
            "active_checksum": status.active_checksum,
            "active_entries": status.active_entries,
            "active_schedules": status.active_schedules,
            "staging_entries": self.staging_entry_count,
            "staging_schedules": self.staging_schedule_count,
            "events": {
                "stored": len(self.events),
                "oldest": self.events[0].sequence if self.events else 0,
                "newest": self._sequence,
                "overflow": self.overflow,
                "cursor": self.read_after,
                "acknowledged": self.last_ack,
            },
            "doors": [self.door_report(n) for n in range(1, self.door_count + 1)],
            "faults": {
                "reject_commits": self.faults.reject_commits,
                "corrupt_commits": self.faults.corrupt_commits,
                "commit_busy_s": self.faults.commit_busy_s,
            },
        }

    def door_report(self, number: int) -> dict[str, object]:
        door = self.door(number)
        return {
            "door": number,
            "mode": rm.DOOR_MODES[door.mode].value,
            "schedule_id": door.schedule_id,
            "open": door.open,
            "forced": door.forced,
            "held_open": door.held_open,
            "unlocked": self.unlocked(number),
        }


__all__ = [
    "DEFAULT_TIMEZONE",
    "ControllerMemory",
    "Decision",
    "DeviceBusy",
    "Door",
    "Faults",
    "WriteRefused",
]
