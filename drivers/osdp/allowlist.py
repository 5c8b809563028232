"""The allow-list the panel decides with: validation, canonical encoding, checksum, decisions.

The gateway derives the list; the driver keeps it in memory and in a local file and decides
every card read against it. The checksum is the CRC-32 of the canonical encoding (entries and
schedules sorted, instants as ISO 8601 UTC), so it does not depend on the order the entries
were written in, and the same list gives the same checksum in memory and on disk.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.base import AllowEntry, DenyReason, HardwareSchedule, ScheduleWindow

FORMAT = 1
MAX_CREDENTIAL = 0xFFFFFFFF
MAX_SCHEDULE_ID = 254
MAX_WINDOWS = 8
MINUTES_PER_DAY = 1440


class AllowListFileError(ValueError):
    """The persisted allow-list cannot be trusted; the message says why."""


def _instant(value: datetime | None, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: must be a timezone-aware datetime or None, got {value!r}")
    return value.astimezone(UTC).isoformat()


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be in {low}..{high}, got {value}")
    return value


def _check_schedules(schedules: Sequence[HardwareSchedule]) -> dict[int, HardwareSchedule]:
    out: dict[int, HardwareSchedule] = {}
    for i, s in enumerate(schedules):
        name = f"schedules[{i}]"
        sid = _int(s.schedule_id, f"{name}.schedule_id", 1, MAX_SCHEDULE_ID)
        if sid in out:
            raise ValueError(f"{name}.schedule_id: schedule {sid} appears twice")
        if len(s.windows) > MAX_WINDOWS:
            raise ValueError(f"{name}.windows: at most {MAX_WINDOWS} windows, got {len(s.windows)}")
        for j, w in enumerate(s.windows):
            wname = f"{name}.windows[{j}]"
            _int(w.days_mask, f"{wname}.days_mask", 1, 0x7F)
            _int(w.start_minute, f"{wname}.start_minute", 0, MINUTES_PER_DAY - 1)
            _int(w.end_minute, f"{wname}.end_minute", 1, MINUTES_PER_DAY)
            if w.end_minute <= w.start_minute:
                raise ValueError(f"{wname}.end_minute: must be after start_minute")
        out[sid] = s
    return out


def _check_entries(
    entries: Sequence[AllowEntry], schedules: dict[int, HardwareSchedule], doors: int
) -> None:
    all_doors = (1 << doors) - 1
    for i, e in enumerate(entries):
        name = f"entries[{i}]"
        _int(e.credential, f"{name}.credential", 1, MAX_CREDENTIAL)
        mask = _int(e.doors_mask, f"{name}.doors_mask", 1, 0xFFFF)
        if mask & ~all_doors:
            raise ValueError(
                f"{name}.doors_mask: {mask:#x} names a door beyond the panel's {doors} doors"
            )
        _instant(e.valid_from, f"{name}.valid_from")
        _instant(e.valid_until, f"{name}.valid_until")
        if e.valid_from is not None and e.valid_until is not None and e.valid_until <= e.valid_from:
            raise ValueError(f"{name}.valid_until: must be after valid_from")
        if e.pin:
            raise ValueError(
                f"{name}.pin: this panel does not enforce PINs; the entry would open without one"
            )
        sid = _int(e.schedule_id, f"{name}.schedule_id", 0, MAX_SCHEDULE_ID)
        if sid and sid not in schedules:
            raise ValueError(
                f"{name}.schedule_id: schedule {sid} is not among the schedules written with "
                "the list"
            )


def _entry_row(e: AllowEntry) -> list[Any]:
    return [
        e.credential,
        e.doors_mask,
        _instant(e.valid_from, "valid_from"),
        _instant(e.valid_until, "valid_until"),
        e.schedule_id,
    ]


def _schedule_row(s: HardwareSchedule) -> dict[str, Any]:
    return {
        "id": s.schedule_id,
        "windows": [[w.days_mask, w.start_minute, w.end_minute] for w in s.windows],
    }


def _sort_key(row: list[Any]) -> tuple[Any, ...]:
    return tuple("" if v is None else v for v in row)


def _canonical(rows: list[list[Any]], schedules: list[dict[str, Any]]) -> bytes:
    body = {"entries": rows, "schedules": schedules}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class AllowList:
    """A validated allow-list with its schedules and checksum."""

    entries: tuple[AllowEntry, ...]
    schedules: dict[int, HardwareSchedule]
    checksum: int
    _by_credential: dict[int, tuple[AllowEntry, ...]] = field(repr=False, compare=False)

    @classmethod
    def build(
        cls,
        entries: Iterable[AllowEntry],
        schedules: Iterable[HardwareSchedule],
        *,
        doors: int,
        capacity: int,
    ) -> AllowList:
        """Validate and build; raises ``ValueError`` naming the offending field."""
        entry_list = list(entries)
        schedule_list = list(schedules)
        if len(entry_list) > capacity:
            raise ValueError(
                f"entries: {len(entry_list)} entries exceed the capacity of {capacity}"
            )
        by_id = _check_schedules(schedule_list)
        _check_entries(entry_list, by_id, doors)
        rows = sorted((_entry_row(e) for e in entry_list), key=_sort_key)
        srows = [_schedule_row(by_id[sid]) for sid in sorted(by_id)]
        index: dict[int, list[AllowEntry]] = {}
        for e in entry_list:
            index.setdefault(e.credential, []).append(e)
        return cls(
            entries=tuple(entry_list),
            schedules=by_id,
            checksum=zlib.crc32(_canonical(rows, srows)),
            _by_credential={k: tuple(v) for k, v in index.items()},
        )

    @classmethod
    def empty(cls) -> AllowList:
        return cls.build([], [], doors=1, capacity=0)

    # ------------------------------------------------------------------ the file

    def encode(self, written_at: datetime) -> bytes:
        """The file document: the canonical content, its checksum and when it was written."""
        rows = sorted((_entry_row(e) for e in self.entries), key=_sort_key)
        srows = [_schedule_row(self.schedules[sid]) for sid in sorted(self.schedules)]
        doc = {
            "format": FORMAT,
            "checksum": self.checksum,
            "written_at": written_at.astimezone(UTC).isoformat(),
            "entries": rows,
            "schedules": srows,
        }
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode()

    @classmethod
    def decode(cls, data: bytes, *, doors: int, capacity: int) -> AllowList:
        """Parse a file written by :meth:`encode`; raises :class:`AllowListFileError` when it
        is not one, or when its content does not match its checksum."""
        try:
            doc = json.loads(data)
        except ValueError:
            raise AllowListFileError("not valid JSON (a torn or foreign file)") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise AllowListFileError(f"format: must be {FORMAT}")
        try:
            schedules = [
                HardwareSchedule(
                    int(s["id"]),
                    tuple(ScheduleWindow(int(m), int(a), int(b)) for m, a, b in s["windows"]),
                )
                for s in doc["schedules"]
            ]
            entries = [
                AllowEntry(
                    credential=int(c),
                    doors_mask=int(mask),
                    valid_from=None if f is None else datetime.fromisoformat(f),
                    valid_until=None if u is None else datetime.fromisoformat(u),
                    schedule_id=int(sid),
                )
                for c, mask, f, u, sid in doc["entries"]
            ]
            built = cls.build(entries, schedules, doors=doors, capacity=capacity)
        except (KeyError, TypeError, ValueError) as exc:
            raise AllowListFileError(f"content does not decode: {exc}") from None
        if built.checksum != doc.get("checksum"):
            raise AllowListFileError(
                f"checksum: the content sums to {built.checksum:#010x}, the file says "
                f"{doc.get('checksum')!r}"
            )
        return built

    # ------------------------------------------------------------------ decisions

    def decide(self, credential: int, door: int, at: datetime, tz: ZoneInfo) -> DenyReason | None:
        """Why ``credential`` is denied at ``door`` (1-based) at instant ``at``; None when it
        is granted."""
        entries = self._by_credential.get(credential)
        if not entries:
            return DenyReason.UNKNOWN_CREDENTIAL
        bit = 1 << (door - 1)
        entries = tuple(e for e in entries if e.doors_mask & bit)
        if not entries:
            return DenyReason.DOOR_NOT_ALLOWED
        entries = tuple(
            e
            for e in entries
            if (e.valid_from is None or e.valid_from <= at)
            and (e.valid_until is None or at < e.valid_until)
        )
        if not entries:
            return DenyReason.OUTSIDE_VALIDITY
        local = at.astimezone(tz)
        if any(e.schedule_id == 0 or self.schedule_allows(e.schedule_id, local) for e in entries):
            return None
        return DenyReason.OUTSIDE_SCHEDULE

    def schedule_allows(self, schedule_id: int, local: datetime) -> bool:
        """Whether schedule ``schedule_id`` allows the local wall-clock time ``local``; an
        unknown schedule allows nothing."""
        schedule = self.schedules.get(schedule_id)
        if schedule is None:
            return False
        day = 1 << local.weekday()
        minute = local.hour * 60 + local.minute
        return any(
            w.days_mask & day and w.start_minute <= minute < w.end_minute for w in schedule.windows
        )


__all__ = ["AllowList", "AllowListFileError"]
