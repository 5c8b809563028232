"""Hypothesis strategies of allow-lists a UHPPOTE controller can hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from drivers.base import AllowEntry, HardwareSchedule, ScheduleWindow

BASE = datetime(2024, 3, 1, tzinfo=UTC)


@st.composite
def windows(draw: st.DrawFn) -> ScheduleWindow:
    start = draw(st.integers(0, 1439))
    end = draw(st.integers(start + 1, 1440))
    return ScheduleWindow(draw(st.integers(1, 127)), start, end)


@st.composite
def schedule_sets(draw: st.DrawFn) -> list[HardwareSchedule]:
    count = draw(st.integers(0, 3))
    return [
        HardwareSchedule(i + 1, tuple(draw(st.lists(windows(), min_size=1, max_size=5))))
        for i in range(count)
    ]


@st.composite
def instants(draw: st.DrawFn) -> datetime | None:
    if draw(st.booleans()):
        return None
    return BASE + timedelta(hours=draw(st.integers(0, 24 * 60)))


@st.composite
def allow_lists(draw: st.DrawFn, schedules: list[HardwareSchedule]) -> list[AllowEntry]:
    ids = [0] + [s.schedule_id for s in schedules]
    out: list[AllowEntry] = []
    for credential in draw(st.lists(st.integers(1, 25), max_size=12, unique=True)):
        pin = draw(st.sampled_from([0, 0, 1234]))
        for _ in range(draw(st.integers(1, 2))):
            start = draw(instants())
            end = draw(instants())
            if start and end and end < start:
                start, end = end, start
            out.append(
                AllowEntry(
                    credential,
                    draw(st.integers(0, 15)),
                    start,
                    end,
                    draw(st.sampled_from(ids)),
                    pin,
                )
            )
    return out
