from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain import (
    AccessApplication,
    ApplicationStatus,
    Assignment,
    Conflict,
    DomainError,
    NotFound,
)
from gateway.reports import (
    add_working_days,
    due_at,
    is_working_day,
    pending_applications,
    swedish_holidays,
    working_days_between,
)

TZ = ZoneInfo("Europe/Stockholm")
SE = swedish_holidays()


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


# --------------------------------------------------------------------------------- calendar


def test_midsummer_christmas_and_new_years_eve_are_not_working_days() -> None:
    # The library lists the three eves only in its de_facto category; the calendar asks for it.
    plain = holidays.country_holidays("SE")
    for eve in (date(2026, 6, 19), date(2026, 12, 24), date(2026, 12, 31)):
        assert eve.weekday() < 5
        assert eve not in plain
        assert eve in SE
        assert not is_working_day(eve, SE)
    assert is_working_day(date(2026, 6, 18), SE)


def test_calendar_without_sundays() -> None:
    assert date(2026, 3, 1) not in SE  # an ordinary Sunday
    assert not is_working_day(date(2026, 3, 1), SE)  # still no working day


def test_add_working_days_basics() -> None:
    friday = date(2026, 3, 6)
    assert add_working_days(friday, 0, SE) == friday
    assert add_working_days(friday, 1, SE) == date(2026, 3, 9)
    assert add_working_days(date(2026, 3, 7), 1, SE) == date(2026, 3, 9)  # from a Saturday
    assert add_working_days(friday, 5, SE) == date(2026, 3, 13)
    with pytest.raises(DomainError) as info:
        add_working_days(friday, -1, SE)
    assert info.value.field == "days"


def test_working_days_between() -> None:
    friday, monday = date(2026, 3, 6), date(2026, 3, 9)
    assert working_days_between(friday, friday, SE) == 0
    assert working_days_between(friday, monday, SE) == 1
    assert working_days_between(monday, friday, SE) == -1
    assert working_days_between(friday, date(2026, 3, 8), SE) == 0


# --------------------------------------------------------------------------------- due_at


@pytest.mark.parametrize(
    ("submitted", "expedited", "due"),
    [
        # Ordinary fortnight: Monday 2 March 2026 + 10 working days = Monday 16 March.
        (local(2026, 3, 2, 9), False, local(2026, 3, 17)),
        # Easter 2026: Good Friday 3 April and Easter Monday 6 April are holidays.
        (local(2026, 4, 1, 10), True, local(2026, 4, 9)),
        (local(2026, 3, 30, 10), False, local(2026, 4, 16)),
        # Midsummer Eve, Friday 19 June 2026.
        (local(2026, 6, 17, 15), True, local(2026, 6, 24)),
        # Christmas Eve, Christmas, New Year's Eve, New Year's Day, Epiphany (Wed 6 Jan 2027).
        (local(2026, 12, 23, 11), False, local(2027, 1, 14)),
        (local(2026, 12, 23, 11), True, local(2026, 12, 31)),
        # Spring forward on 29 March 2026: submitted in winter time, due in summer time.
        (local(2026, 3, 26, 12), True, local(2026, 4, 1)),
        # Fall back on 25 October 2026.
        (local(2026, 10, 22, 12), True, local(2026, 10, 28)),
        # Submitted on a Saturday: counting starts on Monday.
        (local(2026, 3, 7, 12), True, local(2026, 3, 12)),
    ],
)
def test_due_at(submitted: datetime, expedited: bool, due: datetime) -> None:
    result = due_at(submitted, expedited=expedited, tz=TZ)
    assert result == due
    assert result.tzinfo is UTC


def test_due_at_dst_offsets_in_utc() -> None:
    assert due_at(local(2026, 3, 26, 12), expedited=True, tz=TZ) == datetime(
        2026, 3, 31, 22, 0, tzinfo=UTC
    )
    assert due_at(local(2026, 10, 22, 12), expedited=True, tz=TZ) == datetime(
        2026, 10, 27, 23, 0, tzinfo=UTC
    )


def test_due_at_counts_from_the_local_submission_day() -> None:
    # 23:30 UTC on Monday is 00:30 on Tuesday in Stockholm.
    submitted = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    assert due_at(submitted, expedited=True, tz=TZ) == local(2026, 3, 7)
    assert due_at(submitted, expedited=True, tz=ZoneInfo("UTC")) == datetime(2026, 3, 6, tzinfo=UTC)


def test_due_at_custom_handling_times() -> None:
    submitted = local(2026, 3, 2, 9)
    assert due_at(submitted, expedited=False, tz=TZ, working_days=1) == local(2026, 3, 4)
    assert due_at(submitted, expedited=True, tz=TZ, expedited_working_days=5) == local(2026, 3, 10)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"submitted_at": datetime(2026, 3, 2, 9)}, "submitted_at"),
        ({"working_days": 0}, "working_days"),
        ({"expedited_working_days": 0}, "expedited_working_days"),
    ],
)
def test_due_at_refuses_bad_input(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"submitted_at": local(2026, 3, 2, 9), "expedited": False, "tz": TZ}
    args.update(kwargs)
    with pytest.raises(DomainError) as info:
        due_at(**args)  # type: ignore[arg-type]
    assert info.value.field == field


instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2079, 12, 31), timezones=st.just(UTC)
)


@given(submitted=instants, n=st.integers(min_value=1, max_value=40), expedited=st.booleans())
def test_due_at_is_the_end_of_the_nth_working_day(
    submitted: datetime, n: int, expedited: bool
) -> None:
    due = due_at(submitted, expedited=expedited, tz=TZ, working_days=n, expedited_working_days=n)
    local_due = due.astimezone(TZ)
    assert local_due.time() == time(0, 0)
    last_day = local_due.date() - timedelta(days=1)
    assert is_working_day(last_day, SE)
    assert due > submitted
    assert working_days_between(submitted.astimezone(TZ).date(), last_day, SE) == n


@given(submitted=instants, n=st.integers(min_value=1, max_value=30))
def test_due_at_is_monotone_in_working_days(submitted: datetime, n: int) -> None:
    a = due_at(submitted, expedited=False, tz=TZ, working_days=n)
    b = due_at(submitted, expedited=False, tz=TZ, working_days=n + 1)
    assert a < b
    assert due_at(submitted, expedited=True, tz=TZ) < due_at(submitted, expedited=False, tz=TZ)


@given(start=st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 1, 1)))
def test_a_calendar_with_sundays_gives_the_same_working_days(start: date) -> None:
    with_sundays = holidays.country_holidays(
        "SE", categories=("public", "de_facto"), include_sundays=True
    )
    assert add_working_days(start, 10, with_sundays) == add_working_days(start, 10, SE)


# --------------------------------------------------------------------------------- pending


def assignment(aid: str, name: str) -> Assignment:
    return Assignment(
        id=aid,
        name=name,
        main_contractor="556036-0793",
        project_manager="Per Persson",
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
    )


def application(
    aid: str,
    revision: int,
    status: ApplicationStatus,
    submitted: datetime,
    expedited: bool = False,
) -> AccessApplication:
    decided = status in (ApplicationStatus.APPROVED, ApplicationStatus.REJECTED)
    return AccessApplication(
        assignment_id=aid,
        revision=revision,
        status=status,
        expedited=expedited,
        submitted_at=submitted,
        decided_at=submitted + timedelta(days=1) if decided else None,
    )


ASSIGNMENTS = {
    a.id: a
    for a in (
        assignment("a-north", "Signal box north"),
        assignment("a-south", "Track south"),
        assignment("a-east", "Tunnel east"),
        assignment("a-west", "Bridge west"),
    )
}

S, A, R = ApplicationStatus.SUBMITTED, ApplicationStatus.APPROVED, ApplicationStatus.REJECTED


def test_only_latest_submitted_revisions_most_urgent_first() -> None:
    apps = [
        application("a-north", 1, A, local(2026, 2, 2, 9)),
        application("a-north", 2, S, local(2026, 3, 2, 9)),  # due 17 March
        application("a-south", 1, S, local(2026, 2, 2, 9)),  # superseded by revision 2
        application("a-south", 2, R, local(2026, 2, 20, 9)),
        application("a-east", 3, S, local(2026, 3, 4, 9), expedited=True),  # due 10 March
        application("a-east", 2, S, local(2026, 3, 3, 9)),  # older revision
        application("a-west", 1, S, local(2026, 2, 27, 9)),  # due 14 March (end of 13th)
    ]
    now = local(2026, 3, 10, 12)
    result = pending_applications(apps, ASSIGNMENTS, now=now, tz=TZ)
    assert [(d.assignment_id, d.revision) for d in result] == [
        ("a-east", 3),
        ("a-west", 1),
        ("a-north", 2),
    ]
    east, west, north = result
    assert east.expedited
    assert east.assignment_name == "Tunnel east"
    assert east.status == "submitted"
    assert east.due_at == local(2026, 3, 10)
    assert east.overdue
    assert east.working_days_left == -1  # due at the end of Monday 9 March; today is Tuesday
    assert west.due_at == local(2026, 3, 14)
    assert not west.overdue
    assert west.working_days_left == 3
    assert north.due_at == local(2026, 3, 17)
    assert north.working_days_left == 4
    assert north.submitted_at == local(2026, 3, 2, 9)


def test_overdue_exactly_at_the_due_instant_and_days_left() -> None:
    apps = [application("a-north", 1, S, local(2026, 3, 2, 9))]  # due end of Monday 16 March

    def one(now: datetime) -> tuple[bool, int]:
        (due,) = pending_applications(apps, ASSIGNMENTS, now=now, tz=TZ)
        return due.overdue, due.working_days_left

    assert one(local(2026, 3, 16, 23, 59)) == (False, 0)
    assert one(local(2026, 3, 17)) == (True, -1)
    assert one(local(2026, 3, 13, 12)) == (False, 1)
    assert one(local(2026, 3, 2, 9)) == (False, 10)


def test_weekend_after_a_friday_deadline_is_overdue_with_no_days_lost() -> None:
    apps = [application("a-north", 1, S, local(2026, 3, 10, 9), expedited=True)]  # due Fri 13
    (due,) = pending_applications(apps, ASSIGNMENTS, now=local(2026, 3, 14, 10), tz=TZ)
    assert due.overdue
    assert due.working_days_left == 0
    (due,) = pending_applications(apps, ASSIGNMENTS, now=local(2026, 3, 16, 10), tz=TZ)
    assert due.overdue
    assert due.working_days_left == -1


def test_custom_handling_times_apply() -> None:
    apps = [application("a-north", 1, S, local(2026, 3, 2, 9))]
    now = local(2026, 3, 2, 10)
    (due,) = pending_applications(apps, ASSIGNMENTS, now=now, tz=TZ, working_days=2)
    assert due.due_at == local(2026, 3, 5)


def test_unknown_assignment_and_duplicate_revisions() -> None:
    now = local(2026, 3, 2, 10)
    with pytest.raises(NotFound) as missing:
        pending_applications([application("a-x", 1, S, now)], ASSIGNMENTS, now=now, tz=TZ)
    assert missing.value.field == "assignment_id"
    twice = [application("a-north", 1, S, now), application("a-north", 1, A, now)]
    with pytest.raises(Conflict, match="revision 1 twice"):
        pending_applications(twice, ASSIGNMENTS, now=now, tz=TZ)
    with pytest.raises(DomainError) as naive:
        pending_applications([], ASSIGNMENTS, now=datetime(2026, 3, 2), tz=TZ)
    assert naive.value.field == "now"


def test_nothing_pending() -> None:
    apps = [application("a-north", 1, A, local(2026, 3, 2, 9))]
    assert pending_applications(apps, ASSIGNMENTS, now=local(2026, 3, 3), tz=TZ) == []
