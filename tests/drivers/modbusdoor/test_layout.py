"""Table layouts: full writes, patches and how they are cut into requests."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow
from drivers.modbusdoor import registers as rm
from drivers.modbusdoor.layout import (
    Layout,
    RegisterWrite,
    chunk,
    encode_entries,
    encode_schedules,
    entry_writes,
    full_layout,
    patch_layout,
    schedule_writes,
)

rows = st.lists(
    st.tuples(st.integers(1, 40), st.integers(1, 3)).map(
        lambda t: tuple(rm.encode_entry(AllowEntry(credential=t[0], doors_mask=t[1])))
    ),
    max_size=60,
)


def _apply(image: list[int], writes: list[RegisterWrite]) -> None:
    for w in writes:
        offset = w.address - rm.HOLD_ENTRY_TABLE
        image[offset : offset + len(w.values)] = w.values


@given(rows, rows)
def test_a_patch_turns_the_old_table_into_the_new_list(
    old: list[tuple[int, ...]], new: list[tuple[int, ...]]
) -> None:
    previous = full_layout((), old)
    layout, changed = patch_layout(previous, (), new)
    assert Counter(layout.rows) == Counter(new)
    # Rows that were not rewritten are where they were.
    for i, row in enumerate(layout.rows):
        if i not in changed:
            assert i < len(previous.rows)
            assert previous.rows[i] == row
    # What a controller ends up with after COPY_ACTIVE_TO_STAGING and the patch writes.
    image = [v for r in previous.rows for v in r] + [0] * (8 * len(new))
    _apply(image, entry_writes(layout, changed))
    assert image[: 8 * len(layout.rows)] == [v for r in layout.rows for v in r]
    added = Counter(new) - Counter(old)
    removed = Counter(old) - Counter(new)
    assert len(changed) <= max(sum(added.values()), sum(removed.values()))
    assert changed == sorted(set(changed))


def test_revoking_one_credential_rewrites_one_row() -> None:
    entries = [AllowEntry(credential=c, doors_mask=1) for c in range(1, 1001)]
    previous = full_layout((), encode_entries(entries))
    layout, changed = patch_layout(previous, (), encode_entries(entries[:500] + entries[501:]))
    assert changed == [500]
    assert len(layout.rows) == 999
    writes = entry_writes(layout, changed)
    assert writes == [RegisterWrite(rm.entry_address(500), layout.rows[500])]
    assert layout.rows[500] == previous.rows[-1]


def test_revoking_the_last_row_rewrites_nothing() -> None:
    entries = encode_entries([AllowEntry(credential=c, doors_mask=1) for c in range(1, 11)])
    layout, changed = patch_layout(full_layout((), entries), (), entries[:-1])
    assert changed == []
    assert layout.rows == tuple(entries[:-1])


def test_full_layout_is_sorted_so_the_checksum_does_not_depend_on_order() -> None:
    entries = encode_entries([AllowEntry(credential=c, doors_mask=1) for c in (5, 3, 9, 1)])
    a = full_layout((), entries)
    b = full_layout((), list(reversed(entries)))
    assert a == b
    assert a.checksum == b.checksum
    assert list(a.rows) == sorted(entries)


@given(st.integers(0, 2000))
def test_full_write_uses_the_fewest_requests(count: int) -> None:
    entries = encode_entries([AllowEntry(credential=c + 1, doors_mask=1) for c in range(count)])
    layout = full_layout((), entries)
    writes = entry_writes(layout)
    registers = count * rm.ENTRY_RECORD_REGISTERS
    assert len(writes) == math.ceil(registers / rm.MAX_WRITE_REGISTERS)
    assert layout.full_write_requests == len(writes) + len(schedule_writes(layout))
    assert all(1 <= len(w.values) <= rm.MAX_WRITE_REGISTERS for w in writes)
    image: list[int] = [0] * registers
    _apply(image, writes)
    assert image == [v for r in layout.rows for v in r]


@given(st.integers(0, 5000), st.integers(1, 123))
def test_chunk_covers_the_range_in_order(count: int, limit: int) -> None:
    values = list(range(count))
    parts = chunk(100, values, limit)
    assert [v for p in parts for v in p.values] == values
    assert all(len(p.values) <= limit for p in parts)
    assert [p.address for p in parts] == [100 + i for i in range(0, count, limit)]


def test_schedules_are_sorted_by_id_and_unique() -> None:
    a = HardwareSchedule(7, (ScheduleWindow(1, 0, 60),))
    b = HardwareSchedule(2, ())
    records = encode_schedules([a, b])
    assert [r[0] for r in records] == [2, 7]
    writes = schedule_writes(Layout(records, ()))
    assert writes[0].address == rm.HOLD_SCHEDULE_TABLE
    assert len(writes[0].values) == 2 * rm.SCHEDULE_RECORD_REGISTERS
    with pytest.raises(rm.EncodeError, match="appears twice"):
        encode_schedules([a, a])


def test_entry_errors_name_the_entry() -> None:
    with pytest.raises(rm.EncodeError) as exc:
        encode_entries([AllowEntry(credential=1, doors_mask=1), AllowEntry(0, 1)])
    assert exc.value.field == "entries[1].credential"
