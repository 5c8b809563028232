"""Instants and windows written for people: site-local wall-clock time with its zone label.

Machine-readable output (JSON, MQTT) carries ISO 8601 instants with a zone; text meant to be
read (tables, ``explain`` details, report sentences) uses these, so that a local time never
appears without the zone it is in (``2026-11-23 09:00 CET``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.domain.timeutil import Window


def local_text(at: datetime | None, tz: ZoneInfo, *, empty: str = "-") -> str:
    """``at`` in ``tz`` as ``YYYY-MM-DD HH:MM ZONE`` (``empty`` for ``None``)."""
    if at is None:
        return empty
    local = at.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def window_text(window: Window, tz: ZoneInfo) -> str:
    """A window as ``FROM – UNTIL`` in local time with zone labels; an open side is said."""
    start = local_text(window.start, tz, empty="no start")
    end = local_text(window.end, tz, empty="no end")
    return f"{start} – {end}"


__all__ = ["local_text", "window_text"]
