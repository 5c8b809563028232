"""A simulated wall clock: real time plus an offset that tests and the control interface
can move (``set_time``), so validity windows, schedules and revalidation deadlines can be
exercised without waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SimClock:
    """``now()`` is the real UTC time shifted by an adjustable offset; it keeps running."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def set(self, at: datetime) -> None:
        """Make ``now()`` return ``at`` at this moment. ``at`` must be timezone-aware."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("at: must carry a time zone (e.g. 2026-03-29T01:30:00Z)")
        self._offset = at.astimezone(UTC) - datetime.now(UTC)

    def set_iso(self, value: str) -> datetime:
        """Parse an ISO 8601 instant with a zone and :meth:`set` it; returns it in UTC."""
        if not isinstance(value, str):
            raise ValueError("iso: must be an ISO 8601 string")
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"iso: {value!r} is not an ISO 8601 date-time") from None
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"iso: {value!r} must carry a time zone (e.g. ...Z or +01:00)")
        self.set(at)
        return at.astimezone(UTC)

    def reset(self) -> None:
        """Back to real time."""
        self._offset = timedelta(0)
