"""Offline cylinder decisions, blacklists, event ring and hand-over to keys."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from drivers.base import (
    AccessEntry,
    AuditOutcome,
    BlacklistEntry,
    HardwareSchedule,
    KeyImage,
    ScheduleWindow,
)
from drivers.serialstation.image import encode_image
from simulators.station import Cylinder, DenyReason, KeyRegistry, VirtualKey, schedule_allows

TZ = ZoneInfo("Europe/Stockholm")
CYL = 4711
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Stockholm
WORKDAYS = HardwareSchedule(1, (ScheduleWindow(0x1F, 7 * 60, 18 * 60),))


def image(**changes: object) -> KeyImage:
    base = KeyImage(
        serial="100000001",
        revision="00000000000000aa",
        enabled=True,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        valid_until=datetime(2027, 1, 1, tzinfo=UTC),
        revalidate_by=datetime(2026, 4, 1, tzinfo=UTC),
        schedules=(WORKDAYS,),
        access=(AccessEntry(CYL, schedule_id=1),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def key_with(img: KeyImage) -> VirtualKey:
    key = VirtualKey(img.serial)
    key.store(encode_image(img))
    return key


@pytest.fixture
def cylinder() -> Cylinder:
    return Cylinder(CYL, tz=TZ)


def test_a_programmed_valid_key_is_granted(cylinder: Cylinder) -> None:
    decision = cylinder.decide(image(), NOW)
    assert decision.granted
    assert decision.reason is None


@pytest.mark.parametrize(
    ("changes", "at", "reason"),
    [
        ({"access": ()}, NOW, DenyReason.NOT_PROGRAMMED),
        ({"access": (AccessEntry(CYL + 1),)}, NOW, DenyReason.NOT_PROGRAMMED),
        ({"enabled": False}, NOW, DenyReason.KEY_DISABLED),
        ({}, datetime(2025, 12, 31, 23, 0, tzinfo=UTC), DenyReason.OUTSIDE_VALIDITY),
        ({}, datetime(2027, 1, 1, tzinfo=UTC), DenyReason.OUTSIDE_VALIDITY),
        (
            {"access": (AccessEntry(CYL, valid_until=NOW),)},
            NOW,
            DenyReason.OUTSIDE_VALIDITY,
        ),
        (
            {"access": (AccessEntry(CYL, valid_from=NOW + timedelta(seconds=1)),)},
            NOW,
            DenyReason.OUTSIDE_VALIDITY,
        ),
        ({}, datetime(2026, 3, 7, 10, 0, tzinfo=UTC), DenyReason.OUTSIDE_SCHEDULE),  # Saturday
        ({}, datetime(2026, 3, 2, 17, 0, tzinfo=UTC), DenyReason.OUTSIDE_SCHEDULE),  # 18:00
        ({"revalidate_by": NOW}, NOW, DenyReason.REVALIDATION_LAPSED),
        (
            {"schedules": (), "access": (AccessEntry(CYL, schedule_id=9),)},
            NOW,
            DenyReason.OUTSIDE_SCHEDULE,
        ),
    ],
)
def test_every_denial_reason(
    cylinder: Cylinder, changes: dict[str, object], at: datetime, reason: DenyReason
) -> None:
    decision = cylinder.decide(image(**changes), at)
    assert not decision.granted
    assert decision.reason is reason


def test_blacklisted_key_is_refused_even_when_everything_else_holds(cylinder: Cylinder) -> None:
    cylinder.blacklist = frozenset({"100000001"})
    assert cylinder.decide(image(), NOW).reason is DenyReason.BLACKLISTED


def test_any_matching_entry_grants(cylinder: Cylinder) -> None:
    entries = (
        AccessEntry(CYL, valid_until=datetime(2026, 2, 1, tzinfo=UTC)),
        AccessEntry(CYL, schedule_id=1),
    )
    assert cylinder.decide(image(access=entries), NOW).granted


def test_blacklists_are_learned_only_when_strictly_newer(cylinder: Cylinder) -> None:
    carrier = key_with(
        image(serial="100000002", blacklists=(BlacklistEntry(CYL, 5, ("100000001",)),))
    )
    decision = cylinder.visit(carrier, NOW)
    assert decision.granted  # the carrier itself is not on the list it carries
    assert decision.blacklist_applied == 5
    assert cylinder.blacklist_version == 5
    applied = [e for e in cylinder.events if e.outcome is AuditOutcome.BLACKLIST_APPLIED]
    assert [(e.blacklist_version, e.key_serial) for e in applied] == [(5, "100000002")]

    stale = key_with(image(serial="100000003", blacklists=(BlacklistEntry(CYL, 5, ()),)))
    older = key_with(image(serial="100000004", blacklists=(BlacklistEntry(CYL, 4, ()),)))
    assert cylinder.visit(stale, NOW).blacklist_applied is None
    assert cylinder.visit(older, NOW).blacklist_applied is None
    assert cylinder.blacklist == frozenset({"100000001"})

    victim = key_with(image())
    assert cylinder.visit(victim, NOW).reason is DenyReason.BLACKLISTED

    lifted = key_with(image(serial="100000005", blacklists=(BlacklistEntry(CYL, 6, ()),)))
    assert cylinder.visit(lifted, NOW).blacklist_applied == 6
    assert cylinder.visit(victim, NOW).granted


def test_blacklists_for_other_cylinders_are_ignored(cylinder: Cylinder) -> None:
    carrier = key_with(image(blacklists=(BlacklistEntry(CYL + 1, 9, ("x",)),)))
    assert cylinder.visit(carrier, NOW).blacklist_applied is None
    assert cylinder.blacklist_version == 0


def test_event_ring_keeps_the_last_1000(cylinder: Cylinder) -> None:
    key = key_with(image())
    for _ in range(1005):
        cylinder.visit(key, NOW)
    assert len(cylinder.events) == 1000
    assert cylinder.events[0].sequence == 6
    assert cylinder.events[-1].sequence == 1005


def test_events_are_handed_to_visiting_keys_once(cylinder: Cylinder) -> None:
    first = key_with(image())
    second = key_with(image(serial="100000002", enabled=False))
    cylinder.visit(first, NOW)
    cylinder.visit(second, NOW + timedelta(minutes=1))
    cylinder.visit(first, NOW + timedelta(minutes=2))

    def carried(key: VirtualKey) -> list[tuple[int, str, AuditOutcome]]:
        return [(r.sequence, r.key_serial, r.outcome) for r in key.audit if r.source == "cylinder"]

    assert carried(first) == [
        (1, "100000001", AuditOutcome.GRANTED),
        (3, "100000001", AuditOutcome.GRANTED),
    ]
    assert carried(second) == [(2, "100000002", AuditOutcome.DENIED)]
    own = [r for r in second.audit if r.source == "key"]
    assert [(r.cylinder, r.reason) for r in own] == [(CYL, "KEY_DISABLED")]


def test_schedule_follows_local_time_across_dst() -> None:
    # 2026-03-29: Stockholm moves from 02:00 CET to 03:00 CEST.
    night = HardwareSchedule(2, (ScheduleWindow(0x7F, 2 * 60, 3 * 60),))
    morning = HardwareSchedule(3, (ScheduleWindow(0x7F, 7 * 60, 8 * 60),))
    before = datetime(2026, 3, 28, 6, 30, tzinfo=UTC)  # 07:30 CET
    after = datetime(2026, 3, 29, 5, 30, tzinfo=UTC)  # 07:30 CEST
    wrong = datetime(2026, 3, 29, 6, 30, tzinfo=UTC)  # 08:30 CEST
    assert schedule_allows(morning, before.astimezone(TZ))
    assert schedule_allows(morning, after.astimezone(TZ))
    assert not schedule_allows(morning, wrong.astimezone(TZ))
    # 02:00-03:00 does not exist on the spring-forward day ...
    spring = [datetime(2026, 3, 29, 0, m, tzinfo=UTC) for m in range(0, 60, 5)]
    spring += [datetime(2026, 3, 29, 1, m, tzinfo=UTC) for m in range(0, 60, 5)]
    assert not any(schedule_allows(night, t.astimezone(TZ)) for t in spring)
    # ... and happens twice on 2026-10-25 (00:00-01:00 and 01:00-02:00 UTC).
    autumn = [datetime(2026, 10, 25, h, 30, tzinfo=UTC) for h in (0, 1)]
    assert all(schedule_allows(night, t.astimezone(TZ)) for t in autumn)
    assert not schedule_allows(night, datetime(2026, 10, 25, 2, 30, tzinfo=UTC).astimezone(TZ))


def test_cylinder_decides_in_its_time_zone() -> None:
    img = image(revalidate_by=None)
    early = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # 07:30 Stockholm, 06:30 London
    assert Cylinder(CYL, tz=TZ).decide(img, early).granted
    london = Cylinder(CYL, tz=ZoneInfo("Europe/London")).decide(img, early)
    assert london.reason is DenyReason.OUTSIDE_SCHEDULE


def test_key_audit_capacity_overwrites_the_oldest(cylinder: Cylinder) -> None:
    key = VirtualKey("100000001", audit_capacity=10)
    key.store(encode_image(image()))
    for _ in range(6):
        cylinder.visit(key, NOW)  # two records per visit: the key's and the cylinder's
    assert len(key.audit) == 10
    assert key.audit_overwritten == 2
    assert key.audit[0].source == "key"
    assert key.audit[0].sequence == 2


def test_key_registry() -> None:
    registry = KeyRegistry()
    registry.add("100000002")
    registry.add("100000001")
    assert [k.serial for k in registry] == ["100000001", "100000002"]
    assert "100000001" in registry
    with pytest.raises(ValueError, match="already"):
        registry.add("100000001")
    with pytest.raises(LookupError, match="serial"):
        registry.get("999")
    with pytest.raises(ValueError, match="serial"):
        registry.add("bad serial")


def test_cylinder_id_is_validated() -> None:
    with pytest.raises(ValueError, match="cylinder"):
        Cylinder(0, tz=TZ)
