"""Canonical key-image encoding, its checksum, and compact access-list deltas (pure).

The canonical encoding of a :class:`~drivers.base.KeyImage` is unique: entries are sorted,
times are whole unix seconds, the revision is lower-case hex. Its CRC-32 is the image
checksum that WRITE_BEGIN / WRITE_COMMIT carry and that KEY_INFO reads back. A delta
describes a target image relative to a base image identified by its checksum;
``apply_delta(base, diff(base, target)) == canonical(target)``.

The byte layouts are specified in ``docs/protocols/key-station.md`` (section "Key image").
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from drivers.base import (
    AccessEntry,
    BlacklistEntry,
    HardwareSchedule,
    KeyImage,
    ScheduleWindow,
)
from drivers.serialstation.messages import MAX_SERIAL, REVISION_SIZE
from drivers.serialstation.wire import (
    DecodeError,
    Reader,
    Writer,
    check_text,
    end_from_wire,
    end_to_wire,
    start_from_wire,
    start_to_wire,
)

IMAGE_FORMAT = 1
DELTA_FORMAT = 1
COMPACT_DELTA_FORMAT = 2
"""Delta format of protocol version 2: only what differs from the base is sent."""
MAX_SCHEDULES = 254
MAX_WINDOWS = 8
SCHEDULES_UNCHANGED = 0xFF
_REVISION_RE = re.compile(r"^[0-9a-fA-F]{16}$")

WireEntry = tuple[int, int, int, int]
"""An access entry as it is stored: (cylinder, from, until, schedule id)."""


def image_checksum(encoded: bytes) -> int:
    """CRC-32 (zlib) of a canonical image encoding."""
    return zlib.crc32(encoded)


# --------------------------------------------------------------------------- wire model


@dataclass(frozen=True, slots=True)
class _Header:
    revision: bytes
    enabled: bool
    valid_from: int
    valid_until: int
    revalidate_by: int


@dataclass(frozen=True, slots=True)
class _WireBlacklist:
    cylinder: int
    version: int
    serials: tuple[str, ...]


def _header_of(image: KeyImage) -> _Header:
    if not isinstance(image.revision, str) or not _REVISION_RE.match(image.revision):
        raise ValueError("revision: must be 16 hexadecimal digits")
    return _Header(
        bytes.fromhex(image.revision),
        bool(image.enabled),
        start_to_wire(image.valid_from, "valid_from"),
        end_to_wire(image.valid_until, "valid_until"),
        end_to_wire(image.revalidate_by, "revalidate_by"),
    )


def _check_cylinder(value: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 0xFFFFFFFF:
        raise ValueError(f"{field}: a cylinder id is an integer 1..4294967295")


def _schedules_of(schedules: Sequence[HardwareSchedule]) -> tuple[HardwareSchedule, ...]:
    if len(schedules) > MAX_SCHEDULES:
        raise ValueError(f"schedules: at most {MAX_SCHEDULES}")
    seen: set[int] = set()
    for i, s in enumerate(schedules):
        f = f"schedules[{i}]"
        if not 1 <= s.schedule_id <= MAX_SCHEDULES:
            raise ValueError(f"{f}.schedule_id: must be 1..{MAX_SCHEDULES}")
        if s.schedule_id in seen:
            raise ValueError(f"{f}.schedule_id: {s.schedule_id} is defined twice")
        seen.add(s.schedule_id)
        if len(s.windows) > MAX_WINDOWS:
            raise ValueError(f"{f}.windows: at most {MAX_WINDOWS}")
        for j, w in enumerate(s.windows):
            _check_window(w, f"{f}.windows[{j}]")
    return tuple(
        HardwareSchedule(s.schedule_id, tuple(s.windows))
        for s in sorted(schedules, key=lambda s: s.schedule_id)
    )


def _check_window(w: ScheduleWindow, f: str) -> None:
    if not 1 <= w.days_mask <= 0x7F:
        raise ValueError(f"{f}.days_mask: must be 1..127 (bit 0 Monday .. bit 6 Sunday)")
    if not 0 <= w.start_minute < w.end_minute <= 1440:
        raise ValueError(f"{f}: needs 0 <= start_minute < end_minute <= 1440")


def _entries_of(access: Sequence[AccessEntry], schedule_ids: set[int]) -> list[WireEntry]:
    out: list[WireEntry] = []
    for i, e in enumerate(access):
        f = f"access[{i}]"
        _check_cylinder(e.cylinder, f"{f}.cylinder")
        if e.schedule_id and e.schedule_id not in schedule_ids:
            raise ValueError(f"{f}.schedule_id: schedule {e.schedule_id} is not in the image")
        start = start_to_wire(e.valid_from, f"{f}.valid_from")
        end = end_to_wire(e.valid_until, f"{f}.valid_until")
        out.append((e.cylinder, start, end, e.schedule_id))
    out.sort()
    return out


def _blacklists_of(blacklists: Sequence[BlacklistEntry]) -> list[_WireBlacklist]:
    out: dict[int, _WireBlacklist] = {}
    for i, b in enumerate(blacklists):
        f = f"blacklists[{i}]"
        _check_cylinder(b.cylinder, f"{f}.cylinder")
        if b.cylinder in out:
            raise ValueError(f"{f}.cylinder: cylinder {b.cylinder} has two blacklists")
        if isinstance(b.version, bool) or not 0 <= b.version <= 0xFFFFFFFF:
            raise ValueError(f"{f}.version: must be 0..4294967295")
        for j, s in enumerate(b.serials):
            check_text(s, f"{f}.serials[{j}]", min_len=1, max_len=MAX_SERIAL)
        serials = tuple(sorted(set(b.serials)))
        if len(serials) != len(b.serials):
            raise ValueError(f"{f}.serials: a serial is listed twice")
        out[b.cylinder] = _WireBlacklist(b.cylinder, b.version, serials)
    return [out[c] for c in sorted(out)]


# --------------------------------------------------------------------------- sections


def _write_header(w: Writer, h: _Header) -> None:
    w.raw(h.revision).u8(1 if h.enabled else 0, "flags")
    w.u32(h.valid_from, "valid_from").u32(h.valid_until, "valid_until")
    w.u32(h.revalidate_by, "revalidate_by")


def _read_header(r: Reader) -> _Header:
    revision = r.raw(REVISION_SIZE, "revision")
    flags = r.u8("flags")
    if flags & ~1:
        raise DecodeError("flags", f"unknown bits in {flags:#04x}")
    return _Header(
        revision, bool(flags & 1), r.u32("valid_from"), r.u32("valid_until"), r.u32("revalidate_by")
    )


def _write_schedules(w: Writer, schedules: Sequence[HardwareSchedule]) -> None:
    w.u8(len(schedules), "schedules")
    for s in schedules:
        w.u8(s.schedule_id, "schedule_id").u8(len(s.windows), "windows")
        for win in s.windows:
            w.u8(win.days_mask, "days_mask")
            w.u16(win.start_minute, "start_minute").u16(win.end_minute, "end_minute")


def _read_schedules(r: Reader, count: int) -> tuple[HardwareSchedule, ...]:
    if count > MAX_SCHEDULES:
        raise DecodeError("schedules", f"{count} exceeds {MAX_SCHEDULES}")
    out: list[HardwareSchedule] = []
    previous = 0
    for i in range(count):
        f = f"schedules[{i}]"
        sid = r.u8(f"{f}.schedule_id")
        if not previous < sid <= MAX_SCHEDULES:
            raise DecodeError(f"{f}.schedule_id", "ids must be 1..254 and strictly increasing")
        previous = sid
        n = r.u8(f"{f}.windows")
        if n > MAX_WINDOWS:
            raise DecodeError(f"{f}.windows", f"{n} exceeds {MAX_WINDOWS}")
        windows = []
        for j in range(n):
            win = ScheduleWindow(r.u8("days_mask"), r.u16("start_minute"), r.u16("end_minute"))
            try:
                _check_window(win, f"{f}.windows[{j}]")
            except ValueError as exc:
                raise DecodeError(f"{f}.windows[{j}]", str(exc)) from None
            windows.append(win)
        out.append(HardwareSchedule(sid, tuple(windows)))
    return tuple(out)


def _write_entries(w: Writer, entries: Sequence[WireEntry], field: str) -> None:
    w.varint(len(entries), field)
    previous = 0
    for cylinder, start, end, schedule in entries:
        w.varint(cylinder - previous, f"{field}.cylinder")
        w.u32(start, f"{field}.valid_from").u32(end, f"{field}.valid_until")
        w.u8(schedule, f"{field}.schedule_id")
        previous = cylinder


def _read_entries(r: Reader, field: str) -> list[WireEntry]:
    count = r.varint(field, maximum=0xFFFF)
    out: list[WireEntry] = []
    previous = 0
    for i in range(count):
        f = f"{field}[{i}]"
        cylinder = previous + r.varint(f"{f}.cylinder")
        if not 0 < cylinder <= 0xFFFFFFFF:
            raise DecodeError(f"{f}.cylinder", "cylinder ids are 1..4294967295")
        entry = (
            cylinder,
            r.u32(f"{f}.valid_from"),
            r.u32(f"{f}.valid_until"),
            r.u8(f"{f}.schedule_id"),
        )
        if out and entry < out[-1]:
            raise DecodeError(f, "entries are not in canonical order")
        if entry[3] > MAX_SCHEDULES:
            raise DecodeError(f"{f}.schedule_id", f"must be 0..{MAX_SCHEDULES}")
        out.append(entry)
        previous = cylinder
    return out


def _write_blacklists(w: Writer, blacklists: Sequence[_WireBlacklist], field: str) -> None:
    w.varint(len(blacklists), field)
    previous = 0
    for b in blacklists:
        w.varint(b.cylinder - previous, f"{field}.cylinder").u32(b.version, f"{field}.version")
        w.varint(len(b.serials), f"{field}.serials")
        for s in b.serials:
            w.text(s, f"{field}.serial", min_len=1, max_len=MAX_SERIAL)
        previous = b.cylinder


def _read_blacklists(r: Reader, field: str) -> list[_WireBlacklist]:
    count = r.varint(field, maximum=0xFFFF)
    out: list[_WireBlacklist] = []
    previous = 0
    for i in range(count):
        f = f"{field}[{i}]"
        step = r.varint(f"{f}.cylinder")
        if out and step == 0:
            raise DecodeError(f"{f}.cylinder", "cylinders must be strictly increasing")
        cylinder = previous + step
        if not 0 < cylinder <= 0xFFFFFFFF:
            raise DecodeError(f"{f}.cylinder", "cylinder ids are 1..4294967295")
        version = r.u32(f"{f}.version")
        n = r.varint(f"{f}.serials", maximum=0xFFFF)
        serials = tuple(
            r.text(f"{f}.serials[{j}]", min_len=1, max_len=MAX_SERIAL) for j in range(n)
        )
        if any(a >= b for a, b in itertools.pairwise(serials)):
            raise DecodeError(f"{f}.serials", "serials must be sorted and unique")
        out.append(_WireBlacklist(cylinder, version, serials))
        previous = cylinder
    return out


# --------------------------------------------------------------------------- full image


def encode_image(image: KeyImage) -> bytes:
    """The canonical encoding of ``image``. Raises ``ValueError`` naming the field that
    cannot be encoded (naive datetime, bad revision, unknown schedule id, ...).

    Times are stored in whole seconds without ever widening a window: starts are rounded
    up, ends and the revalidation deadline down."""
    check_text(image.serial, "serial", min_len=1, max_len=MAX_SERIAL)
    header = _header_of(image)
    schedules = _schedules_of(image.schedules)
    entries = _entries_of(image.access, {s.schedule_id for s in schedules})
    blacklists = _blacklists_of(image.blacklists)
    w = (
        Writer()
        .u8(IMAGE_FORMAT, "format")
        .text(image.serial, "serial", min_len=1, max_len=MAX_SERIAL)
    )
    _write_header(w, header)
    _write_schedules(w, schedules)
    _write_entries(w, entries, "access")
    _write_blacklists(w, blacklists, "blacklists")
    return w.getvalue()


def decode_image(data: bytes) -> KeyImage:
    """Decode a canonical image; raises :class:`DecodeError` naming the field."""
    r = Reader(data)
    fmt = r.u8("format")
    if fmt != IMAGE_FORMAT:
        raise DecodeError("format", f"unknown image format {fmt}")
    serial = r.text("serial", min_len=1, max_len=MAX_SERIAL)
    header = _read_header(r)
    schedules = _read_schedules(r, r.u8("schedules"))
    entries = _read_entries(r, "access")
    blacklists = _read_blacklists(r, "blacklists")
    r.end("image")
    return _build(serial, header, schedules, entries, blacklists)


def _build(
    serial: str,
    header: _Header,
    schedules: tuple[HardwareSchedule, ...],
    entries: Iterable[WireEntry],
    blacklists: Iterable[_WireBlacklist],
) -> KeyImage:
    ids = {s.schedule_id for s in schedules}
    access = []
    for i, (cylinder, start, end, schedule) in enumerate(entries):
        if schedule and schedule not in ids:
            raise DecodeError(f"access[{i}].schedule_id", f"schedule {schedule} is not defined")
        access.append(AccessEntry(cylinder, start_from_wire(start), end_from_wire(end), schedule))
    return KeyImage(
        serial=serial,
        revision=header.revision.hex(),
        enabled=header.enabled,
        valid_from=start_from_wire(header.valid_from),
        valid_until=end_from_wire(header.valid_until),
        revalidate_by=end_from_wire(header.revalidate_by),
        schedules=schedules,
        access=tuple(access),
        blacklists=tuple(BlacklistEntry(b.cylinder, b.version, b.serials) for b in blacklists),
    )


def canonical(image: KeyImage) -> KeyImage:
    """``image`` as the key will hold it (sorted, whole seconds, lower-case revision)."""
    return decode_image(encode_image(image))


# --------------------------------------------------------------------------- delta


@dataclass(frozen=True, slots=True)
class ImageDelta:
    """The difference from a base image to a target image of the same key.

    ``remove`` and ``change`` hold positions in the base image's canonical access list;
    ``change`` keeps the cylinder and replaces window and schedule. ``schedules`` of
    ``None`` keeps the base's schedule table."""

    revision: bytes
    enabled: bool
    valid_from: int
    valid_until: int
    revalidate_by: int
    schedules: tuple[HardwareSchedule, ...] | None
    remove: tuple[int, ...]
    change: tuple[tuple[int, int, int, int], ...]
    add: tuple[WireEntry, ...]
    blacklist_remove: tuple[int, ...]
    blacklist_upsert: tuple[_WireBlacklist, ...]

    def encode(self, *, base: KeyImage | None = None) -> bytes:
        """Format 1 (every header field, every section); format 2 (protocol version 2) when
        ``base`` is given: a presence mask and only the header fields that differ from
        ``base`` and the sections that are not empty."""
        if base is not None:
            return self._encode_compact(base)
        w = Writer().u8(DELTA_FORMAT, "format")
        _write_header(
            w,
            _Header(
                self.revision, self.enabled, self.valid_from, self.valid_until, self.revalidate_by
            ),
        )
        if self.schedules is None:
            w.u8(SCHEDULES_UNCHANGED, "schedules")
        else:
            _write_schedules(w, self.schedules)
        self._write_sections(w)
        return w.getvalue()

    def _write_sections(self, w: Writer, present: int | None = None) -> None:
        def wanted(bit: int) -> bool:
            return present is None or bool(present & bit)

        if wanted(_P_REMOVE):
            _write_positions(w, self.remove, "remove")
        if wanted(_P_CHANGE):
            _write_positions(w, [c[0] for c in self.change], "change")
            for _, start, end, schedule in self.change:
                w.u32(start, "change.valid_from").u32(end, "change.valid_until")
                w.u8(schedule, "change.schedule_id")
        if wanted(_P_ADD):
            _write_entries(w, self.add, "add")
        if wanted(_P_BLACKLIST_REMOVE):
            _write_positions(w, self.blacklist_remove, "blacklist_remove")
        if wanted(_P_BLACKLIST_UPSERT):
            _write_blacklists(w, self.blacklist_upsert, "blacklist_upsert")

    def _encode_compact(self, base: KeyImage) -> bytes:
        b = _header_of(base)
        present = 0
        for bit, mine, theirs in (
            (_P_FLAGS, self.enabled, b.enabled),
            (_P_VALID_FROM, self.valid_from, b.valid_from),
            (_P_VALID_UNTIL, self.valid_until, b.valid_until),
            (_P_REVALIDATE_BY, self.revalidate_by, b.revalidate_by),
        ):
            if mine != theirs:
                present |= bit
        for bit, section in (
            (_P_SCHEDULES, self.schedules is not None),
            (_P_REMOVE, self.remove),
            (_P_CHANGE, self.change),
            (_P_ADD, self.add),
            (_P_BLACKLIST_REMOVE, self.blacklist_remove),
            (_P_BLACKLIST_UPSERT, self.blacklist_upsert),
        ):
            if section:
                present |= bit
        w = Writer().u8(COMPACT_DELTA_FORMAT, "format").u16(present, "present")
        w.raw(self.revision)
        if present & _P_FLAGS:
            w.u8(1 if self.enabled else 0, "flags")
        if present & _P_VALID_FROM:
            w.u32(self.valid_from, "valid_from")
        if present & _P_VALID_UNTIL:
            w.u32(self.valid_until, "valid_until")
        if present & _P_REVALIDATE_BY:
            w.u32(self.revalidate_by, "revalidate_by")
        if self.schedules is not None:
            _write_schedules(w, self.schedules)
        self._write_sections(w, present)
        return w.getvalue()


_P_FLAGS = 1 << 0
_P_VALID_FROM = 1 << 1
_P_VALID_UNTIL = 1 << 2
_P_REVALIDATE_BY = 1 << 3
_P_SCHEDULES = 1 << 4
_P_REMOVE = 1 << 5
_P_CHANGE = 1 << 6
_P_ADD = 1 << 7
_P_BLACKLIST_REMOVE = 1 << 8
_P_BLACKLIST_UPSERT = 1 << 9
_P_ALL = (1 << 10) - 1


def _write_positions(w: Writer, positions: Sequence[int], field: str) -> None:
    w.varint(len(positions), field)
    previous = -1
    for p in positions:
        w.varint(p - previous - 1, field)
        previous = p


def _read_positions(r: Reader, field: str) -> tuple[int, ...]:
    count = r.varint(field, maximum=0xFFFF)
    out = []
    previous = -1
    for i in range(count):
        previous = previous + 1 + r.varint(f"{field}[{i}]")
        if previous > 0xFFFFFFFF:
            raise DecodeError(f"{field}[{i}]", "position out of range")
        out.append(previous)
    return tuple(out)


def decode_delta(data: bytes, base: KeyImage | None = None) -> ImageDelta:
    """Decode a delta; raises :class:`DecodeError` naming the field. Format 2 takes the
    header fields it leaves out from ``base`` (the image the delta applies to) and is
    refused without one."""
    r = Reader(data)
    fmt = r.u8("format")
    if fmt == COMPACT_DELTA_FORMAT and base is not None:
        return _decode_compact(r, base)
    if fmt != DELTA_FORMAT:
        raise DecodeError("format", f"unknown delta format {fmt}")
    h = _read_header(r)
    n = r.u8("schedules")
    schedules = None if n == SCHEDULES_UNCHANGED else _read_schedules(r, n)
    return _read_sections(r, h, schedules, None)


def _read_sections(
    r: Reader, h: _Header, schedules: tuple[HardwareSchedule, ...] | None, present: int | None
) -> ImageDelta:
    def wanted(bit: int) -> bool:
        return present is None or bool(present & bit)

    def nonempty(field: str, items: tuple[object, ...]) -> None:
        if present is not None and not items:
            raise DecodeError(field, "a section marked present must not be empty")

    remove: tuple[int, ...] = ()
    change: tuple[tuple[int, int, int, int], ...] = ()
    add: tuple[WireEntry, ...] = ()
    blacklist_remove: tuple[int, ...] = ()
    blacklist_upsert: tuple[_WireBlacklist, ...] = ()
    if wanted(_P_REMOVE):
        remove = _read_positions(r, "remove")
        nonempty("remove", remove)
    if wanted(_P_CHANGE):
        change_at = _read_positions(r, "change")
        nonempty("change", change_at)
        change = tuple(
            (p, r.u32("change.valid_from"), r.u32("change.valid_until"), r.u8("change.schedule_id"))
            for p in change_at
        )
    if wanted(_P_ADD):
        add = tuple(_read_entries(r, "add"))
        nonempty("add", add)
    if wanted(_P_BLACKLIST_REMOVE):
        blacklist_remove = _read_positions(r, "blacklist_remove")
        nonempty("blacklist_remove", blacklist_remove)
    if wanted(_P_BLACKLIST_UPSERT):
        blacklist_upsert = tuple(_read_blacklists(r, "blacklist_upsert"))
        nonempty("blacklist_upsert", blacklist_upsert)
    r.end("delta")
    return ImageDelta(
        h.revision,
        h.enabled,
        h.valid_from,
        h.valid_until,
        h.revalidate_by,
        schedules,
        remove,
        change,
        add,
        blacklist_remove,
        blacklist_upsert,
    )


def _decode_compact(r: Reader, base: KeyImage) -> ImageDelta:
    present = r.u16("present")
    if present & ~_P_ALL:
        raise DecodeError("present", f"unknown bits in {present:#06x}")
    b = _header_of(base)
    revision = r.raw(REVISION_SIZE, "revision")
    enabled = b.enabled
    if present & _P_FLAGS:
        flags = r.u8("flags")
        if flags & ~1:
            raise DecodeError("flags", f"unknown bits in {flags:#04x}")
        enabled = bool(flags & 1)
    valid_from = r.u32("valid_from") if present & _P_VALID_FROM else b.valid_from
    valid_until = r.u32("valid_until") if present & _P_VALID_UNTIL else b.valid_until
    revalidate_by = r.u32("revalidate_by") if present & _P_REVALIDATE_BY else b.revalidate_by
    schedules = None
    if present & _P_SCHEDULES:
        n = r.u8("schedules")
        if n == SCHEDULES_UNCHANGED:
            raise DecodeError("schedules", "255 schedules: unchanged is said by the mask")
        schedules = _read_schedules(r, n)
    header = _Header(revision, enabled, valid_from, valid_until, revalidate_by)
    return _read_sections(r, header, schedules, present)


def diff(base: KeyImage, target: KeyImage) -> ImageDelta:
    """The delta that turns ``base`` into ``target`` (both of the same key).

    Raises ``ValueError`` naming the field when ``target`` cannot be encoded."""
    if base.serial != target.serial:
        raise ValueError(f"serial: delta between different keys {base.serial}/{target.serial}")
    header = _header_of(target)
    schedules = _schedules_of(target.schedules)
    base_schedules = _schedules_of(base.schedules)
    ids = {s.schedule_id for s in schedules}
    old = _entries_of(base.access, {s.schedule_id for s in base_schedules})
    new = _entries_of(target.access, ids)

    wanted = Counter(new)
    kept: Counter[WireEntry] = Counter()
    removed: list[int] = []
    for pos, entry in enumerate(old):
        if kept[entry] < wanted[entry]:
            kept[entry] += 1
        else:
            removed.append(pos)
    added = list((Counter(new) - kept).elements())
    # A removal and an addition on the same cylinder become one "change".
    adds_by_cylinder: dict[int, list[WireEntry]] = defaultdict(list)
    for entry in sorted(added):
        adds_by_cylinder[entry[0]].append(entry)
    remove: list[int] = []
    change: list[tuple[int, int, int, int]] = []
    for pos in removed:
        pending = adds_by_cylinder.get(old[pos][0])
        if pending:
            _, start, end, schedule = pending.pop(0)
            change.append((pos, start, end, schedule))
        else:
            remove.append(pos)
    add = sorted(e for entries in adds_by_cylinder.values() for e in entries)

    old_bl = {b.cylinder: b for b in _blacklists_of(base.blacklists)}
    new_bl = {b.cylinder: b for b in _blacklists_of(target.blacklists)}
    return ImageDelta(
        revision=header.revision,
        enabled=header.enabled,
        valid_from=header.valid_from,
        valid_until=header.valid_until,
        revalidate_by=header.revalidate_by,
        schedules=None if schedules == base_schedules else schedules,
        remove=tuple(remove),
        change=tuple(change),
        add=tuple(add),
        blacklist_remove=tuple(sorted(c for c in old_bl if c not in new_bl)),
        blacklist_upsert=tuple(b for c, b in sorted(new_bl.items()) if old_bl.get(c) != b),
    )


def apply_delta(base: KeyImage, delta: ImageDelta) -> KeyImage:
    """The image ``delta`` describes on top of ``base``; raises :class:`DecodeError` naming
    the field when the delta does not fit the base (position out of range, ...)."""
    base_schedules = _schedules_of(base.schedules)
    old = _entries_of(base.access, {s.schedule_id for s in base_schedules})
    changes = {p: (s, e, sch) for p, s, e, sch in delta.change}
    for field, positions in (("remove", delta.remove), ("change", tuple(changes))):
        for p in positions:
            if p >= len(old):
                raise DecodeError(field, f"position {p} is beyond the base's {len(old)} entries")
    if set(delta.remove) & set(changes):
        raise DecodeError("change", "a position is both removed and changed")
    removed = set(delta.remove)
    entries: list[WireEntry] = []
    for pos, entry in enumerate(old):
        if pos in removed:
            continue
        if pos in changes:
            entry = (entry[0], *changes[pos])
        entries.append(entry)
    entries += delta.add
    entries.sort()

    blacklists = {b.cylinder: b for b in _blacklists_of(base.blacklists)}
    for i, cylinder in enumerate(delta.blacklist_remove):
        if blacklists.pop(cylinder, None) is None:
            raise DecodeError(f"blacklist_remove[{i}]", f"no blacklist for cylinder {cylinder}")
    for b in delta.blacklist_upsert:
        blacklists[b.cylinder] = b
    header = _Header(
        delta.revision, delta.enabled, delta.valid_from, delta.valid_until, delta.revalidate_by
    )
    schedules = base_schedules if delta.schedules is None else delta.schedules
    return _build(
        base.serial, header, schedules, entries, [blacklists[c] for c in sorted(blacklists)]
    )
