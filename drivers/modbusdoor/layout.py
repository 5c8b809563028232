"""Where allow-list records go in the controller's tables, and which registers a write touches.

Pure functions, no I/O. A :class:`Layout` is the exact content of a controller's tables (the
schedule records and the entry rows, in table order); its checksum is what the controller
reports after committing it.

A *full* layout sorts the entries, so the same allow-list always gives the same checksum.
A *patch* keeps every row of the previous layout that is still wanted where it is, puts new
rows into the holes left by removed ones, appends the rest and, when the list shrank, moves
rows from the end into the remaining holes. A revocation of one credential therefore rewrites
one row (the hole is filled by the last row) instead of the whole table.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from drivers.base import AllowEntry, HardwareSchedule
from drivers.modbusdoor.registers import (
    ENTRY_RECORD_REGISTERS,
    HOLD_ENTRY_TABLE,
    HOLD_SCHEDULE_TABLE,
    MAX_WRITE_REGISTERS,
    SCHEDULE_RECORD_REGISTERS,
    EncodeError,
    encode_entry,
    encode_schedule,
    image_checksum,
)

Record = tuple[int, ...]


@dataclass(frozen=True)
class Layout:
    """Content of a controller's schedule and entry tables, in table order."""

    schedules: tuple[Record, ...]
    rows: tuple[Record, ...]

    @cached_property
    def checksum(self) -> int:
        """The checksum a controller reports while it holds this layout."""
        return image_checksum(self.schedules, self.rows)

    @property
    def full_write_requests(self) -> int:
        """Requests a full write of the tables takes (commit block not counted)."""
        return math.ceil(
            len(self.schedules) * SCHEDULE_RECORD_REGISTERS / MAX_WRITE_REGISTERS
        ) + math.ceil(len(self.rows) * ENTRY_RECORD_REGISTERS / MAX_WRITE_REGISTERS)


@dataclass(frozen=True, slots=True)
class RegisterWrite:
    """One Write Multiple Registers request: ``values`` starting at ``address``."""

    address: int
    values: tuple[int, ...]


def encode_schedules(schedules: Iterable[HardwareSchedule]) -> tuple[Record, ...]:
    """Schedule records sorted by id; duplicate ids are refused."""
    records: dict[int, Record] = {}
    for schedule in schedules:
        if schedule.schedule_id in records:
            raise EncodeError("schedules", f"schedule id {schedule.schedule_id} appears twice")
        records[schedule.schedule_id] = tuple(encode_schedule(schedule))
    return tuple(records[k] for k in sorted(records))


def encode_entries(entries: Iterable[AllowEntry]) -> list[Record]:
    out: list[Record] = []
    for i, entry in enumerate(entries):
        try:
            out.append(tuple(encode_entry(entry)))
        except EncodeError as exc:
            raise EncodeError(f"entries[{i}].{exc.field}", exc.reason) from None
    return out


def full_layout(schedules: tuple[Record, ...], rows: Sequence[Record]) -> Layout:
    """The canonical layout: entry rows sorted."""
    return Layout(schedules=schedules, rows=tuple(sorted(rows)))


def patch_layout(
    previous: Layout, schedules: tuple[Record, ...], rows: Sequence[Record]
) -> tuple[Layout, list[int]]:
    """A layout holding ``rows`` that differs from ``previous`` in as few rows as possible.

    Returns the layout and the indices of the rows that must be written (sorted)."""
    wanted = Counter(rows)
    kept: list[Record | None] = []
    for row in previous.rows:
        if wanted[row] > 0:
            wanted[row] -= 1
            kept.append(row)
        else:
            kept.append(None)
    additions = sorted(wanted.elements())
    changed: set[int] = set()
    holes = deque(i for i, row in enumerate(kept) if row is None)
    for row in additions:
        if holes:
            i = holes.popleft()
            kept[i] = row
        else:
            i = len(kept)
            kept.append(row)
        changed.add(i)
    # The list shrank: fill the remaining holes with rows taken from the end.
    while holes:
        if kept[-1] is None:
            kept.pop()
            holes.pop()
            continue
        tail = kept.pop()
        changed.discard(len(kept))
        hole = holes.popleft()
        kept[hole] = tail
        changed.add(hole)
    final = tuple(row for row in kept if row is not None)
    return Layout(schedules=schedules, rows=final), sorted(i for i in changed if i < len(final))


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Group sorted indices into (first, count) runs of consecutive values."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def chunk(
    address: int, values: Sequence[int], limit: int = MAX_WRITE_REGISTERS
) -> list[RegisterWrite]:
    """Split a contiguous register range into requests of at most ``limit`` registers."""
    return [
        RegisterWrite(address + i, tuple(values[i : i + limit]))
        for i in range(0, len(values), limit)
    ]


def table_writes(
    base: int, records: Sequence[Record], stride: int, indices: Sequence[int] | None = None
) -> list[RegisterWrite]:
    """Requests writing ``records`` (or only those at ``indices``) into a table at ``base``.

    Consecutive records are written together and split across requests without regard to
    record boundaries: a controller stages raw registers and decodes them at commit."""
    if indices is None:
        indices = range(len(records))
    writes: list[RegisterWrite] = []
    for first, count in _runs(list(indices)):
        flat = [v for record in records[first : first + count] for v in record]
        writes += chunk(base + first * stride, flat)
    return writes


def schedule_writes(layout: Layout) -> list[RegisterWrite]:
    return table_writes(HOLD_SCHEDULE_TABLE, layout.schedules, SCHEDULE_RECORD_REGISTERS)


def entry_writes(layout: Layout, indices: Sequence[int] | None = None) -> list[RegisterWrite]:
    return table_writes(HOLD_ENTRY_TABLE, layout.rows, ENTRY_RECORD_REGISTERS, indices)
