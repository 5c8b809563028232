"""UHPPOTE event records and what they mean to the gateway. Pure functions, no I/O.

An event has an index (1, 2, ... in the controller's log), a type (1 swipe, 2 door / button /
power / remote open, 3 alarm; 0 "no such event", 0xFF "overwritten"), a granted flag, a door,
a direction, a card number, a local timestamp and a reason code. The contract knows five
kinds (:class:`~drivers.base.ControllerEventKind`); the others (door opened and closed, exit
button, power on, ...) are not reported but still move the event cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drivers.base import ControllerEvent, ControllerEventKind, DenyReason

TYPE_NONE = 0x00
TYPE_SWIPE = 0x01
TYPE_DOOR = 0x02
TYPE_ALARM = 0x03
TYPE_OVERWRITTEN = 0xFF

REASON_NO_PRIVILEGE = 0x06
REASON_WRONG_PIN = 0x07
REASON_NORMALLY_CLOSED = 0x0B
REASON_INVALID_TIMEZONE = 0x0F
REASON_DENIED = 0x12
REASON_DOOR_CLOSED = 0x18
REASON_OPEN_TOO_LONG = 0x25
REASON_FORCED_OPEN = 0x26
REASON_REMOTE_OPEN = 0x2C
REASON_REMOTE_OPEN_USB = 0x2D
REASON_POWER_ON = 0x1C
REASON_RESET = 0x1D

_NO_DOOR = frozenset({REASON_POWER_ON, REASON_RESET})


class EventError(ValueError):
    """An event record that is not valid; ``field`` names the offending field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One record of a controller's event log, as the device sent it."""

    index: int
    kind: int
    granted: bool
    door: int
    direction: int
    card: int
    timestamp: datetime | None
    """Controller local time (naive); None when the device sent no valid date."""
    reason: int

    @classmethod
    def from_reply(cls, reply: Any) -> RawEvent:
        """From a ``uhppoted`` get-event reply (:class:`uhppoted.structs.GetEventResponse`)."""
        return cls(
            index=int(reply.index),
            kind=int(reply.event_type),
            granted=bool(reply.access_granted),
            door=int(reply.door),
            direction=int(reply.direction),
            card=int(reply.card),
            timestamp=reply.timestamp,
            reason=int(reply.reason),
        )

    @classmethod
    def from_push(cls, event: Any) -> RawEvent:
        """From an event the controller pushed (:class:`uhppoted.structs.Event`)."""
        return cls(
            index=int(event.event_index),
            kind=int(event.event_type),
            granted=bool(event.event_access_granted),
            door=int(event.event_door),
            direction=int(event.event_direction),
            card=int(event.event_card),
            timestamp=event.event_timestamp,
            reason=int(event.event_reason),
        )


def kind_of(event: RawEvent) -> ControllerEventKind | None:
    """The contract's kind of an event, or None for the kinds it does not carry."""
    if event.kind == TYPE_SWIPE:
        return ControllerEventKind.GRANTED if event.granted else ControllerEventKind.DENIED
    if event.reason in (REASON_REMOTE_OPEN, REASON_REMOTE_OPEN_USB):
        return ControllerEventKind.PULSED
    if event.reason == REASON_FORCED_OPEN:
        return ControllerEventKind.FORCED
    if event.reason == REASON_OPEN_TOO_LONG:
        return ControllerEventKind.HELD_OPEN
    return None


DENY_REASONS = {
    REASON_NORMALLY_CLOSED: DenyReason.LOCKDOWN,
    REASON_INVALID_TIMEZONE: DenyReason.OUTSIDE_SCHEDULE,
    REASON_DENIED: DenyReason.UNKNOWN_CREDENTIAL,
}
"""Denial reason codes with one meaning in the contract. ``0x06`` ("no privilege": the card is
there but not for this door or not today) is told apart by the driver, which knows the card's
record; the rest (wrong PIN, anti-passback, interlock, ...) are :attr:`DenyReason.OTHER`."""


def deny_reason(event: RawEvent) -> DenyReason:
    """The contract's reason of a denied swipe from its reason code alone."""
    return DENY_REASONS.get(event.reason, DenyReason.OTHER)


def check(event: RawEvent, *, doors: int) -> None:
    """Raise :class:`EventError` for a record that cannot be a real event."""
    if event.kind not in (TYPE_SWIPE, TYPE_DOOR, TYPE_ALARM):
        raise EventError("type", f"unknown event type {event.kind:#04x}")
    if event.reason not in _NO_DOOR and not 1 <= event.door <= doors:
        raise EventError("door", f"door {event.door} is not one of the controller's {doors}")
    if event.timestamp is None:
        raise EventError("timestamp", "not a valid date and time")


def to_contract(
    event: RawEvent, tz: ZoneInfo, refine: Callable[[RawEvent], DenyReason] | None = None
) -> ControllerEvent | None:
    """The contract's event for a checked record (None for kinds it does not carry).

    A denial's reason is ``refine(event)`` when given, else :func:`deny_reason`."""
    kind = kind_of(event)
    if kind is None or event.timestamp is None:
        return None
    at = event.timestamp.replace(tzinfo=tz).astimezone(UTC)
    credential = (
        event.card if kind in (ControllerEventKind.GRANTED, ControllerEventKind.DENIED) else 0
    )
    reason = None
    if kind is ControllerEventKind.DENIED:
        reason = (refine or deny_reason)(event)
    return ControllerEvent(
        sequence=event.index,
        kind=kind,
        credential=credential,
        door=event.door,
        at=at,
        reason=reason,
    )


__all__ = [
    "TYPE_NONE",
    "TYPE_OVERWRITTEN",
    "EventError",
    "RawEvent",
    "check",
    "deny_reason",
    "kind_of",
    "to_contract",
]
