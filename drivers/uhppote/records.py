"""The content of a UHPPOTE controller's card table and time profiles, and how an allow-list
becomes that content. Pure functions, no I/O.

A :class:`Card` is one record of the card table: card number, first and last valid day
(inclusive, the controller's local dates), one permission per door (0 none, 1 any time,
2..254 a time profile) and a PIN (0 none). A :class:`Profile` is one time profile: a date range,
weekdays, up to three daily segments (both ends inclusive, minute resolution) and the id of a
linked profile. A card whose door permission names profile *p* may pass when *p* or any profile
linked from it matches.

:func:`desired_table` turns the gateway's :class:`~drivers.base.AllowEntry` list and
:class:`~drivers.base.HardwareSchedule` list into the cards and the profile *chains* they need
(a chain is the list of profile contents one door permission refers to). Which profile ids the
chains get depends on what the controller already holds; see :mod:`drivers.uhppote.plan`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from drivers.base import AllowEntry, HardwareSchedule

MAX_DOORS = 4
CARD_MIN = 1
CARD_MAX = 0xFFFF_FFFE
"""Card numbers 0 and 0xFFFFFFFF mean "empty" and "deleted" in the card table."""
PIN_MAX = 999_999
PROFILE_IDS = range(2, 255)
"""Time profile ids a controller holds (0 = none, 1 = any time)."""
SEGMENTS = 3
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
"""The dates written for "unbounded": the controller needs a date range on every record."""
ALWAYS = 1
NEVER = 0

Rounding = Literal["inward", "outward"]
Segment = tuple[time, time]


@dataclass(frozen=True, slots=True, order=True)
class Card:
    """One card record."""

    number: int
    start: date
    end: date
    doors: tuple[int, int, int, int]
    pin: int = 0

    def encode(self) -> bytes:
        """Canonical bytes, for checksums."""
        dates = f"{self.start.isoformat()}{self.end.isoformat()}".encode()
        return struct.pack("<I20s4BI", self.number, dates, *self.doors, self.pin)

    def profile_ids(self) -> set[int]:
        return {p for p in self.doors if p in PROFILE_IDS}


@dataclass(frozen=True, slots=True, order=True)
class ProfileContent:
    """What a time profile says, without its id and link."""

    start: date
    end: date
    weekdays: tuple[bool, bool, bool, bool, bool, bool, bool]
    """Monday .. Sunday."""
    segments: tuple[Segment, Segment, Segment]


@dataclass(frozen=True, slots=True, order=True)
class Profile:
    profile_id: int
    content: ProfileContent
    linked: int = 0

    def encode(self) -> bytes:
        c = self.content
        dates = f"{c.start.isoformat()}{c.end.isoformat()}".encode()
        segments = "".join(f"{a:%H%M}{b:%H%M}" for a, b in c.segments).encode()
        return struct.pack(
            "<B20s7B24sB", self.profile_id, dates, *c.weekdays, segments, self.linked
        )


Chain = tuple[ProfileContent, ...]
"""The profiles one door permission refers to, head first (each links to the next)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One way a card may pass a door: a schedule (0 = any time) inside a date range (None:
    the card's own range)."""

    schedule_id: int
    start: date | None = None
    end: date | None = None


RuleSet = frozenset[Rule]


@dataclass(frozen=True, slots=True)
class DesiredCard:
    """A card as the allow-list wants it, its time-profile doors still as rule sets."""

    number: int
    start: date
    end: date
    doors: tuple[RuleSet, RuleSet, RuleSet, RuleSet]
    pin: int = 0


@dataclass(frozen=True, slots=True)
class DesiredTable:
    cards: dict[int, DesiredCard]
    chains: dict[RuleSet, Chain]
    """Every rule set a door permission needs a profile chain for, and that chain."""
    dropped: int = 0
    """Entries that grant nothing once rounded to whole days."""


@dataclass(frozen=True, slots=True)
class Table:
    """What a controller holds (the driver's marker card left out)."""

    cards: Mapping[int, Card]
    profiles: Mapping[int, Profile]

    def reachable_profiles(self) -> set[int]:
        """Profile ids the cards refer to, directly or through links (present or not)."""
        todo = [p for card in self.cards.values() for p in card.profile_ids()]
        seen: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            profile = self.profiles.get(pid)
            if profile is not None and profile.linked in PROFILE_IDS:
                todo.append(profile.linked)
        return seen

    def checksum(self) -> int:
        """CRC-32 over the cards and the profiles they can reach (a missing one counts)."""
        crc = 0
        for number in sorted(self.cards):
            crc = zlib.crc32(self.cards[number].encode(), crc)
        for pid in sorted(self.reachable_profiles()):
            profile = self.profiles.get(pid)
            crc = zlib.crc32(b"P" + (profile.encode() if profile else bytes([pid])), crc)
        return crc


class EncodeError(ValueError):
    """An allow-list the controller cannot hold; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


# --------------------------------------------------------------------------- dates


def first_day(at: datetime | None, tz: ZoneInfo, rounding: Rounding) -> date:
    """The first whole (``inward``) or partial (``outward``) local day from ``at`` on."""
    if at is None:
        return FIRST_DAY
    local = at.astimezone(tz)
    day = local.date()
    if rounding == "inward" and local.time() != time(0):
        day += timedelta(days=1)
    return max(day, FIRST_DAY)


def last_day(until: datetime | None, tz: ZoneInfo, rounding: Rounding) -> date:
    """The last whole (``inward``) or partial (``outward``) local day before ``until``."""
    if until is None:
        return LAST_DAY
    local = until.astimezone(tz)
    day = local.date()
    if rounding == "inward" or local.time() == time(0):
        day -= timedelta(days=1)
    return min(day, LAST_DAY)


# --------------------------------------------------------------------------- schedules


def schedule_chain(windows: Sequence[tuple[int, int, int]], start: date, end: date) -> Chain:
    """Profiles for weekly windows ``(days_mask, start_minute, end_minute)`` in a date range:
    windows with the same days share profiles, three segments each."""
    by_days: dict[int, list[Segment]] = {}
    for days_mask, first, stop in sorted(windows):
        if stop <= first or not days_mask & 0x7F:
            continue
        last = stop - 1  # the controller's segment end is inclusive
        segment = (time(first // 60, first % 60), time(last // 60, last % 60))
        if segment == (time(0), time(0)):
            continue  # reads as an unused segment on the device
        by_days.setdefault(days_mask & 0x7F, []).append(segment)
    chain: list[ProfileContent] = []
    for days_mask in sorted(by_days):
        segments = sorted(set(by_days[days_mask]))
        for i in range(0, len(segments), SEGMENTS):
            chunk = segments[i : i + SEGMENTS]
            chunk += [(time(0), time(0))] * (SEGMENTS - len(chunk))
            mo, tu, we, th, fr, sa, su = (bool(days_mask >> i & 1) for i in range(7))
            s1, s2, s3 = chunk
            chain.append(ProfileContent(start, end, (mo, tu, we, th, fr, sa, su), (s1, s2, s3)))
    return tuple(chain)


ANY_TIME = ((0x7F, 0, 1440),)


def rule_chain(rules: RuleSet, schedules: Mapping[int, Sequence[tuple[int, int, int]]]) -> Chain:
    """The chain of a door permission: the union of its rules."""
    chain: list[ProfileContent] = []
    for rule in sorted(
        rules, key=lambda r: (r.schedule_id, r.start or FIRST_DAY, r.end or LAST_DAY)
    ):
        windows = ANY_TIME if rule.schedule_id == 0 else schedules[rule.schedule_id]
        chain += schedule_chain(windows, rule.start or FIRST_DAY, rule.end or LAST_DAY)
    return tuple(chain)


# --------------------------------------------------------------------------- allow-list


def desired_table(
    entries: Iterable[AllowEntry],
    schedules: Iterable[HardwareSchedule],
    *,
    doors: int,
    tz: ZoneInfo,
    rounding: Rounding = "inward",
    reserved: frozenset[int] = frozenset(),
) -> DesiredTable:
    """Cards and profile chains for an allow-list, checked against what the device can hold.

    Several entries of one credential become one card: its date range covers them all; a door
    any entry grants at any time within the card's range gets permission 1, every other door
    the chain of the rules granting it. An entry that covers no whole day (``inward``
    rounding) grants nothing and is counted in :attr:`DesiredTable.dropped`."""
    windows: dict[int, tuple[tuple[int, int, int], ...]] = {}
    for i, schedule in enumerate(schedules):
        sid = schedule.schedule_id
        if isinstance(sid, bool) or not isinstance(sid, int) or not 1 <= sid <= 254:
            raise EncodeError(f"schedules[{i}].schedule_id", f"must be in 1..254, got {sid!r}")
        if sid in windows:
            raise EncodeError(f"schedules[{i}].schedule_id", f"schedule {sid} appears twice")
        for j, w in enumerate(schedule.windows):
            if not (0 <= w.start_minute <= 1440 and 0 <= w.end_minute <= 1440):
                raise EncodeError(f"schedules[{i}].windows[{j}]", "minutes must be in 0..1440")
            if not 0 <= w.days_mask <= 0x7F:
                raise EncodeError(f"schedules[{i}].windows[{j}].days_mask", "must be in 0..127")
        windows[sid] = tuple((w.days_mask, w.start_minute, w.end_minute) for w in schedule.windows)

    grants: dict[int, list[tuple[int, Rule, int]]] = {}
    dropped = 0
    beyond = ~((1 << doors) - 1)
    for i, entry in enumerate(entries):
        number = entry.credential
        if isinstance(number, bool) or not isinstance(number, int):
            raise EncodeError(f"entries[{i}].credential", f"must be an integer, got {number!r}")
        if not CARD_MIN <= number <= CARD_MAX:
            raise EncodeError(
                f"entries[{i}].credential", f"must be in {CARD_MIN}..{CARD_MAX}, got {number}"
            )
        if number in reserved:
            raise EncodeError(
                f"entries[{i}].credential", f"{number} is reserved for the driver's marker card"
            )
        if entry.doors_mask < 0 or entry.doors_mask & beyond:
            raise EncodeError(
                f"entries[{i}].doors_mask",
                f"{entry.doors_mask:#x} names a door beyond the controller's {doors}",
            )
        if entry.schedule_id and entry.schedule_id not in windows:
            raise EncodeError(
                f"entries[{i}].schedule_id",
                f"schedule {entry.schedule_id} is not among the schedules written with the list",
            )
        if not 0 <= entry.pin <= PIN_MAX:
            raise EncodeError(f"entries[{i}].pin", f"must be in 0..{PIN_MAX}, got {entry.pin}")
        start = first_day(entry.valid_from, tz, rounding)
        end = last_day(entry.valid_until, tz, rounding)
        if start > end or not entry.doors_mask:
            dropped += 1
            continue
        grants.setdefault(number, []).append(
            (entry.doors_mask, Rule(entry.schedule_id, start, end), entry.pin)
        )

    cards: dict[int, DesiredCard] = {}
    chains: dict[RuleSet, Chain] = {}
    for number, granted in grants.items():
        pins = {pin for _, _, pin in granted}
        if len(pins) > 1:
            raise EncodeError("entries.pin", f"credential {number} has entries with different PINs")
        start = min(r.start or FIRST_DAY for _, r, _ in granted)
        end = max(r.end or LAST_DAY for _, r, _ in granted)
        door_rules: list[RuleSet] = []
        for door in range(MAX_DOORS):
            rules = frozenset(
                Rule(
                    r.schedule_id,
                    None if r.start == start else r.start,
                    None if r.end == end else r.end,
                )
                for mask, r, _ in granted
                if mask >> door & 1
            )
            if Rule(0) in rules:
                rules = frozenset({Rule(0)})
            elif rules and rules not in chains:
                chain = rule_chain(rules, windows)
                if not chain:
                    rules = frozenset()  # schedules with no usable window: no access
                else:
                    chains[rules] = chain
            door_rules.append(rules)
        r1, r2, r3, r4 = door_rules
        cards[number] = DesiredCard(number, start, end, (r1, r2, r3, r4), pins.pop())
    return DesiredTable(cards, chains, dropped)


__all__ = [
    "ALWAYS",
    "FIRST_DAY",
    "LAST_DAY",
    "NEVER",
    "PIN_MAX",
    "PROFILE_IDS",
    "Card",
    "Chain",
    "DesiredCard",
    "DesiredTable",
    "EncodeError",
    "Profile",
    "ProfileContent",
    "Rounding",
    "Rule",
    "RuleSet",
    "Table",
    "desired_table",
    "first_day",
    "last_day",
    "rule_chain",
    "schedule_chain",
]
