"""One simulated UHPPOTE controller: its memory, its decisions and its answers (no I/O).

:meth:`UhppoteController.handle` turns a request packet into a reply packet (or ``None`` where
the device stays silent: a request for another serial number, a bad magic word, set IP).
:meth:`UhppoteController.present` is a card at a reader; events go to the event log and, when a
listener is set, to :attr:`UhppoteController.on_event` as the 64-byte packet the controller
would send.

What the simulated controller keeps across a power loss and what it loses is listed in
:meth:`UhppoteController.power_loss`.
"""

from __future__ import annotations

import heapq
import logging
import time as _time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from enum import IntEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulators.uhppote.packets import (
    EVENT_FUNCTION,
    MAGIC,
    U32_MAX,
    Function,
    PacketError,
    Reply,
    Request,
)

log = logging.getLogger(__name__)

DELETED = U32_MAX
"""Card number of a deleted record in the card table (read by index)."""
DEFAULT_DELAY_S = 3
FIRMWARE = bytes([0x08, 0x92])
RELEASED = date(2018, 11, 5)


class DoorControl(IntEnum):
    NORMALLY_OPEN = 1
    NORMALLY_CLOSED = 2
    CONTROLLED = 3


class EventType(IntEnum):
    NONE = 0x00
    SWIPE = 0x01
    DOOR = 0x02
    """Door status, push button, power on, remote open."""
    ALARM = 0x03
    OVERWRITTEN = 0xFF


class Reason(IntEnum):
    SWIPE = 0x01
    NO_PRIVILEGE = 0x06
    WRONG_PIN = 0x07
    NORMALLY_CLOSED = 0x0B
    OUTSIDE_TIME_PROFILE = 0x0F
    UNKNOWN_CARD = 0x12
    PUSH_BUTTON = 0x14
    DOOR_OPEN = 0x17
    DOOR_CLOSED = 0x18
    POWER_ON = 0x1C
    OPEN_TOO_LONG = 0x25
    FORCED_OPEN = 0x26
    REMOTE_OPEN = 0x2C


SPECIAL_REASONS = frozenset({Reason.PUSH_BUTTON, Reason.DOOR_OPEN, Reason.DOOR_CLOSED})
"""Events recorded only while "record special events" is on."""


@dataclass(frozen=True, slots=True)
class CardRecord:
    card: int
    start: date
    end: date
    doors: tuple[int, int, int, int]
    pin: int = 0
    firstcard: int = 0


@dataclass(frozen=True, slots=True)
class TimeProfile:
    profile_id: int
    start: date | None
    end: date | None
    weekdays: tuple[bool, bool, bool, bool, bool, bool, bool]
    """Monday .. Sunday."""
    segments: tuple[tuple[dtime, dtime], tuple[dtime, dtime], tuple[dtime, dtime]]
    linked: int

    def matches(self, now: datetime) -> bool:
        """True inside the profile at local time ``now`` (minute resolution; both segment
        ends inclusive; a segment 00:00-00:00 is unused)."""
        today = now.date()
        if self.start is None or self.end is None or not self.start <= today <= self.end:
            return False
        if not self.weekdays[today.weekday()]:
            return False
        minute = now.time().replace(second=0, microsecond=0)
        return any(
            start <= minute <= end
            for start, end in self.segments
            if not (start == dtime(0, 0) and end == dtime(0, 0))
        )


@dataclass(frozen=True, slots=True)
class EventRecord:
    index: int
    kind: int
    granted: bool
    door: int
    direction: int
    card: int
    timestamp: datetime
    reason: int


@dataclass(slots=True)
class Door:
    mode: DoorControl = DoorControl.CONTROLLED
    delay_s: int = DEFAULT_DELAY_S
    open: bool = False
    button: bool = False
    unlocked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    reason: Reason
    index: int


@dataclass(slots=True)
class Network:
    address: str = "192.168.1.100"
    netmask: str = "255.255.255.0"
    gateway: str = "192.168.1.1"
    mac: bytes | None = None
    """None: derived from the serial number."""


def _mac(serial: int) -> bytes:
    return bytes([0x00, 0x12]) + serial.to_bytes(4, "little")


@dataclass
class ClockState:
    """The controller's clock: host time plus an offset (set by SET_TIME or a drift fault)."""

    offset_s: float = 0.0
    frozen_at: float | None = None


@dataclass
class Counters:
    requests: int = 0
    by_function: dict[str, int] = field(default_factory=dict)


class UhppoteController:
    """A simulated UT0311-L0x controller with ``doors`` doors (1, 2 or 4).

    ``capacity`` is the card table size, ``event_capacity`` the size of the event ring (the
    oldest event is overwritten when it is full). ``timezone`` is the zone the controller's
    local clock is set in, used only to render host time; ``clock`` returns host time as
    Unix seconds (injectable for tests).
    """

    def __init__(
        self,
        serial: int,
        *,
        doors: int = 4,
        capacity: int = 20_000,
        event_capacity: int = 10_000,
        timezone: str = "UTC",
        clock: Callable[[], float] = _time.time,
    ) -> None:
        if not 1 <= serial <= U32_MAX - 1:
            raise ValueError(f"serial: must be in 1..{U32_MAX - 1}, got {serial}")
        if doors not in (1, 2, 4):
            raise ValueError(f"doors: a UHPPOTE controller has 1, 2 or 4 doors, got {doors}")
        if not 1 <= capacity <= 1_000_000:
            raise ValueError(f"capacity: must be in 1..1000000, got {capacity}")
        if not 1 <= event_capacity <= 1_000_000:
            raise ValueError(f"event_capacity: must be in 1..1000000, got {event_capacity}")
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
        self.serial = serial
        self.door_count = doors
        self.capacity = capacity
        self.event_capacity = event_capacity
        self.timezone = timezone
        self._host_clock = clock
        self.clock = ClockState()
        self.network = Network()
        self.on_event: Callable[[bytes, tuple[str, int]], None] | None = None
        """Called with each event packet and the listener address, while one is set."""
        self.counters = Counters()
        self.power_losses = 0
        self._reset_volatile()
        self._events: deque[EventRecord] = deque(maxlen=event_capacity)
        self._next_event = 1
        self.event_bookmark = 0
        self._sequence = 0

    # ------------------------------------------------------------------ memory

    def _reset_volatile(self) -> None:
        self._slots: list[CardRecord | None] = []
        """The card table by index (0-based here, 1-based on the wire); None is deleted."""
        self._where: dict[int, int] = {}
        self._holes: list[int] = []
        self.profiles: dict[int, TimeProfile] = {}
        self.doors = {n: Door() for n in range(1, self.door_count + 1)}
        self.listener: tuple[str, int] | None = None
        self.listener_interval = 0
        self.record_special_events = False

    def power_loss(self) -> None:
        """The controller loses its volatile memory and starts again.

        Lost: the card table, the time profiles, the door control settings (back to
        controlled, 3 s), the event listener and the "record special events" switch. Kept:
        the event log and the event index bookmark (a flash ring), the clock (battery), the
        network settings. A "power on" event is recorded."""
        self._reset_volatile()
        self.power_losses += 1
        self._record(EventType.DOOR, False, 1, 1, 0, Reason.POWER_ON)

    def cards(self) -> Iterator[CardRecord]:
        return (c for c in self._slots if c is not None)

    @property
    def card_count(self) -> int:
        return len(self._where)

    def card(self, number: int) -> CardRecord | None:
        slot = self._where.get(number)
        return None if slot is None else self._slots[slot]

    def put_card(self, record: CardRecord) -> bool:
        if record.card in (0, DELETED):
            return False
        slot = self._where.get(record.card)
        if slot is not None:
            self._slots[slot] = record
            return True
        if self._holes:
            slot = heapq.heappop(self._holes)
            self._slots[slot] = record
        elif len(self._slots) < self.capacity:
            slot = len(self._slots)
            self._slots.append(record)
        else:
            return False
        self._where[record.card] = slot
        return True

    def delete_card(self, number: int) -> bool:
        slot = self._where.pop(number, None)
        if slot is None:
            return False
        self._slots[slot] = None
        heapq.heappush(self._holes, slot)
        return True

    def delete_all_cards(self) -> None:
        self._slots = []
        self._where = {}
        self._holes = []

    # ------------------------------------------------------------------ clock

    def now(self) -> datetime:
        """The controller's local time (naive), to the second."""
        host = self.clock.frozen_at if self.clock.frozen_at is not None else self._host_clock()
        local = datetime.fromtimestamp(host + self.clock.offset_s, self.tz)
        return local.replace(tzinfo=None, microsecond=0)

    def set_now(self, local: datetime) -> None:
        """Set the controller's local time; the clock keeps running from there."""
        host = self.clock.frozen_at if self.clock.frozen_at is not None else self._host_clock()
        self.clock.offset_s = local.replace(tzinfo=self.tz).timestamp() - host

    def drift(self, seconds: float) -> None:
        """Move the controller's clock by ``seconds`` (a drift or a flat battery)."""
        self.clock.offset_s += seconds

    def _seconds(self) -> float:
        host = self.clock.frozen_at if self.clock.frozen_at is not None else self._host_clock()
        return host + self.clock.offset_s

    # ------------------------------------------------------------------ doors and cards

    def unlocked(self, door: int) -> bool:
        d = self.doors[door]
        if d.mode is DoorControl.NORMALLY_OPEN:
            return True
        if d.mode is DoorControl.NORMALLY_CLOSED:
            return False
        return self._seconds() < d.unlocked_until

    def _check_door(self, door: int) -> None:
        if isinstance(door, bool) or not 1 <= door <= self.door_count:
            raise ValueError(f"door: must be in 1..{self.door_count}, got {door!r}")

    def present(
        self, card: int, door: int, *, direction: int = 1, pin: int | None = None
    ) -> Decision:
        """A card is presented at a door's reader (``direction`` 1 in, 2 out)."""
        self._check_door(door)
        if direction not in (1, 2):
            raise ValueError(f"direction: 1 (in) or 2 (out), got {direction!r}")
        reason = self._decide(card, door, pin)
        granted = reason is Reason.SWIPE
        if granted:
            d = self.doors[door]
            d.unlocked_until = self._seconds() + d.delay_s
        index = self._record(EventType.SWIPE, granted, door, direction, card, reason)
        return Decision(granted, reason, index)

    def _decide(self, number: int, door: int, pin: int | None) -> Reason:
        record = self.card(number)
        if record is None:
            return Reason.UNKNOWN_CARD
        now = self.now()
        if not record.start <= now.date() <= record.end:
            return Reason.NO_PRIVILEGE
        if record.pin and pin != record.pin:
            return Reason.WRONG_PIN
        permission = record.doors[door - 1]
        if permission == 0 or permission == 255:
            return Reason.NO_PRIVILEGE
        if permission >= 2 and not self._profile_allows(permission, now):
            return Reason.OUTSIDE_TIME_PROFILE
        if self.doors[door].mode is DoorControl.NORMALLY_CLOSED:
            return Reason.NORMALLY_CLOSED
        return Reason.SWIPE

    def _profile_allows(self, profile_id: int, now: datetime) -> bool:
        """A profile and the profiles linked from it (any one matching is enough).

        As the real controllers do, a missing profile anywhere in the chain allows access."""
        seen: set[int] = set()
        current = profile_id
        while 2 <= current <= 254 and current not in seen:
            seen.add(current)
            profile = self.profiles.get(current)
            if profile is None:
                return True
            if profile.matches(now):
                return True
            current = profile.linked
        return False

    def open_door_remotely(self, door: int) -> None:
        d = self.doors[door]
        d.unlocked_until = self._seconds() + d.delay_s
        self._record(EventType.DOOR, True, door, 1, 0, Reason.REMOTE_OPEN)

    def move_door(self, door: int, is_open: bool) -> None:
        """The door leaf moves: opening a door that is not unlocked is a forced open."""
        self._check_door(door)
        d = self.doors[door]
        if d.open == is_open:
            return
        forced = is_open and not self.unlocked(door)
        d.open = is_open
        reason = Reason.DOOR_OPEN if is_open else Reason.DOOR_CLOSED
        self._record(EventType.DOOR, True, door, 1, 0, reason)
        if forced:
            self._record(EventType.ALARM, False, door, 1, 0, Reason.FORCED_OPEN)

    def held_open(self, door: int) -> int:
        """The door stayed open past its limit: records an "open too long" alarm."""
        self._check_door(door)
        return self._record(EventType.ALARM, False, door, 1, 0, Reason.OPEN_TOO_LONG)

    def press_button(self, door: int) -> bool:
        """The exit button: unlocks the door unless it is normally closed."""
        self._check_door(door)
        d = self.doors[door]
        if d.mode is DoorControl.NORMALLY_CLOSED:
            return False
        d.unlocked_until = self._seconds() + d.delay_s
        self._record(EventType.DOOR, True, door, 2, 0, Reason.PUSH_BUTTON)
        return True

    # ------------------------------------------------------------------ events

    def _record(
        self, kind: EventType, granted: bool, door: int, direction: int, card: int, reason: Reason
    ) -> int:
        if reason in SPECIAL_REASONS and not self.record_special_events:
            return 0
        event = EventRecord(
            index=self._next_event,
            kind=int(kind),
            granted=granted,
            door=door,
            direction=direction,
            card=card,
            timestamp=self.now(),
            reason=int(reason),
        )
        self._next_event += 1
        self._events.append(event)
        if self.listener is not None and self.on_event is not None:
            self.on_event(self.event_packet(event), self.listener)
        return event.index

    @property
    def first_event(self) -> int:
        return self._events[0].index if self._events else 0

    @property
    def last_event(self) -> int:
        return self._events[-1].index if self._events else 0

    def event(self, index: int) -> EventRecord | None:
        if not self._events or not self.first_event <= index <= self.last_event:
            return None
        return self._events[index - self.first_event]

    def event_packet(self, event: EventRecord | None) -> bytes:
        """A status reply, or the event packet sent to the listener, carrying ``event``."""
        return self._status(EVENT_FUNCTION, event).bytes()

    def _status(self, function: int, event: EventRecord | None) -> Reply:
        now = self.now()
        self._sequence = (self._sequence + 1) & U32_MAX
        reply = Reply(function, self.serial)
        if event is not None:
            _put_event(reply, event)
        for n in range(1, 5):
            door = self.doors.get(n)
            reply.flag(27 + n, door is not None and door.open)
            reply.flag(31 + n, door is not None and door.button)
        relays = sum(1 << (n - 1) for n in self.doors if self.unlocked(n))
        reply.u8(36, 0).hhmmss(37, now.time()).u32(40, self._sequence)
        return reply.u8(48, 0).u8(49, relays).u8(50, 0).short_date(51, now.date())

    # ------------------------------------------------------------------ the protocol

    def handle(self, request: Request) -> bytes | None:
        """The reply to ``request``, or None when the controller stays silent.

        Raises :class:`PacketError` for a request whose fields are not valid."""
        if request.serial != self.serial and not (
            request.function is Function.GET_CONTROLLER and request.serial == 0
        ):
            return None
        self.counters.requests += 1
        name = request.function.name
        self.counters.by_function[name] = self.counters.by_function.get(name, 0) + 1
        handler = _HANDLERS[request.function]
        return handler(self, request)

    def _get_controller(self, rq: Request) -> bytes:
        n = self.network
        reply = Reply(rq.function, self.serial).ipv4(8, n.address).ipv4(12, n.netmask)
        reply.ipv4(16, n.gateway).raw(20, n.mac or _mac(self.serial)).raw(26, FIRMWARE)
        return reply.bcd_date(28, RELEASED).bytes()

    def _set_ip(self, rq: Request) -> None:
        if rq.u32(20) == MAGIC:
            self.network = Network(rq.ipv4(8), rq.ipv4(12), rq.ipv4(16), self.network.mac)
        return None

    def _get_time(self, rq: Request) -> bytes:
        return Reply(rq.function, self.serial).bcd_datetime(8, self.now()).bytes()

    def _set_time(self, rq: Request) -> bytes:
        local = rq.bcd_datetime(8, "datetime")
        if local is None:
            raise PacketError("datetime", "is zero")
        self.set_now(local)
        return Reply(rq.function, self.serial).bcd_datetime(8, self.now()).bytes()

    def _get_status(self, rq: Request) -> bytes:
        last = self._events[-1] if self._events else None
        return self._status(rq.function, last).bytes()

    def _get_listener(self, rq: Request) -> bytes:
        address, port = self.listener or ("0.0.0.0", 0)
        reply = Reply(rq.function, self.serial).ipv4(8, address).u16(12, port)
        return reply.u8(14, self.listener_interval).bytes()

    def _set_listener(self, rq: Request) -> bytes:
        address, port = rq.ipv4(8), rq.u16(12)
        ok = port != 0 or address == "0.0.0.0"
        if ok:
            self.listener = None if address == "0.0.0.0" else (address, port)
            self.listener_interval = rq.u8(14)
        return Reply(rq.function, self.serial).flag(8, ok).bytes()

    def _door(self, rq: Request) -> int | None:
        door = rq.u8(8)
        return door if 1 <= door <= self.door_count else None

    def _get_door_control(self, rq: Request) -> bytes | None:
        door = self._door(rq)
        if door is None:
            return None
        d = self.doors[door]
        return Reply(rq.function, self.serial).u8(8, door).u8(9, d.mode).u8(10, d.delay_s).bytes()

    def _set_door_control(self, rq: Request) -> bytes | None:
        door = self._door(rq)
        if door is None:
            return None
        d = self.doors[door]
        mode = rq.u8(9)
        if mode in (1, 2, 3):
            d.mode = DoorControl(mode)
        d.delay_s = rq.u8(10)
        return Reply(rq.function, self.serial).u8(8, door).u8(9, d.mode).u8(10, d.delay_s).bytes()

    def _open_door(self, rq: Request) -> bytes | None:
        door = self._door(rq)
        if door is None:
            return None
        self.open_door_remotely(door)
        return Reply(rq.function, self.serial).flag(8, True).bytes()

    def _get_cards(self, rq: Request) -> bytes:
        return Reply(rq.function, self.serial).u32(8, self.card_count).bytes()

    def _card_reply(self, rq: Request, number: int, record: CardRecord | None) -> bytes:
        reply = Reply(rq.function, self.serial)
        if record is None:
            return reply.u32(8, number).bytes()
        reply.u32(8, record.card).bcd_date(12, record.start).bcd_date(16, record.end)
        for i, permission in enumerate(record.doors):
            reply.u8(20 + i, permission)
        return reply.pin(24, record.pin).u8(27, record.firstcard).bytes()

    def _get_card(self, rq: Request) -> bytes:
        return self._card_reply(rq, 0, self.card(rq.u32(8)))

    def _get_card_by_index(self, rq: Request) -> bytes:
        index = rq.u32(8)
        if not 1 <= index <= len(self._slots):
            return self._card_reply(rq, 0, None)
        record = self._slots[index - 1]
        return self._card_reply(rq, DELETED if record is None else 0, record)

    def _put_card(self, rq: Request) -> bytes:
        start, end = rq.bcd_date(12, "from"), rq.bcd_date(16, "to")
        doors = (rq.u8(20), rq.u8(21), rq.u8(22), rq.u8(23))
        pin = rq.pin(24)
        stored = False
        if start is not None and end is not None and pin < 1_000_000:
            record = CardRecord(rq.u32(8), start, end, doors, pin, rq.u8(27) & 0x0F)
            stored = self.put_card(record)
        return Reply(rq.function, self.serial).flag(8, stored).bytes()

    def _delete_card(self, rq: Request) -> bytes:
        deleted = self.delete_card(rq.u32(8))
        return Reply(rq.function, self.serial).flag(8, deleted).bytes()

    def _delete_all_cards(self, rq: Request) -> bytes:
        ok = rq.u32(8) == MAGIC
        if ok:
            self.delete_all_cards()
        return Reply(rq.function, self.serial).flag(8, ok).bytes()

    def _get_event(self, rq: Request) -> bytes:
        index = rq.u32(8)
        if index == 0:
            event = self._events[0] if self._events else None
        elif index == U32_MAX:
            event = self._events[-1] if self._events else None
        else:
            event = self.event(index)
        reply = Reply(rq.function, self.serial)
        if event is not None:
            return _put_event(reply, event).bytes()
        if self._events and index < self.first_event:
            return reply.u32(8, index).u8(12, EventType.OVERWRITTEN).bytes()
        return reply.u32(8, index).bytes()

    def _get_event_index(self, rq: Request) -> bytes:
        return Reply(rq.function, self.serial).u32(8, self.event_bookmark).bytes()

    def _set_event_index(self, rq: Request) -> bytes | None:
        if rq.u32(12) != MAGIC:
            return None
        index = rq.u32(8)
        updated = index != self.event_bookmark and index <= self.last_event
        if updated:
            self.event_bookmark = index
        return Reply(rq.function, self.serial).flag(8, updated).bytes()

    def _record_special_events(self, rq: Request) -> bytes:
        self.record_special_events = rq.flag(8, "enable")
        return Reply(rq.function, self.serial).flag(8, True).bytes()

    def _get_time_profile(self, rq: Request) -> bytes:
        profile = self.profiles.get(rq.u8(8))
        reply = Reply(rq.function, self.serial)
        if profile is None:
            return reply.bytes()
        reply.u8(8, profile.profile_id).bcd_date(9, profile.start).bcd_date(13, profile.end)
        for i, enabled in enumerate(profile.weekdays):
            reply.flag(17 + i, enabled)
        for i, (start, end) in enumerate(profile.segments):
            reply.hhmm(24 + 4 * i, start).hhmm(26 + 4 * i, end)
        return reply.u8(36, profile.linked).bytes()

    def _set_time_profile(self, rq: Request) -> bytes:
        profile_id = rq.u8(8)
        mo, tu, we, th, fr, sa, su = (rq.flag(17 + i, f"weekday[{i}]") for i in range(7))
        s1, s2, s3 = (
            (rq.hhmm(24 + 4 * i, f"segment[{i}].start"), rq.hhmm(26 + 4 * i, f"segment[{i}].end"))
            for i in range(3)
        )
        start, end = rq.bcd_date(9, "from"), rq.bcd_date(13, "to")
        stored = 2 <= profile_id <= 254 and start is not None and end is not None
        if stored:
            self.profiles[profile_id] = TimeProfile(
                profile_id, start, end, (mo, tu, we, th, fr, sa, su), (s1, s2, s3), rq.u8(36)
            )
        return Reply(rq.function, self.serial).flag(8, stored).bytes()

    def _clear_time_profiles(self, rq: Request) -> bytes:
        ok = rq.u32(8) == MAGIC
        if ok:
            self.profiles.clear()
        return Reply(rq.function, self.serial).flag(8, ok).bytes()

    # ------------------------------------------------------------------ reports

    def report(self) -> dict[str, object]:
        """The whole controller state, for the control interface."""
        return {
            "serial": self.serial,
            "doors": {
                n: {
                    "mode": d.mode.name.lower(),
                    "delay_s": d.delay_s,
                    "open": d.open,
                    "unlocked": self.unlocked(n),
                }
                for n, d in self.doors.items()
            },
            "clock": self.now().isoformat(),
            "timezone": self.timezone,
            "cards": self.card_count,
            "card_slots": len(self._slots),
            "capacity": self.capacity,
            "profiles": sorted(self.profiles),
            "events": {
                "first": self.first_event,
                "last": self.last_event,
                "bookmark": self.event_bookmark,
                "capacity": self.event_capacity,
            },
            "listener": None if self.listener is None else f"{self.listener[0]}:{self.listener[1]}",
            "record_special_events": self.record_special_events,
            "power_losses": self.power_losses,
            "requests": self.counters.requests,
        }

    def stale_event_packet(self) -> bytes | None:
        """An already sent event, sent again (a replay), or None when there is none."""
        if not self._events:
            return None
        return self.event_packet(self._events[max(0, len(self._events) - 2)])


def _put_event(reply: Reply, event: EventRecord) -> Reply:
    reply.u32(8, event.index).u8(12, event.kind).flag(13, event.granted).u8(14, event.door)
    reply.u8(15, event.direction).u32(16, event.card).bcd_datetime(20, event.timestamp)
    return reply.u8(27, event.reason)


_HANDLERS: dict[Function, Callable[[UhppoteController, Request], bytes | None]] = {
    Function.GET_CONTROLLER: UhppoteController._get_controller,
    Function.SET_IP: UhppoteController._set_ip,
    Function.GET_TIME: UhppoteController._get_time,
    Function.SET_TIME: UhppoteController._set_time,
    Function.GET_STATUS: UhppoteController._get_status,
    Function.GET_LISTENER: UhppoteController._get_listener,
    Function.SET_LISTENER: UhppoteController._set_listener,
    Function.GET_DOOR_CONTROL: UhppoteController._get_door_control,
    Function.SET_DOOR_CONTROL: UhppoteController._set_door_control,
    Function.OPEN_DOOR: UhppoteController._open_door,
    Function.GET_CARDS: UhppoteController._get_cards,
    Function.GET_CARD: UhppoteController._get_card,
    Function.GET_CARD_BY_INDEX: UhppoteController._get_card_by_index,
    Function.PUT_CARD: UhppoteController._put_card,
    Function.DELETE_CARD: UhppoteController._delete_card,
    Function.DELETE_ALL_CARDS: UhppoteController._delete_all_cards,
    Function.GET_EVENT: UhppoteController._get_event,
    Function.GET_EVENT_INDEX: UhppoteController._get_event_index,
    Function.SET_EVENT_INDEX: UhppoteController._set_event_index,
    Function.RECORD_SPECIAL_EVENTS: UhppoteController._record_special_events,
    Function.GET_TIME_PROFILE: UhppoteController._get_time_profile,
    Function.SET_TIME_PROFILE: UhppoteController._set_time_profile,
    Function.CLEAR_TIME_PROFILES: UhppoteController._clear_time_profiles,
}

__all__ = [
    "DELETED",
    "CardRecord",
    "Decision",
    "DoorControl",
    "EventRecord",
    "EventType",
    "Reason",
    "TimeProfile",
    "UhppoteController",
]
