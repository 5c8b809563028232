"""The panel's allow-list: validation, canonical checksum, file round trip and decisions."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import AllowEntry, DenyReason, HardwareSchedule, ScheduleWindow
from drivers.osdp.allowlist import AllowList, AllowListFileError

STOCKHOLM = ZoneInfo("Europe/Stockholm")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Stockholm
WORKDAYS = HardwareSchedule(1, (ScheduleWindow(0b0011111, 7 * 60, 18 * 60),))
NIGHTS = HardwareSchedule(2, (ScheduleWindow(0x7F, 22 * 60, 1440), ScheduleWindow(0x7F, 0, 360)))


def _build(entries: list[AllowEntry], schedules: list[HardwareSchedule] | None = None) -> AllowList:
    return AllowList.build(entries, schedules or [WORKDAYS, NIGHTS], doors=4, capacity=100)


instants = st.none() | st.integers(0, 4_000_000_000).map(lambda s: datetime.fromtimestamp(s, UTC))


@st.composite
def entries(draw: st.DrawFn) -> AllowEntry:
    start = draw(instants)
    end = draw(instants)
    if start is not None and end is not None:
        if end == start:
            end = start + timedelta(seconds=1)
        elif end < start:
            start, end = end, start
    return AllowEntry(
        credential=draw(st.integers(1, 0xFFFFFFFF)),
        doors_mask=draw(st.integers(1, 0xF)),
        valid_from=start,
        valid_until=end,
        schedule_id=draw(st.sampled_from([0, 1, 2])),
    )


@given(st.lists(entries(), max_size=30), st.randoms())
def test_checksum_does_not_depend_on_entry_order(
    items: list[AllowEntry], rnd: random.Random
) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert _build(items).checksum == _build(shuffled).checksum


@given(st.lists(entries(), max_size=30))
def test_file_round_trip_keeps_content_and_checksum(items: list[AllowEntry]) -> None:
    original = _build(items)
    back = AllowList.decode(original.encode(T0), doors=4, capacity=100)
    assert back.checksum == original.checksum
    assert sorted(back.entries, key=repr) == sorted(original.entries, key=repr)
    assert back.schedules == original.schedules


def test_checksum_changes_with_any_field() -> None:
    base = _build([AllowEntry(7, 1)])
    for changed in (
        AllowEntry(8, 1),
        AllowEntry(7, 3),
        AllowEntry(7, 1, valid_from=T0),
        AllowEntry(7, 1, valid_until=T0),
        AllowEntry(7, 1, schedule_id=1),
    ):
        assert _build([changed]).checksum != base.checksum
    assert _build([AllowEntry(7, 1)], [WORKDAYS]).checksum != base.checksum


def test_a_file_that_does_not_match_its_checksum_is_refused() -> None:
    doc = json.loads(_build([AllowEntry(7, 1)]).encode(T0))
    doc["entries"][0][0] = 8
    with pytest.raises(AllowListFileError, match="checksum"):
        AllowList.decode(json.dumps(doc).encode(), doors=4, capacity=100)
    with pytest.raises(AllowListFileError, match="JSON"):
        AllowList.decode(b'{"format": 1, "entr', doors=4, capacity=100)
    with pytest.raises(AllowListFileError, match="format"):
        AllowList.decode(b'{"format": 9}', doors=4, capacity=100)


@pytest.mark.parametrize(
    ("entry", "schedules", "message"),
    [
        (AllowEntry(0, 1), [], r"entries\[0\]\.credential: must be in 1\.\."),
        (AllowEntry(1 << 32, 1), [], r"entries\[0\]\.credential"),
        (AllowEntry(7, 0), [], r"entries\[0\]\.doors_mask"),
        (AllowEntry(7, 0b10000), [], r"doors_mask: 0x10 names a door beyond"),
        (AllowEntry(7, 1, schedule_id=3), [], r"schedule 3 is not among"),
        (AllowEntry(7, 1, valid_from=T0, valid_until=T0), [], r"valid_until: must be after"),
        (AllowEntry(7, 1, valid_from=datetime(2026, 1, 1)), [], r"valid_from: must be .*aware"),
        (
            AllowEntry(7, 1),
            [HardwareSchedule(1, (ScheduleWindow(0, 0, 10),))],
            r"schedules\[0\]\.windows\[0\]\.days_mask",
        ),
        (
            AllowEntry(7, 1),
            [HardwareSchedule(1, (ScheduleWindow(1, 600, 600),))],
            r"end_minute: must be after start_minute",
        ),
        (AllowEntry(7, 1), [WORKDAYS, WORKDAYS], r"schedules\[1\]\.schedule_id: .* twice"),
        (AllowEntry(7, 1, pin=1234), [], r"entries\[0\]\.pin: this panel does not enforce PINs"),
    ],
)
def test_bad_entries_name_the_field(
    entry: AllowEntry, schedules: list[HardwareSchedule], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AllowList.build([entry], schedules, doors=4, capacity=100)


def test_capacity_is_enforced() -> None:
    with pytest.raises(ValueError, match="entries: 3 entries exceed the capacity of 2"):
        AllowList.build([AllowEntry(i, 1) for i in (1, 2, 3)], [], doors=1, capacity=2)


def test_decisions_in_order_of_reasons() -> None:
    allow = _build(
        [
            AllowEntry(10, 0b0001),
            AllowEntry(11, 0b0010),
            AllowEntry(12, 0b0001, valid_until=T0),
            AllowEntry(13, 0b0001, valid_from=T0 + timedelta(seconds=1)),
            AllowEntry(14, 0b0001, schedule_id=2),
            AllowEntry(15, 0b0001, schedule_id=1),
            # Several entries: one that fits is enough.
            AllowEntry(16, 0b0001, schedule_id=2),
            AllowEntry(16, 0b0001, schedule_id=1),
        ]
    )
    assert allow.decide(10, 1, T0, STOCKHOLM) is None
    assert allow.decide(99, 1, T0, STOCKHOLM) is DenyReason.UNKNOWN_CREDENTIAL
    assert allow.decide(11, 1, T0, STOCKHOLM) is DenyReason.DOOR_NOT_ALLOWED
    assert allow.decide(12, 1, T0, STOCKHOLM) is DenyReason.OUTSIDE_VALIDITY  # until is exclusive
    assert allow.decide(13, 1, T0, STOCKHOLM) is DenyReason.OUTSIDE_VALIDITY
    assert allow.decide(14, 1, T0, STOCKHOLM) is DenyReason.OUTSIDE_SCHEDULE
    assert allow.decide(15, 1, T0, STOCKHOLM) is None
    assert allow.decide(16, 1, T0, STOCKHOLM) is None


def test_schedules_use_local_wall_clock_time_across_dst() -> None:
    allow = _build([AllowEntry(15, 1, schedule_id=1)])
    # Monday 2026-03-30, the day after the spring change: 06:59 and 07:00 local (UTC+2).
    assert allow.decide(15, 1, datetime(2026, 3, 30, 4, 59, tzinfo=UTC), STOCKHOLM) is (
        DenyReason.OUTSIDE_SCHEDULE
    )
    assert allow.decide(15, 1, datetime(2026, 3, 30, 5, 0, tzinfo=UTC), STOCKHOLM) is (None)
    # Saturday is not a workday; the end minute is exclusive.
    assert allow.decide(15, 1, datetime(2026, 3, 28, 10, 0, tzinfo=UTC), STOCKHOLM) is (
        DenyReason.OUTSIDE_SCHEDULE
    )
    assert allow.decide(15, 1, datetime(2026, 3, 30, 16, 0, tzinfo=UTC), STOCKHOLM) is (
        DenyReason.OUTSIDE_SCHEDULE
    )


@given(st.lists(entries(), max_size=20), st.integers(1, 0xFFFFFFFF), st.integers(1, 4))
def test_an_entry_for_another_credential_never_changes_a_decision(
    items: list[AllowEntry], credential: int, door: int
) -> None:
    others = [e for e in items if e.credential != credential]
    mine = [AllowEntry(credential, 0b0101, valid_until=T0 + timedelta(days=1))]
    assert _build(mine).decide(credential, door, T0, STOCKHOLM) == _build(mine + others).decide(
        credential, door, T0, STOCKHOLM
    )
