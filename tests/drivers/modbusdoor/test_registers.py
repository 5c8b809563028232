"""Round trips, validation and fuzzing of the register map codecs."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow
from drivers.modbusdoor import registers as rm
from tests.drivers.modbusdoor import strategies as s

# --------------------------------------------------------------------------- round trips


@given(s.entries)
def test_entry_round_trip(entry: AllowEntry) -> None:
    regs = rm.encode_entry(entry)
    assert len(regs) == rm.ENTRY_RECORD_REGISTERS
    assert all(0 <= r <= rm.U16_MAX for r in regs)
    assert rm.decode_entry(regs) == entry


@given(s.schedules)
def test_schedule_round_trip(schedule: HardwareSchedule) -> None:
    regs = rm.encode_schedule(schedule)
    assert len(regs) == rm.SCHEDULE_RECORD_REGISTERS
    assert rm.decode_schedule(regs) == schedule


@given(s.event_records())
def test_event_round_trip(record: rm.EventRecord) -> None:
    regs = rm.encode_event(record)
    assert len(regs) == rm.EVENT_RECORD_REGISTERS
    assert rm.decode_event(regs) == record
    event = record.to_event()
    assert event.at == datetime.fromtimestamp(record.at, UTC)
    assert rm.EVENT_KIND_CODES[event.kind] is record.kind


@given(s.identities)
def test_identity_round_trip(identity: rm.Identity) -> None:
    regs = rm.encode_identity(identity)
    assert len(regs) == rm.IDENTITY_COUNT
    assert rm.decode_identity(regs) == identity


@given(
    st.builds(
        rm.Status,
        commit=st.sampled_from(list(rm.CommitStatus)),
        command_tag=s.registers16,
        active_checksum=st.integers(0, rm.U32_MAX),
        active_entries=st.integers(0, rm.MAX_CAPACITY),
        active_schedules=st.integers(0, rm.MAX_SCHEDULE_SLOTS),
        generation=st.integers(0, rm.U32_MAX),
        staging_checksum=st.integers(0, rm.U32_MAX),
    )
)
def test_status_round_trip(status: rm.Status) -> None:
    assert rm.decode_status(rm.encode_status(status)) == status


@given(st.integers(1, 1000), st.integers(0, 1000), st.integers(0, 12), st.booleans(), st.data())
def test_event_header_round_trip(
    oldest: int, extra: int, window: int, overflow: bool, data: st.DataObject
) -> None:
    stored = extra + 1
    header = rm.EventHeader(
        stored=stored,
        overflow=overflow,
        oldest=oldest,
        newest=oldest + extra,
        cursor=data.draw(st.integers(0, rm.U32_MAX)),
        window_count=min(window, stored),
    )
    regs = rm.encode_event_header(header)
    assert rm.decode_event_header(regs, event_capacity=stored, event_window=12) == header


@given(
    st.builds(
        AllowEntry,
        credential=st.just(7),
        doors_mask=st.just(1),
        valid_from=st.floats(1, 4e9).map(lambda t: datetime.fromtimestamp(t, UTC)),
        valid_until=st.floats(0, 4e9).map(lambda t: datetime.fromtimestamp(t, UTC)),
    )
)
def test_fractional_seconds_narrow_the_window(entry: AllowEntry) -> None:
    assert entry.valid_from is not None
    assert entry.valid_until is not None
    decoded = rm.decode_entry(rm.encode_entry(entry))
    assert decoded.valid_from is not None
    assert decoded.valid_until is not None
    assert entry.valid_from <= decoded.valid_from < entry.valid_from + timedelta(seconds=1)
    assert entry.valid_until - timedelta(seconds=1) < decoded.valid_until <= entry.valid_until


# --------------------------------------------------------------------------- checksum


@given(st.lists(s.schedules, max_size=3), st.lists(s.entries, max_size=20))
def test_checksum_is_crc32_of_the_image(
    schedules: list[HardwareSchedule], entries: list[AllowEntry]
) -> None:
    sched = [rm.encode_schedule(x) for x in schedules]
    rows = [rm.encode_entry(e) for e in entries]
    image = rm.image_bytes(sched, rows)
    assert len(image) == 4 + 50 * len(sched) + 16 * len(rows)
    assert rm.image_checksum(sched, rows) == zlib.crc32(image)
    flat_s = [r for x in sched for r in x]
    flat_e = [r for x in rows for r in x]
    assert rm.flat_checksum(flat_s, len(sched), flat_e, len(rows)) == zlib.crc32(image)


@given(st.lists(s.entries, min_size=1, max_size=20), st.data())
def test_checksum_detects_any_changed_register(
    entries: list[AllowEntry], data: st.DataObject
) -> None:
    rows = [rm.encode_entry(e) for e in entries]
    row = data.draw(st.integers(0, len(rows) - 1))
    reg = data.draw(st.integers(0, rm.ENTRY_RECORD_REGISTERS - 1))
    value = data.draw(s.registers16.filter(lambda v: v != rows[row][reg]))
    changed = [list(r) for r in rows]
    changed[row][reg] = value
    assert rm.image_checksum([], changed) != rm.image_checksum([], rows)


def test_checksum_covers_the_counts() -> None:
    # The counts head the image, so moving a record between the tables changes the checksum.
    assert rm.image_checksum([], []) != rm.image_checksum([], [[0] * 8])
    assert rm.image_checksum([[0] * 8], []) != rm.image_checksum([], [[0] * 8])
    assert zlib.crc32(b"\0\0\0\0") == rm.EMPTY_CHECKSUM


# --------------------------------------------------------------------------- fuzzing


@given(s.garbage(s.entries.map(rm.encode_entry), rm.ENTRY_RECORD_REGISTERS))
def test_entry_decoding_accepts_only_canonical_records(regs: list[int]) -> None:
    try:
        entry = rm.decode_entry(regs)
    except rm.DecodeError as exc:
        refused_field = exc.field
    else:
        assert rm.encode_entry(entry) == regs
        return
    assert refused_field.startswith("entry")


@given(s.garbage(s.schedules.map(rm.encode_schedule), rm.SCHEDULE_RECORD_REGISTERS))
def test_schedule_decoding_accepts_only_canonical_records(regs: list[int]) -> None:
    try:
        schedule = rm.decode_schedule(regs)
    except rm.DecodeError:
        return
    assert rm.encode_schedule(schedule) == regs


@given(s.garbage(s.event_records().map(rm.encode_event), rm.EVENT_RECORD_REGISTERS))
def test_event_decoding_accepts_only_canonical_records(regs: list[int]) -> None:
    try:
        record = rm.decode_event(regs)
    except rm.DecodeError:
        return
    assert rm.encode_event(record) == regs


@given(s.garbage(s.identities.map(rm.encode_identity), rm.IDENTITY_COUNT))
def test_identity_decoding_accepts_only_canonical_blocks(regs: list[int]) -> None:
    try:
        identity = rm.decode_identity(regs)
    except rm.DecodeError:
        return
    assert rm.encode_identity(identity) == regs


@given(st.lists(s.registers16, min_size=rm.STATUS_COUNT, max_size=rm.STATUS_COUNT))
def test_status_decoding_refuses_unknown_codes_and_counts(regs: list[int]) -> None:
    valid = regs[0] in set(rm.CommitStatus) and regs[4] <= 100 and regs[5] <= 254
    if not valid:
        with pytest.raises(rm.DecodeError):
            rm.decode_status(regs, capacity=100)
        return
    assert rm.encode_status(rm.decode_status(regs, capacity=100)) == regs


@given(st.lists(s.registers16, min_size=rm.EVENT_HEADER_COUNT, max_size=rm.EVENT_HEADER_COUNT))
def test_event_header_decoding_accepts_only_consistent_headers(regs: list[int]) -> None:
    try:
        header = rm.decode_event_header(regs, event_capacity=300, event_window=12)
    except rm.DecodeError:
        return
    assert rm.encode_event_header(header) == regs
    if header.stored:
        assert header.newest - header.oldest + 1 == header.stored


@pytest.mark.parametrize(
    ("decoder", "size"),
    [
        (rm.decode_entry, rm.ENTRY_RECORD_REGISTERS),
        (rm.decode_schedule, rm.SCHEDULE_RECORD_REGISTERS),
        (rm.decode_event, rm.EVENT_RECORD_REGISTERS),
        (rm.decode_identity, rm.IDENTITY_COUNT),
        (rm.decode_status, rm.STATUS_COUNT),
    ],
)
def test_decoders_refuse_wrong_lengths_and_values(decoder: object, size: int) -> None:
    assert callable(decoder)
    with pytest.raises(rm.DecodeError, match="expected"):
        decoder([0] * (size - 1))
    with pytest.raises(rm.DecodeError, match="16-bit"):
        decoder([0x10000] + [0] * (size - 1))


def test_wrong_magic_and_version_are_refused() -> None:
    identity = rm.Identity(
        controller_id="c",
        doors=1,
        capacity=1,
        schedule_slots=0,
        event_capacity=1,
        event_window=1,
        generation=0,
    )
    regs = rm.encode_identity(identity)
    with pytest.raises(rm.DecodeError, match="not a lockgate controller") as exc:
        rm.decode_identity([0x1234, *regs[1:]])
    assert exc.value.field == "magic"
    with pytest.raises(rm.DecodeError) as exc:
        rm.decode_identity([regs[0], 2, *regs[2:]])
    assert exc.value.field == "map_version"


# --------------------------------------------------------------------------- encoding errors


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (AllowEntry(credential=0, doors_mask=1), "credential"),
        (AllowEntry(credential=2**32, doors_mask=1), "credential"),
        (AllowEntry(credential=1, doors_mask=0), "doors_mask"),
        (AllowEntry(credential=1, doors_mask=0x10000), "doors_mask"),
        (AllowEntry(credential=1, doors_mask=1, schedule_id=255), "schedule_id"),
        (AllowEntry(credential=1, doors_mask=1, valid_from=datetime(2026, 1, 1)), "valid_from"),
        (AllowEntry(credential=1, doors_mask=1, valid_until=datetime(2026, 1, 1)), "valid_until"),
        (
            AllowEntry(credential=1, doors_mask=1, valid_from=datetime(1970, 1, 1, tzinfo=UTC)),
            "valid_from",
        ),
        (
            AllowEntry(credential=1, doors_mask=1, valid_until=datetime(2200, 1, 1, tzinfo=UTC)),
            "valid_until",
        ),
        (
            AllowEntry(credential=1, doors_mask=1, valid_from=datetime(1960, 1, 1, tzinfo=UTC)),
            "valid_from",
        ),
    ],
)
def test_entry_encoding_names_the_bad_field(entry: AllowEntry, field: str) -> None:
    with pytest.raises(rm.EncodeError) as exc:
        rm.encode_entry(entry)
    assert exc.value.field == field
    assert isinstance(exc.value, ValueError)


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (HardwareSchedule(0, ()), "schedule_id"),
        (HardwareSchedule(255, ()), "schedule_id"),
        (HardwareSchedule(1, (ScheduleWindow(1, 0, 60),) * 9), "schedule 1.windows"),
        (HardwareSchedule(1, (ScheduleWindow(0, 0, 60),)), "schedule 1.windows[0].days_mask"),
        (HardwareSchedule(1, (ScheduleWindow(0x80, 0, 60),)), "schedule 1.windows[0].days_mask"),
        (HardwareSchedule(1, (ScheduleWindow(1, 60, 60),)), "schedule 1.windows[0]"),
        (HardwareSchedule(1, (ScheduleWindow(1, 0, 1441),)), "schedule 1.windows[0]"),
    ],
)
def test_schedule_encoding_names_the_bad_field(schedule: HardwareSchedule, field: str) -> None:
    with pytest.raises(rm.EncodeError) as exc:
        rm.encode_schedule(schedule)
    assert exc.value.field == field


def test_schedule_allows_is_local_minutes_half_open() -> None:
    schedule = HardwareSchedule(1, (ScheduleWindow(0b0011111, 420, 1080),))
    assert rm.schedule_allows(schedule, 0, 420)
    assert rm.schedule_allows(schedule, 4, 1079)
    assert not rm.schedule_allows(schedule, 4, 1080)
    assert not rm.schedule_allows(schedule, 5, 600)
    assert not rm.schedule_allows(schedule, 0, 419)
