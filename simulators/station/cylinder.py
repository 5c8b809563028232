"""Offline cylinders that decide exactly as a CLIQ-style cylinder does.

A cylinder opens for a key when, in this order of checks (the first failing check is the
reason of a denial):

1. the key's serial is not on the cylinder's blacklist (``BLACKLISTED``);
2. the key is enabled (``KEY_DISABLED``);
3. now lies in the key's own validity window (``OUTSIDE_VALIDITY``);
4. the key's revalidation deadline has not passed (``REVALIDATION_LAPSED``);
5. the key has an access entry for this cylinder (``NOT_PROGRAMMED``);
6. one of those entries' windows contains now (``OUTSIDE_VALIDITY``) and
7. its schedule (0 = any time; a schedule missing from the key never allows) allows the
   local wall-clock time in the site time zone (``OUTSIDE_SCHEDULE``).

Before deciding, the cylinder takes a blacklist the key carries for it if its version is
strictly newer than the one it holds (and records ``BLACKLIST_APPLIED``). It keeps its last
1000 events in a ring buffer and hands the events it has not handed over yet to the
visiting key, which stores them in its audit trail (source ``cylinder``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from drivers.base import AuditOutcome, HardwareSchedule, KeyAuditRecord, KeyImage
from simulators.station.keys import VirtualKey

EVENT_CAPACITY = 1000


class DenyReason(StrEnum):
    NOT_PROGRAMMED = "NOT_PROGRAMMED"
    KEY_DISABLED = "KEY_DISABLED"
    OUTSIDE_VALIDITY = "OUTSIDE_VALIDITY"
    OUTSIDE_SCHEDULE = "OUTSIDE_SCHEDULE"
    REVALIDATION_LAPSED = "REVALIDATION_LAPSED"
    BLACKLISTED = "BLACKLISTED"


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one key visit."""

    granted: bool
    reason: DenyReason | None = None
    blacklist_applied: int | None = None
    """Version of the blacklist the cylinder took from the key during the visit, if any."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "granted": self.granted,
            "reason": self.reason.value if self.reason else None,
            "blacklist_applied": self.blacklist_applied,
        }


def schedule_allows(schedule: HardwareSchedule, local: datetime) -> bool:
    """Whether local wall-clock time ``local`` lies in one of the schedule's windows."""
    minute = local.hour * 60 + local.minute
    day = 1 << local.weekday()
    return any(
        w.days_mask & day and w.start_minute <= minute < w.end_minute for w in schedule.windows
    )


def _in_window(start: datetime | None, end: datetime | None, at: datetime) -> bool:
    return (start is None or start <= at) and (end is None or at < end)


class Cylinder:
    """One offline cylinder, identified by its hardware id (1..2**32-1)."""

    def __init__(self, cylinder_id: int, *, tz: ZoneInfo, capacity: int = EVENT_CAPACITY) -> None:
        if isinstance(cylinder_id, bool) or not 0 < cylinder_id <= 0xFFFFFFFF:
            raise ValueError("cylinder: a cylinder id is an integer 1..4294967295")
        self.cylinder_id = cylinder_id
        self.tz = tz
        self.blacklist_version = 0
        self.blacklist: frozenset[str] = frozenset()
        self.events: deque[KeyAuditRecord] = deque(maxlen=capacity)
        self._next_sequence = 1
        self._handed_up_to = 0

    def decide(self, image: KeyImage, at: datetime) -> Decision:
        """The decision for a key holding ``image`` at instant ``at`` (no side effects)."""
        if image.serial in self.blacklist:
            return Decision(False, DenyReason.BLACKLISTED)
        if not image.enabled:
            return Decision(False, DenyReason.KEY_DISABLED)
        if not _in_window(image.valid_from, image.valid_until, at):
            return Decision(False, DenyReason.OUTSIDE_VALIDITY)
        if image.revalidate_by is not None and at >= image.revalidate_by:
            return Decision(False, DenyReason.REVALIDATION_LAPSED)
        entries = [e for e in image.access if e.cylinder == self.cylinder_id]
        if not entries:
            return Decision(False, DenyReason.NOT_PROGRAMMED)
        current = [e for e in entries if _in_window(e.valid_from, e.valid_until, at)]
        if not current:
            return Decision(False, DenyReason.OUTSIDE_VALIDITY)
        schedules = {s.schedule_id: s for s in image.schedules}
        local = at.astimezone(self.tz)
        for entry in current:
            if entry.schedule_id == 0:
                return Decision(True)
            schedule = schedules.get(entry.schedule_id)
            if schedule is not None and schedule_allows(schedule, local):
                return Decision(True)
        return Decision(False, DenyReason.OUTSIDE_SCHEDULE)

    def _record(
        self,
        at: datetime,
        serial: str,
        outcome: AuditOutcome,
        reason: str = "",
        blacklist_version: int = 0,
    ) -> None:
        self.events.append(
            KeyAuditRecord(
                sequence=self._next_sequence,
                at=at,
                cylinder=self.cylinder_id,
                key_serial=serial,
                outcome=outcome,
                reason=reason,
                blacklist_version=blacklist_version,
                source="cylinder",
            )
        )
        self._next_sequence = self._next_sequence % 0xFFFFFFFF + 1

    def learn_blacklist(self, image: KeyImage, at: datetime) -> int | None:
        """Take the blacklist ``image`` carries for this cylinder if strictly newer."""
        for entry in image.blacklists:
            if entry.cylinder == self.cylinder_id and entry.version > self.blacklist_version:
                self.blacklist_version = entry.version
                self.blacklist = frozenset(entry.serials)
                self._record(
                    at,
                    image.serial,
                    AuditOutcome.BLACKLIST_APPLIED,
                    blacklist_version=entry.version,
                )
                return entry.version
        return None

    def visit(self, key: VirtualKey, at: datetime) -> Decision:
        """A key is turned in this cylinder at ``at``: learn its blacklist, decide, record
        the event on both sides and hand the cylinder's new events to the key."""
        applied = self.learn_blacklist(key.image, at)
        decision = self.decide(key.image, at)
        outcome = AuditOutcome.GRANTED if decision.granted else AuditOutcome.DENIED
        reason = decision.reason.value if decision.reason else ""
        self._record(at, key.serial, outcome, reason)
        key.record_own(at=at, cylinder=self.cylinder_id, outcome=outcome, reason=reason)
        handed = [e for e in self.events if e.sequence > self._handed_up_to]
        if handed:
            self._handed_up_to = handed[-1].sequence
        key.carry(handed)
        return Decision(decision.granted, decision.reason, applied)

    def summary(self, *, limit: int = 20) -> dict[str, Any]:
        recent = list(self.events)[-limit:] if limit > 0 else []
        return {
            "cylinder": self.cylinder_id,
            "blacklist_version": self.blacklist_version,
            "blacklist": sorted(self.blacklist),
            "event_count": len(self.events),
            "events": [
                {
                    "sequence": e.sequence,
                    "at": e.at.isoformat(),
                    "key_serial": e.key_serial,
                    "outcome": e.outcome.value,
                    "reason": e.reason,
                    "blacklist_version": e.blacklist_version,
                }
                for e in recent
            ],
        }
