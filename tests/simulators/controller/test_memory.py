"""ControllerMemory: commits, decisions, doors and the event FIFO, without any transport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow
from drivers.modbusdoor import registers as rm
from drivers.modbusdoor.layout import encode_entries, encode_schedules, full_layout
from simulators.controller import ControllerMemory, DeviceBusy, WriteRefused
from simulators.controller.memory import DenyReason

T0 = datetime(2026, 7, 6, 5, 30, tzinfo=UTC)  # Monday 07:30 in Stockholm (summer time)
EARLY = HardwareSchedule(1, (ScheduleWindow(0b0000001, 7 * 60, 8 * 60),))


def _memory(**kw: object) -> ControllerMemory:
    m = ControllerMemory(controller_id="mem-1", doors=4, capacity=10, schedule_slots=2, **kw)  # type: ignore[arg-type]
    m.set_time(T0.timestamp(), frozen=True)
    return m


def _stage(
    m: ControllerMemory,
    entries: list[AllowEntry],
    schedules: list[HardwareSchedule] = (),  # type: ignore[assignment]
    *,
    checksum: int | None = None,
    count: int | None = None,
) -> None:
    layout = full_layout(encode_schedules(schedules), encode_entries(entries))
    flat_s = [v for r in layout.schedules for v in r]
    flat_e = [v for r in layout.rows for v in r]
    m.staging_schedules[: len(flat_s)] = flat_s
    m.staging_entries[: len(flat_e)] = flat_e
    m.staging_schedule_count = len(layout.schedules)
    m.staging_entry_count = len(layout.rows) if count is None else count
    m.expected_checksum = layout.checksum if checksum is None else checksum


def test_commit_copies_in_a_verified_list() -> None:
    m = _memory()
    _stage(m, [AllowEntry(credential=5, doors_mask=1, schedule_id=1)], [EARLY])
    m.command(rm.Command.COMMIT, tag=77)
    status = m.status()
    assert status.commit is rm.CommitStatus.OK
    assert status.command_tag == 77
    assert status.active_entries == 1
    assert status.active_checksum == m.expected_checksum == status.staging_checksum
    assert m.present(5, 1).granted


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ({"checksum": 1234}, rm.CommitStatus.CHECKSUM_ERROR),
        ({"count": 11}, rm.CommitStatus.CAPACITY_EXCEEDED),
    ],
)
def test_refused_commits_keep_the_active_list(
    stage: dict[str, int], expected: rm.CommitStatus
) -> None:
    m = _memory()
    _stage(m, [AllowEntry(credential=5, doors_mask=1)])
    m.command(rm.Command.COMMIT, tag=1)
    before = m.active_checksum
    _stage(m, [AllowEntry(credential=6, doors_mask=1)], **stage)  # type: ignore[arg-type]
    m.command(rm.Command.COMMIT, tag=2)
    assert m.status().commit is expected
    assert m.active_checksum == before
    assert m.present(5, 1).granted
    assert not m.present(6, 1).granted


@pytest.mark.parametrize(
    "entry",
    [
        AllowEntry(credential=5, doors_mask=0b10000),  # door 5 of a 4-door controller
        AllowEntry(credential=5, doors_mask=1, schedule_id=9),  # no such schedule
    ],
)
def test_invalid_entries_are_refused_at_commit(entry: AllowEntry) -> None:
    m = _memory()
    _stage(m, [entry])
    m.command(rm.Command.COMMIT, tag=3)
    assert m.status().commit is rm.CommitStatus.INVALID_ENTRY
    assert m.active_entries == []


def test_garbage_in_staging_is_an_invalid_entry() -> None:
    m = _memory()
    m.staging_entries[:8] = [0] * 8  # credential 0, mask 0
    m.staging_entry_count = 1
    m.expected_checksum = rm.flat_checksum([], 0, m.staging_entries, 1)
    m.command(rm.Command.COMMIT, tag=1)
    assert m.status().commit is rm.CommitStatus.INVALID_ENTRY


def test_a_busy_commit_completes_later_and_blocks_commands() -> None:
    m = _memory()
    m.faults.commit_busy_s = 2.0
    _stage(m, [AllowEntry(credential=5, doors_mask=1)])
    m.command(rm.Command.COMMIT, tag=4)
    assert m.status().commit is rm.CommitStatus.BUSY
    assert m.busy
    with pytest.raises(DeviceBusy):
        m.command(rm.Command.COPY_ACTIVE_TO_STAGING, tag=5)
    m.set_time(T0.timestamp() + 2.0, frozen=True)
    assert m.status().commit is rm.CommitStatus.OK
    assert not m.busy
    assert m.present(5, 1).granted


def test_copy_active_to_staging() -> None:
    m = _memory()
    _stage(m, [AllowEntry(credential=c, doors_mask=1) for c in (1, 2, 3)], [EARLY])
    m.command(rm.Command.COMMIT, tag=1)
    active = list(m.staging_entries[:24])
    m.staging_entries[:] = [0] * len(m.staging_entries)
    m.staging_entry_count = 0
    m.command(rm.Command.COPY_ACTIVE_TO_STAGING, tag=2)
    assert m.staging_entries[:24] == active
    assert m.staging_entry_count == 3
    assert m.staging_schedule_count == 1
    assert m.expected_checksum == m.active_checksum
    assert m.status().command_tag == 2
    m.command(rm.Command.COMMIT, tag=3)
    assert m.status().commit is rm.CommitStatus.OK


def test_unknown_command_is_refused() -> None:
    with pytest.raises(WriteRefused, match="COMMAND"):
        _memory().command(9, tag=1)


def test_schedules_are_evaluated_in_local_time_across_dst() -> None:
    m = _memory()
    _stage(m, [AllowEntry(credential=5, doors_mask=1, schedule_id=1)], [EARLY])
    m.command(rm.Command.COMMIT, tag=1)
    assert m.present(5, 1).granted  # 07:30 CEST, Monday
    winter = datetime(2026, 1, 5, 6, 30, tzinfo=UTC)  # Monday 07:30 CET
    m.set_time(winter.timestamp(), frozen=True)
    assert m.present(5, 1).granted
    m.set_time((winter - timedelta(hours=1)).timestamp(), frozen=True)  # 06:30 local
    assert m.present(5, 1).reason is DenyReason.OUTSIDE_SCHEDULE
    other = ControllerMemory(controller_id="utc", capacity=10, timezone="UTC")
    other.set_time(winter.timestamp(), frozen=True)  # 06:30 UTC
    other.staging_schedules[:25] = m.staging_schedules[:25]
    other.staging_entries[:8] = m.staging_entries[:8]
    other.staging_entry_count, other.staging_schedule_count = 1, 1
    other.expected_checksum = m.active_checksum
    other.command(rm.Command.COMMIT, tag=1)
    assert other.present(5, 1).reason is DenyReason.OUTSIDE_SCHEDULE


def test_doors_forced_held_open_and_pulse() -> None:
    m = _memory()
    m.set_door_open(1, True)
    assert m.doors[0].forced
    m.set_door_open(1, False)
    assert not m.doors[0].forced
    m.pulse(2)
    assert m.unlocked(2)
    m.set_door_open(2, True)
    assert not m.doors[1].forced
    m.set_time(T0.timestamp() + 29, frozen=True)
    assert not m.door(2).held_open
    m.set_time(T0.timestamp() + 30, frozen=True)
    assert m.door(2).held_open
    assert not m.unlocked(2)
    kinds = [(e.kind, e.door) for e in m.events]
    assert kinds == [
        (rm.EventKindCode.FORCED, 1),
        (rm.EventKindCode.PULSED, 2),
        (rm.EventKindCode.HELD_OPEN, 2),
    ]
    assert m.events[-1].at == int(T0.timestamp()) + 30
    m.set_door_mode(3, rm.DoorModeCode.LOCKDOWN)
    with pytest.raises(WriteRefused, match="lockdown"):
        m.pulse(3)
    m.set_door_mode(4, rm.DoorModeCode.UNLOCKED)
    m.set_door_open(4, True)
    m.set_time(T0.timestamp() + 3600, frozen=True)
    assert not m.door(4).forced
    assert not m.door(4).held_open  # held open by its mode, no alarm


def test_event_fifo_window_ack_and_overflow() -> None:
    m = _memory(event_capacity=5, event_window=2)
    for _ in range(7):
        m.present(99, 1)
    assert [e.sequence for e in m.events] == [3, 4, 5, 6, 7]
    header = m.event_header()
    assert (header.stored, header.oldest, header.newest, header.overflow) == (5, 3, 7, True)
    assert [r.sequence for r in m.event_records()] == [3, 4]
    m.read_after = 5
    assert [r.sequence for r in m.event_records()] == [6, 7]
    m.read_after = 7
    assert m.event_records() == []
    m.acknowledge(4)
    assert [e.sequence for e in m.events] == [5, 6, 7]
    assert not m.overflow
    with pytest.raises(WriteRefused, match="EVENT_ACK"):
        m.acknowledge(100)  # beyond the newest event: refused, nothing dropped
    assert [e.sequence for e in m.events] == [5, 6, 7]
    m.acknowledge(7)
    header = m.event_header()
    assert (header.stored, header.oldest, header.newest) == (0, 0, 7)


def test_power_loss() -> None:
    m = _memory()
    _stage(m, [AllowEntry(credential=5, doors_mask=1)])
    m.command(rm.Command.COMMIT, tag=1)
    m.set_door_mode(1, rm.DoorModeCode.UNLOCKED)
    m.present(5, 1)
    generation = m.generation
    assert m.power_loss() == generation + 1
    status = m.status()
    assert (status.commit, status.active_entries, status.active_checksum) == (
        rm.CommitStatus.IDLE,
        0,
        rm.EMPTY_CHECKSUM,
    )
    assert m.doors[0].mode is rm.DoorModeCode.LOCKED
    assert not m.events
    assert m.present(5, 1).sequence == 2  # sequence numbers survive
    assert m.now() == T0.timestamp()  # so does the clock


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"controller_id": ""}, "controller_id"),
        ({"controller_id": "a b"}, "controller_id"),
        ({"controller_id": "x" * 33}, "controller_id"),
        ({"controller_id": "c", "doors": 17}, "doors"),
        ({"controller_id": "c", "capacity": 0}, "capacity"),
        ({"controller_id": "c", "capacity": 7169}, "capacity"),
        ({"controller_id": "c", "event_window": 13}, "event_window"),
        ({"controller_id": "c", "timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_bad_configuration_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        ControllerMemory(**kwargs)  # type: ignore[arg-type]


def test_present_validates_its_arguments() -> None:
    m = _memory()
    with pytest.raises(ValueError, match="door"):
        m.present(1, 5)
    with pytest.raises(ValueError, match="credential"):
        m.present(0, 1)
    with pytest.raises(ValueError, match="credential"):
        m.present(True, 1)  # type: ignore[arg-type]


def test_commit_copies_and_leaves_staging_as_written() -> None:
    """As the spec says: COMMIT copies (staging keeps its content, also after a refusal),
    the staging checksum is 0 before the first commit, empty windows and duplicate entries
    are valid, and the commit block may be written in parts."""
    m = _memory()
    assert m.status().staging_checksum == 0
    entries = [
        AllowEntry(credential=5, doors_mask=1),
        AllowEntry(credential=5, doors_mask=1),  # a duplicate
        AllowEntry(credential=6, doors_mask=1, valid_from=T0, valid_until=T0),  # empty window
    ]
    _stage(m, entries, checksum=1)
    staged = list(m.staging_entries)
    m.command(rm.Command.COMMIT, tag=1)
    assert m.status().commit is rm.CommitStatus.CHECKSUM_ERROR
    assert m.status().staging_checksum != 0
    assert (m.staging_entries, m.staging_entry_count, m.expected_checksum) == (staged, 3, 1)
    m.expected_checksum = m.status().staging_checksum  # only this register written again
    m.command(rm.Command.COMMIT, tag=2)
    assert m.status().commit is rm.CommitStatus.OK
    assert m.staging_entries == staged
    assert m.active_entry_registers == staged[: 3 * rm.ENTRY_RECORD_REGISTERS]
    assert m.present(5, 1).granted
    assert m.present(6, 1).reason is rm.DenyReason.OUTSIDE_VALIDITY


def test_power_loss_volatility() -> None:
    m = _memory()
    _stage(m, [AllowEntry(credential=5, doors_mask=1)])
    m.command(rm.Command.COMMIT, tag=3)
    m.set_pulse_seconds(9)
    m.set_door_mode(2, rm.DoorModeCode.UNLOCKED)
    m.present(5, 1)
    clock, newest = m.now(), m.last_sequence
    m.power_loss()
    status = m.status()
    assert (status.commit, status.command_tag, status.staging_checksum) == (
        rm.CommitStatus.IDLE,
        0,
        0,
    )
    assert status.active_checksum == rm.EMPTY_CHECKSUM
    assert m.pulse_seconds == rm.DEFAULT_PULSE_SECONDS
    assert m.door(2).mode is rm.DoorModeCode.LOCKED
    assert not m.events
    assert m.now() == clock  # the clock is kept
    assert m.present(5, 1).sequence == newest + 1  # so is the event sequence
