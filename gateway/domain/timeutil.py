"""Time values of the domain: aware UTC instants, half-open windows and weekly schedules.

All instants are timezone-aware and kept in UTC. Calendar dates (an ID06 card valid until a
day, an application entry from one day to another) are turned into instants in the *site*
time zone: a date range ``[from, until]`` covers from the start of ``from`` to the end of
``until`` local time, across daylight-saving changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

DEFAULT_TIMEZONE = "Europe/Stockholm"


EARLIEST = datetime.min.replace(tzinfo=UTC)
"""The first instant the calendar can hold (0001-01-01T00:00:00Z)."""
LATEST = datetime.max.replace(tzinfo=UTC)
"""The last instant the calendar can hold (9999-12-31T23:59:59.999999Z)."""


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a time zone (for example 2026-11-23T08:00:00+01:00 or ...Z)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            "lies outside the calendar once converted to UTC (years 0001 to 9999)"
        ) from None


_ISO_INSTANT = re.compile(r"\s*\d{4}-\d{2}-\d{2}T")
_ISO_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")


def _iso_instant(value: object) -> object:
    """Only an ISO 8601 string (or a datetime, from code) may become an instant: pydantic
    would otherwise read numbers and digit strings as Unix timestamps."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_INSTANT.match(value)):
        return value
    raise ValueError(
        "must be an ISO 8601 date and time with a time zone, as a string "
        "(for example 2026-11-23T08:00:00Z)"
    )


def _iso_date(value: object) -> object:
    """Only a ``YYYY-MM-DD`` string (or a date, from code) may become a date."""
    if (isinstance(value, date) and not isinstance(value, datetime)) or (
        isinstance(value, str) and _ISO_DATE.fullmatch(value)
    ):
        return value
    raise ValueError("must be a date as an ISO 8601 string YYYY-MM-DD (for example 2026-11-23)")


UtcDateTime = Annotated[datetime, BeforeValidator(_iso_instant), AfterValidator(_aware_utc)]
"""A timezone-aware instant, converted to UTC. Only ISO 8601 strings are read (no Unix
timestamps); naive datetimes and instants beyond the calendar in UTC are refused."""

IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar date, read only from ``YYYY-MM-DD`` (no timestamps, no date-times)."""


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` starts in ``tz``; :data:`EARLIEST` or :data:`LATEST`
    where that instant lies beyond the calendar (the first and last local days)."""
    try:
        return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)
    except OverflowError:
        return EARLIEST if day.year == date.min.year else LATEST


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` ends in ``tz`` (start of the next day, exclusive);
    :data:`LATEST` for the last day of the calendar."""
    if day == date.max:
        return LATEST
    return start_of_day(day + timedelta(days=1), tz)


@dataclass(frozen=True, slots=True)
class Window:
    """Half-open interval ``[start, end)`` of UTC instants; ``None`` means unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, at: datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)

    def is_empty(self) -> bool:
        return self.start is not None and self.end is not None and self.start >= self.end

    def intersect(self, other: Window) -> Window:
        start = (
            self.start
            if other.start is None
            else (other.start if self.start is None else max(self.start, other.start))
        )
        end = (
            self.end
            if other.end is None
            else (other.end if self.end is None else min(self.end, other.end))
        )
        return Window(start, end)

    def inside(self, other: Window) -> bool:
        """True when this window lies entirely within ``other``."""
        if self.is_empty():
            return True
        lo_ok = other.start is None or (self.start is not None and self.start >= other.start)
        hi_ok = other.end is None or (self.end is not None and self.end <= other.end)
        return lo_ok and hi_ok

    def ended_by(self, at: datetime) -> bool:
        return self.end is not None and self.end <= at

    def not_started_at(self, at: datetime) -> bool:
        return self.start is not None and at < self.start

    def as_json(self) -> dict[str, str | None]:
        return {
            "from": self.start.isoformat() if self.start else None,
            "until": self.end.isoformat() if self.end else None,
        }


LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"


def _local_time_schema(schema: dict[str, JsonValue]) -> None:
    """JSON Schema of a local wall-clock time: a pattern, not the ``time`` format (which
    requires an offset)."""
    schema.pop("format", None)
    schema["pattern"] = LOCAL_TIME_PATTERN


class ScheduleInterval(BaseModel):
    """One weekly interval: on each of ``days`` (0 = Monday .. 6 = Sunday), local time
    ``start`` (inclusive) to ``end`` (exclusive). ``end`` of 00:00 means until midnight."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    days: tuple[int, ...] = Field(
        min_length=1,
        max_length=7,
        json_schema_extra={
            "uniqueItems": True,
            "items": {"type": "integer", "minimum": 0, "maximum": 6},
        },
    )
    """Weekdays, each once: 0 is Monday, 6 is Sunday."""
    start: time = Field(json_schema_extra=_local_time_schema)
    """Local wall-clock time it starts (inclusive), `HH:MM` or `HH:MM:SS`, no time zone."""
    end: time = Field(json_schema_extra=_local_time_schema)
    """Local wall-clock time it ends (exclusive), after `start`; `00:00` means midnight."""

    @field_validator("days")
    @classmethod
    def _days(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        for d in v:
            if not 0 <= d <= 6:
                raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        if len(set(v)) != len(v):
            raise ValueError("a weekday is listed twice")
        return tuple(sorted(v))

    @model_validator(mode="after")
    def _order(self) -> ScheduleInterval:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("schedule times are local wall-clock times without a time zone")
        if self.end != time(0, 0) and self.end <= self.start:
            raise ValueError("end must be after start (00:00 as end means midnight)")
        return self

    def allows(self, local: datetime) -> bool:
        if local.weekday() not in self.days:
            return False
        t = local.time().replace(tzinfo=None)
        return self.start <= t and (self.end == time(0, 0) or t < self.end)


class WeeklySchedule(BaseModel):
    """A weekly schedule evaluated in the site's time zone; access is allowed inside any
    of its intervals."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    intervals: tuple[ScheduleInterval, ...] = Field(min_length=1, max_length=16)
    """Access is allowed inside any of these intervals (1 to 16)."""

    def allows(self, at: datetime, tz: ZoneInfo) -> bool:
        local = at.astimezone(tz)
        return any(iv.allows(local) for iv in self.intervals)

    def key(self) -> tuple[tuple[tuple[int, ...], str, str], ...]:
        """A canonical, hashable form used to deduplicate schedules."""
        return tuple(
            sorted((iv.days, iv.start.isoformat(), iv.end.isoformat()) for iv in self.intervals)
        )
