"""Due dates of access applications awaiting a decision.

The normal handling time from a submitted access application ("tillträdesansökan") to
activated keys is about 10 working days; expedited handling ("skyndsam hantering") is shorter
(3 working days by default). An application is due at the *end* of the Nth Swedish working day
after the day it was submitted (local midnight in the site time zone), and overdue from then.

Working days
    Monday to Friday, except Swedish public holidays and the three days that Swedish law
    treats like them: Midsummer Eve, Christmas Eve and New Year's Eve (the Annual Leave Act,
    SFS 1977:480 §7, equates them with Sundays, and practically no office works on them). The
    ``holidays`` library lists these eves only in its ``de_facto`` category, not among the
    default public holidays, so :func:`swedish_holidays` asks for both categories. Older
    versions of the library also count every Sunday as a Swedish holiday by default; the
    calendar is built without Sundays and weekends are recognised by weekday, so either form
    of calendar gives the same working days.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from holidays import HolidayBase
from holidays.countries.sweden import Sweden

from gateway.domain import (
    AccessApplication,
    ApplicationStatus,
    Assignment,
    Conflict,
    DomainError,
    NotFound,
)
from gateway.domain.timeutil import end_of_day

HOLIDAY_CATEGORIES = ("public", "de_facto")
"""The ``holidays`` categories that are not working days in Sweden (see the module docstring)."""


@cache
def swedish_holidays() -> HolidayBase:
    """Swedish public holidays plus Midsummer Eve, Christmas Eve and New Year's Eve, without
    Sundays (years are filled in as they are looked up)."""
    categories = tuple(c for c in HOLIDAY_CATEGORIES if c in Sweden.supported_categories)
    return Sweden(categories=categories, include_sundays=False)


def is_working_day(day: date, country_holidays: Container[date]) -> bool:
    """True for Monday to Friday when ``day`` is not in ``country_holidays``."""
    return day.weekday() < 5 and day not in country_holidays


def add_working_days(start: date, days: int, country_holidays: Container[date]) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself when ``days`` is 0).

    ``start`` need not be a working day: counting begins on the day after it. Weekends and
    the days in ``country_holidays`` (e.g. :func:`swedish_holidays`) are skipped.
    """
    if days < 0:
        raise DomainError("must not be negative", field="days")
    day = start
    left = days
    while left:
        day += timedelta(days=1)
        if is_working_day(day, country_holidays):
            left -= 1
    return day


def working_days_between(first: date, last: date, country_holidays: Container[date]) -> int:
    """Signed count of working days after ``first`` up to and including ``last``; negative
    (the working days after ``last`` up to and including ``first``) when ``last`` is earlier."""
    if last < first:
        return -working_days_between(last, first, country_holidays)
    return sum(
        is_working_day(first + timedelta(days=n), country_holidays)
        for n in range(1, (last - first).days + 1)
    )


def _require_aware(value: datetime, field: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise DomainError("must carry a time zone", field=field)


def _require_positive(value: int, field: str) -> None:
    if value < 1:
        raise DomainError("must be at least 1 working day", field=field)


def due_day(
    submitted_at: datetime,
    *,
    expedited: bool,
    tz: ZoneInfo,
    working_days: int = 10,
    expedited_working_days: int = 3,
) -> date:
    """The local day by whose end an application submitted at ``submitted_at`` is due: the
    ``working_days``-th (``expedited_working_days``-th when ``expedited``) Swedish working day
    after the local day of submission in ``tz``."""
    _require_aware(submitted_at, "submitted_at")
    _require_positive(working_days, "working_days")
    _require_positive(expedited_working_days, "expedited_working_days")
    count = expedited_working_days if expedited else working_days
    return add_working_days(submitted_at.astimezone(tz).date(), count, swedish_holidays())


def due_at(
    submitted_at: datetime,
    *,
    expedited: bool,
    tz: ZoneInfo,
    working_days: int = 10,
    expedited_working_days: int = 3,
) -> datetime:
    """When an application submitted at ``submitted_at`` is due, in UTC: the end (local
    midnight in ``tz``) of its :func:`due_day`."""
    day = due_day(
        submitted_at,
        expedited=expedited,
        tz=tz,
        working_days=working_days,
        expedited_working_days=expedited_working_days,
    )
    return end_of_day(day, tz)


@dataclass(frozen=True)
class ApplicationDue:
    """A submitted application revision awaiting a decision, with its deadline.

    ``due_at`` is in UTC; ``overdue`` is true from ``due_at`` on. ``working_days_left`` counts
    the working days after today (local) up to and including the due day: 0 when due today;
    once overdue it is minus the working days gone by since the due day (0 on the weekend
    right after a Friday deadline).
    """

    assignment_id: str
    assignment_name: str
    revision: int
    status: str
    expedited: bool
    submitted_at: datetime
    due_at: datetime
    overdue: bool
    working_days_left: int


def pending_applications(
    applications: Iterable[AccessApplication],
    assignments: Mapping[str, Assignment],
    *,
    now: datetime,
    tz: ZoneInfo,
    working_days: int = 10,
    expedited_working_days: int = 3,
) -> list[ApplicationDue]:
    """The applications awaiting a decision, most urgent first.

    Only ``submitted`` revisions that are the latest revision of their assignment count (a
    newer revision of any status supersedes an older submission). Expedited ones come first,
    then by due date, then by assignment id. ``assignments`` maps assignment id to its
    :class:`~gateway.domain.Assignment`; an application whose assignment is missing raises
    :class:`~gateway.domain.NotFound`, the same revision given twice
    :class:`~gateway.domain.Conflict`.
    """
    _require_aware(now, "now")
    revisions: dict[tuple[str, int], AccessApplication] = {}
    latest: dict[str, int] = {}
    for app in applications:
        key = (app.assignment_id, app.revision)
        if key in revisions:
            raise Conflict(
                f"assignment {app.assignment_id} has revision {app.revision} twice",
                field="applications",
            )
        revisions[key] = app
        latest[app.assignment_id] = max(latest.get(app.assignment_id, 0), app.revision)

    today = now.astimezone(tz).date()
    calendar = swedish_holidays()
    result: list[ApplicationDue] = []
    for app in revisions.values():
        if (
            app.status is not ApplicationStatus.SUBMITTED
            or app.revision != latest[app.assignment_id]
        ):
            continue
        assignment = assignments.get(app.assignment_id)
        if assignment is None:
            raise NotFound(
                f"assignment {app.assignment_id} of revision {app.revision} is not known",
                field="assignment_id",
            )
        last_day = due_day(
            app.submitted_at,
            expedited=app.expedited,
            tz=tz,
            working_days=working_days,
            expedited_working_days=expedited_working_days,
        )
        due = end_of_day(last_day, tz)
        result.append(
            ApplicationDue(
                assignment_id=app.assignment_id,
                assignment_name=assignment.name,
                revision=app.revision,
                status=app.status.value,
                expedited=app.expedited,
                submitted_at=app.submitted_at,
                due_at=due,
                overdue=now >= due,
                working_days_left=working_days_between(today, last_day, calendar),
            )
        )
    result.sort(key=lambda d: (not d.expedited, d.due_at, d.assignment_id))
    return result
