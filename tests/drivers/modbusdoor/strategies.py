"""Hypothesis strategies for the register map's values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow
from drivers.modbusdoor import registers as rm

PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))

registers16 = st.integers(min_value=0, max_value=rm.U16_MAX)


def instants(low: int = 0, high: int = rm.U32_MAX - 1) -> st.SearchStrategy[datetime]:
    """Whole-second aware instants in the u32 range, in assorted UTC offsets."""
    zones = st.sampled_from(
        [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-7, minutes=-30))]
    )
    return st.builds(
        lambda s, tz: datetime.fromtimestamp(s, UTC).astimezone(tz),
        st.integers(min_value=low, max_value=high),
        zones,
    )


entries = st.builds(
    AllowEntry,
    credential=st.integers(min_value=1, max_value=rm.U32_MAX),
    doors_mask=st.integers(min_value=1, max_value=rm.U16_MAX),
    valid_from=st.none() | instants(low=1),
    valid_until=st.none() | instants(),
    schedule_id=st.integers(min_value=0, max_value=rm.MAX_SCHEDULE_ID),
)


@st.composite
def windows(draw: st.DrawFn) -> ScheduleWindow:
    start = draw(st.integers(min_value=0, max_value=rm.MINUTES_PER_DAY - 1))
    end = draw(st.integers(min_value=start + 1, max_value=rm.MINUTES_PER_DAY))
    return ScheduleWindow(draw(st.integers(min_value=1, max_value=0x7F)), start, end)


schedules = st.builds(
    HardwareSchedule,
    schedule_id=st.integers(min_value=1, max_value=rm.MAX_SCHEDULE_ID),
    windows=st.lists(windows(), max_size=rm.MAX_WINDOWS).map(tuple),
)


@st.composite
def event_records(draw: st.DrawFn) -> rm.EventRecord:
    kind = draw(st.sampled_from(list(rm.EventKindCode)))
    if kind is rm.EventKindCode.DENIED:
        reason = draw(st.sampled_from([r for r in rm.DenyReason if r is not rm.DenyReason.NONE]))
    else:
        reason = rm.DenyReason.NONE
    with_credential = kind in (rm.EventKindCode.GRANTED, rm.EventKindCode.DENIED)
    return rm.EventRecord(
        sequence=draw(st.integers(min_value=1, max_value=rm.U32_MAX)),
        kind=kind,
        reason=reason,
        door=draw(st.integers(min_value=1, max_value=rm.MAX_DOORS)),
        credential=draw(st.integers(min_value=0, max_value=rm.U32_MAX)) if with_credential else 0,
        at=draw(st.integers(min_value=0, max_value=rm.U32_MAX)),
    )


identities = st.builds(
    rm.Identity,
    controller_id=st.text(PRINTABLE, min_size=1, max_size=rm.CONTROLLER_ID_BYTES),
    doors=st.integers(min_value=1, max_value=rm.MAX_DOORS),
    capacity=st.integers(min_value=1, max_value=rm.MAX_CAPACITY),
    schedule_slots=st.integers(min_value=0, max_value=rm.MAX_SCHEDULE_SLOTS),
    event_capacity=st.integers(min_value=1, max_value=rm.U16_MAX),
    event_window=st.integers(min_value=1, max_value=rm.MAX_EVENT_WINDOW),
    generation=st.integers(min_value=0, max_value=rm.U32_MAX),
    firmware=st.text(PRINTABLE, max_size=rm.FIRMWARE_BYTES),
)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[list[int]]) -> list[int]:
    """A valid register list with a few registers replaced by arbitrary values."""
    regs = list(draw(valid))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        regs[draw(st.integers(min_value=0, max_value=len(regs) - 1))] = draw(registers16)
    return regs


def garbage(valid: st.SearchStrategy[list[int]], size: int) -> st.SearchStrategy[list[int]]:
    """Register lists of the right size: random ones and lightly corrupted valid ones."""
    return st.lists(registers16, min_size=size, max_size=size) | mutated(valid)
