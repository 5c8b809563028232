"""Local dates and weekly schedules in the site's time zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from gateway.domain import ScheduleInterval, WeeklySchedule
from gateway.rules import LockRef, RulesConfig, RulesEngine, explain

CFG = RulesConfig()
WEEKDAYS = WeeklySchedule(
    intervals=(ScheduleInterval(days=(0, 1, 2, 3, 4), start=time(6), end=time(18)),)
)


def test_a_local_day_ends_at_local_midnight_on_both_sides_of_a_dst_change() -> None:
    # Stockholm: UTC+1 until 2026-03-29 02:00, then UTC+2; back to UTC+1 on 2026-10-25.
    assert CFG.day_end(date(2026, 3, 28)) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert CFG.day_end(date(2026, 3, 29)) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert CFG.day_start(date(2026, 10, 25)) == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert CFG.day_end(date(2026, 10, 25)) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)


def test_a_weekly_schedule_follows_local_wall_clock_time_across_dst() -> None:
    tz = CFG.timezone
    # Friday before the change: 06:00 local is 05:00 UTC
    assert not WEEKDAYS.allows(datetime(2026, 3, 27, 4, 59, tzinfo=UTC), tz)
    assert WEEKDAYS.allows(datetime(2026, 3, 27, 5, 0, tzinfo=UTC), tz)
    # Monday after: 06:00 local is 04:00 UTC
    assert not WEEKDAYS.allows(datetime(2026, 3, 30, 3, 59, tzinfo=UTC), tz)
    assert WEEKDAYS.allows(datetime(2026, 3, 30, 4, 0, tzinfo=UTC), tz)
    assert not WEEKDAYS.allows(datetime(2026, 3, 30, 16, 0, tzinfo=UTC), tz)  # 18:00 local
    # Saturday and Sunday never
    assert not WEEKDAYS.allows(datetime(2026, 3, 28, 10, 0, tzinfo=UTC), tz)


def test_explain_uses_the_schedule_at_the_asked_time() -> None:
    from gateway.commands import CommandContext, handle
    from tests import sample

    now = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
    engine = RulesEngine(CFG)
    engine.rebuild(now)
    for cmd in sample.sample_commands(date(2026, 3, 27)):
        ctx = CommandContext(engine.facts, now, "t", CFG)
        handle(ctx, cmd)
        engine.apply_many(ctx.puts, now)
    lock = LockRef.parse(sample.CYL_SIGNAL[0])
    # Björn's subcontractor key has the weekday 06-18 schedule on the signal hut
    monday_early = explain(
        engine, sample.KEY_BJORN_SUB, lock, datetime(2026, 3, 30, 3, 30, tzinfo=UTC)
    )
    assert monday_early.can_open is False
    assert any(
        c.reason is not None and c.reason.value == "OUTSIDE_SCHEDULE"
        for c in monday_early.lock_checks
    )
    monday_morning = explain(
        engine, sample.KEY_BJORN_SUB, lock, datetime(2026, 3, 30, 4, 30, tzinfo=UTC)
    )
    assert monday_morning.can_open is True
