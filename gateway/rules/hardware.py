"""What each device must hold, derived from credential states: controller allow-lists and
cylinder blacklists. Pure functions and value types; the engine keeps them up to date."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from gateway.domain.facts import CredentialKind
from gateway.domain.timeutil import WeeklySchedule, Window
from gateway.rules.evaluate import DesiredCredential, schedule_text
from gateway.rules.factset import FactSet


@dataclass(frozen=True, slots=True)
class AllowListEntry:
    """One allow-list line for a controller: a credential, its doors, window and schedule."""

    credential: str
    doors: tuple[int, ...]
    window: Window
    schedule: WeeklySchedule | None = None

    def sort_key(self) -> tuple[int, float, float, tuple[int, ...]]:
        return (
            int(self.credential),
            self.window.start.timestamp() if self.window.start else -math.inf,
            self.window.end.timestamp() if self.window.end else math.inf,
            self.doors,
        )

    def digest(self) -> int:
        """A 64-bit hash of the entry, stable across processes."""
        text = repr((self.sort_key(), schedule_text(self.schedule)))
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class DesiredController:
    """The allow-list a door controller must hold. ``schedules[i]`` has hardware id ``i + 1``."""

    controller_id: str
    entries: tuple[AllowListEntry, ...]
    schedules: tuple[WeeklySchedule, ...]
    revision: str

    def schedule_id(self, schedule: WeeklySchedule | None) -> int:
        return 0 if schedule is None else self.schedules.index(schedule) + 1


@dataclass(frozen=True, slots=True)
class KeyExposure:
    """What a key physically holds, as last confirmed by a station: the cylinders its image
    opens and the instant after which it opens nothing any more (the earlier of its validity
    end and its revalidation deadline; ``None`` = never)."""

    serial: str
    cylinders: frozenset[str]
    lapses_at: datetime | None


@dataclass(frozen=True, slots=True)
class DesiredBlacklist:
    """The keys a cylinder must refuse: keys that could still physically open it but may not.

    ``serials`` fit the capacity (revoked keys first, then the longest exposure first);
    ``overflow`` lists the ones that did not fit."""

    cylinder: str
    serials: tuple[str, ...]
    overflow: tuple[str, ...]
    revision: str
    next_change_at: datetime | None


def controller_contributions(
    state: DesiredCredential, facts: FactSet
) -> dict[str, tuple[AllowListEntry, ...]]:
    """The allow-list entries one credential contributes, per controller id.

    Tags and visitor cards open doors; keys open cylinders and contribute nothing here."""
    if state.kind is CredentialKind.KEY or not state.enabled or not state.grants:
        return {}
    groups: dict[tuple[str, Window, WeeklySchedule | None], set[int]] = {}
    for g in state.grants:
        space = facts.spaces.get(g.space_id)
        if space is None:
            continue
        for d in space.doors:
            groups.setdefault((d.controller_id, g.window, g.schedule), set()).add(d.door)
    out: dict[str, list[AllowListEntry]] = {}
    for (cid, window, schedule), doors in groups.items():
        out.setdefault(cid, []).append(
            AllowListEntry(state.number, tuple(sorted(doors)), window, schedule)
        )
    return {cid: tuple(sorted(v, key=AllowListEntry.sort_key)) for cid, v in out.items()}


REVISION_MASK = (1 << 64) - 1


def controller_revision(controller_id: str, entries_digest: int) -> str:
    """A controller's revision from the sum (mod 2**64) of its entries' digests: a multiset
    hash, so the engine can keep it up to date entry by entry."""
    base = int.from_bytes(hashlib.blake2b(controller_id.encode(), digest_size=8).digest(), "big")
    return format(base ^ (entries_digest & REVISION_MASK), "016x")


def build_controller(
    controller_id: str, entries: list[AllowListEntry], revision: str | None = None
) -> DesiredController:
    """Assemble a controller's allow-list with deterministic schedule ids and a revision."""
    entries.sort(key=AllowListEntry.sort_key)
    schedules = sorted({e.schedule for e in entries if e.schedule is not None}, key=schedule_text)
    if revision is None:
        revision = controller_revision(controller_id, sum(e.digest() for e in entries))
    return DesiredController(controller_id, tuple(entries), tuple(schedules), revision)


def granted_cylinders(state: DesiredCredential | None, facts: FactSet) -> set[str]:
    """Cylinders a key's desired state lets it open (in some non-lapsed window)."""
    if state is None or not state.enabled:
        return set()
    out: set[str] = set()
    for g in state.grants:
        space = facts.spaces.get(g.space_id)
        if space is not None:
            out.update(space.cylinders)
    return out


def build_blacklist(
    cylinder: str,
    exposures: list[KeyExposure],
    states: dict[str, DesiredCredential],
    facts: FactSet,
    at: datetime,
    capacity: int,
) -> DesiredBlacklist:
    """The blacklist of one cylinder at ``at`` from the keys exposed on it."""
    listed: list[tuple[bool, float, str]] = []
    boundaries: list[datetime] = []
    for exp in exposures:
        if cylinder not in exp.cylinders:
            continue
        if exp.lapses_at is not None:
            if exp.lapses_at <= at:
                continue
            boundaries.append(exp.lapses_at)
        state = states.get(exp.serial)
        if cylinder in granted_cylinders(state, facts):
            continue
        revoked = state is None or state.revoked
        lapse = exp.lapses_at.timestamp() if exp.lapses_at else float("inf")
        listed.append((not revoked, -lapse, exp.serial))
    listed.sort()
    serials = [s for _, _, s in listed]
    kept = tuple(sorted(serials[:capacity], key=int))
    overflow = tuple(sorted(serials[capacity:], key=int))
    revision = hashlib.blake2b(
        (cylinder + ":" + ",".join(kept)).encode(), digest_size=8
    ).hexdigest()
    return DesiredBlacklist(cylinder, kept, overflow, revision, min(boundaries, default=None))
