"""Settings of the rules engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gateway.domain.timeutil import DEFAULT_TIMEZONE, LATEST, Window, start_of_day


@dataclass(frozen=True)
class RulesConfig:
    """Site-wide settings the derivation depends on.

    ``timezone`` is the site's zone: local dates and weekly schedules are evaluated in it.
    ``default_revalidation_days`` applies to keys none of whose spaces set an interval
    (``None`` disables revalidation for them). ``blacklist_capacity`` is the number of entries
    a cylinder's blacklist holds; entries beyond it are reported as overflow.
    """

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    default_revalidation_days: int | None = 30
    blacklist_capacity: int = 3000
    working_day_end: time = time(17, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_day_cache", {})
        object.__setattr__(self, "_window_cache", {})

    def day_start(self, day: date) -> datetime:
        """UTC instant at which local ``day`` starts (cached: called for every window)."""
        cache: dict[date, datetime] = self._day_cache  # type: ignore[attr-defined]
        hit = cache.get(day)
        if hit is None:
            hit = cache[day] = start_of_day(day, self.timezone)
        return hit

    def day_end(self, day: date) -> datetime:
        """UTC instant at which local ``day`` ends (exclusive)."""
        return LATEST if day == date.max else self.day_start(day + timedelta(days=1))

    def days_window(self, first: date, last: date) -> Window:
        """The window from the start of local day ``first`` to the end of ``last``: one
        shared object per pair of days (cached: every entry and assignment has one)."""
        cache: dict[tuple[date | None, date], Window] = self._window_cache  # type: ignore[attr-defined]
        hit = cache.get((first, last))
        if hit is None:
            if len(cache) > 100_000:
                cache.clear()
            hit = cache[(first, last)] = Window(self.day_start(first), self.day_end(last))
        return hit

    def until_window(self, last: date) -> Window:
        """The window unbounded before, ending with local day ``last`` (shared, cached)."""
        cache: dict[tuple[date | None, date], Window] = self._window_cache  # type: ignore[attr-defined]
        hit = cache.get((None, last))
        if hit is None:
            if len(cache) > 100_000:
                cache.clear()
            hit = cache[(None, last)] = Window(None, self.day_end(last))
        return hit
