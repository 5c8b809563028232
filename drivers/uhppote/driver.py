"""``UhppoteDoorController``: the :class:`~drivers.base.DoorController` contract on a UHPPOTE
UT0311-L0x access controller (1, 2 or 4 doors), over its UDP or TCP protocol through the
``uhppoted`` async API.

The allow-list is the card table
---------------------------------
Each credential is one card record: card number, first and last valid day, one permission per
door (0 none, 1 any time, 2..254 a time profile) and an optional PIN. Weekly schedules become
time profiles (three daily segments and one set of weekdays each; a schedule needing more is a
chain of linked profiles). Dates are whole local days: a window that starts or ends inside a
day is narrowed to the whole days it covers (option ``rounding = "inward"``, the default) or
widened to every day it touches (``"outward"``).

Writes go by difference, revocations first, no atomic commit
-------------------------------------------------------------
The device has no staging area and no commit: every card and every time profile is written by
its own request (:attr:`atomic_writes` is False). :meth:`write_allow_list` compares the wanted
table with the one the controller holds (the driver's verified copy, or a full read by index
when it has none) and sends, in this order (:mod:`drivers.uhppote.plan`):

1. deletes of unwanted cards, then updates that narrow a card's rights (revocations);
2. new time-profile chains, on profile ids no card refers to (a profile a card uses is never
   changed in place), then the narrowing updates that use them;
3. updates that only widen rights, and new cards;

then reads back every card and profile it wrote, every card it deleted, the card count and the
marker card, and raises :class:`~drivers.base.VerifyMismatch` on any difference.

**What a reader of the card table can see mid-sync.** Any mix of written and not yet written
records, and a card count between the old and the new one; never a record half written (one
request is one record), never a card referring to a profile that is not written yet (a
controller lets such a card pass), and never a grant sent before every revocation of the same
write. Each card holds either its old or its new rights at every instant. How long the mix
lasts is bounded by the number of changed records times the round trip (plus retries): a
revocation of one card is one request; a full load of 1000 cards about 1000 requests. If the
write stops half way (link lost, gateway stopped), the driver forgets its verified copy; the
controller's checksum no longer matches the stored one and the next write reads the table
again and sends only what is still missing.

Memory loss, a replaced controller
----------------------------------
The driver keeps a *marker card* in the table (``marker_card``, default 4294967294, no door
and an expired date range: it opens nothing) whose PIN field holds a random generation
number. When the controller lost its card table, the marker is gone: :meth:`read_info` writes a
new one and reports the new generation, exactly as the Modbus controller reports a generation
change, and the gateway writes everything again. :meth:`read_checksum` checks the card count
(one request) and a few records (``audit_records``, by rotation) against the verified copy on
every call, so a record changed by another tool is found within ``cards / audit_records``
calls; on a difference it reads the whole table and returns the checksum of what is really
there. A controller that stops answering while its address answers as another serial number
is reported as such (:mod:`drivers.uhppote.link`).

Events
------
Events come two ways. With ``listen`` set, the driver binds a UDP socket there, points the
controller's listener at it (``listener_address``) and keeps the events the controller pushes;
:meth:`wait_for_events` returns as soon as one arrives. :meth:`read_events` always asks the
controller for its newest index (one request) and fills every index after the caller's cursor
from the pushed events or, where one is missing (UDP loses packets; the gateway was down), by
GET_EVENT: so no event is lost across a gateway restart as long as the caller stores the last
sequence it got (:attr:`last_event_index` also says how far the driver has read).
:meth:`ack_events` moves the controller's event-index bookmark; a caller starting from 0 starts
at that bookmark. An index the controller already overwrote is reported (logged, and in
:attr:`event_gaps`), as is a controller whose newest index is below the caller's cursor
(:attr:`event_log_reset`). Pushed packets that are short, not events, from another serial
number or replaying an index already received are dropped with a logged reason.

Settings
--------
:meth:`read_settings` and :meth:`write_settings` carry each door's control mode (controlled,
normally open, normally closed: the contract's ``locked``, ``unlocked`` and ``lockdown``) and
open delay (``pulse_seconds``, the same on every door) through GET/SET_DOOR_CONTROL. The
controller cannot take a ``scheduled`` door mode (no time-profile door control over this
protocol) nor a held-open time (its "open too long" alarm is fixed): both are refused naming the
field, and ``held_open_seconds`` reads as ``None`` (:attr:`unsupported_settings`). The door
settings are lost with the controller's memory; the gateway writes them again when it sees the
new generation.

Clock
-----
The controller's clock is local time in ``timezone``. :meth:`read_info` compares it with the
gateway's clock every ``clock_check_s`` seconds and sets it when it is more than
``max_clock_drift_s`` off (:meth:`sync_clock`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from drivers.base import (
    AllowEntry,
    AllowListResult,
    ControllerEvent,
    ControllerInfo,
    ControllerSettings,
    DenyReason,
    DoorController,
    DoorMode,
    DoorStatus,
    EventGap,
    HardwareSchedule,
    ProgressCallback,
    ProtocolError,
    VerifyMismatch,
    WriteProgress,
)
from drivers.uhppote import events as ev
from drivers.uhppote.link import LinkSettings, Transport, UhppoteLink
from drivers.uhppote.listener import EventListener
from drivers.uhppote.plan import DeleteCard, Plan, PutCard, SetProfile, plan
from drivers.uhppote.records import (
    CARD_MAX,
    CARD_MIN,
    FIRST_DAY,
    PIN_MAX,
    PROFILE_IDS,
    Card,
    Profile,
    ProfileContent,
    Rounding,
    Table,
    desired_table,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 60000
DELETED = 0xFFFF_FFFF
U32_MAX = 0xFFFF_FFFF
DEFAULT_MARKER = 0xFFFF_FFFE
MODE_CODES = {DoorMode.UNLOCKED: 1, DoorMode.LOCKDOWN: 2, DoorMode.LOCKED: 3}
CODE_MODES = {code: mode for mode, code in MODE_CODES.items()}
PUSHED_KEPT = 4096

_OPTIONS = {
    "device_id",
    "serial",
    "address",
    "transport",
    "bind",
    "doors",
    "capacity",
    "timezone",
    "timeout_s",
    "retries",
    "listen",
    "listener_address",
    "marker_card",
    "audit_records",
    "clock_check_s",
    "max_clock_drift_s",
    "rounding",
}


def _int_option(
    options: Mapping[str, Any], name: str, default: int | None, low: int, high: int
) -> int:
    value = options.get(name, default)
    if value is None:
        raise ValueError(f"{name}: required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be in {low}..{high}, got {value}")
    return value


def _float_option(
    options: Mapping[str, Any], name: str, default: float, low: float, high: float
) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: must be a number of seconds, got {value!r}")
    if not low < value <= high:
        raise ValueError(f"{name}: must be more than {low:g} and at most {high:g}, got {value}")
    return float(value)


def _host_port(name: str, value: Any, default_port: int | None) -> tuple[str, int]:
    """``host:port`` (or ``host`` with a default port) with an IPv4 host."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: must be 'address:port', got {value!r}")
    host, sep, port_text = value.strip().rpartition(":")
    if not sep:
        host, port_text = value.strip(), ""
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(f"{name}: {host!r} is not an IPv4 address") from None
    if not port_text:
        if default_port is None:
            raise ValueError(f"{name}: give the port, as in {host}:60001")
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{name}: {port_text!r} is not a port number")
    return host, int(port_text)


class UhppoteDoorController(DoorController):
    """A UHPPOTE access controller. See the module documentation for how it keeps the contract.

    Options (``from_options``):

    ``serial`` (required)
        The controller's serial number.
    ``address`` (required)
        ``host`` or ``host:port`` of the controller (port 60000 by default).
    ``timezone`` (required)
        IANA zone the controller's clock and card dates are in (the site's).
    ``transport``
        ``"udp"`` (default) or ``"tcp"``.
    ``bind``
        Local IPv4 address requests are sent from (default ``0.0.0.0``).
    ``doors``, ``capacity``
        1, 2 or 4 doors (default 4); card table size (default 20000).
    ``timeout_s``, ``retries``
        Reply timeout per attempt (default 1.0 s) and retransmissions (default 2).
    ``listen``, ``listener_address``
        ``host:port`` to receive pushed events on (none: poll only; port 0 picks a free
        port); the address the controller sends them to (default: the bound address).
    ``marker_card``
        Card number of the generation marker (default 4294967294).
    ``audit_records``
        Records compared with the verified copy on each :meth:`read_checksum` (default 4).
    ``clock_check_s``, ``max_clock_drift_s``
        How often :meth:`read_info` checks the controller's clock (default 300 s) and how far
        off it may be before it is set (default 2 s).
    ``rounding``
        ``"inward"`` (default) or ``"outward"``: how a window that starts or ends inside a day
        becomes whole days.
    """

    atomic_writes: ClassVar[bool] = False
    unsupported_settings: ClassVar[frozenset[str]] = frozenset({"held_open_seconds"})

    def __init__(
        self,
        *,
        settings: LinkSettings,
        timezone: str,
        device_id: str | None = None,
        doors: int = 4,
        capacity: int = 20_000,
        listen: tuple[str, int] | None = None,
        listener_address: tuple[str, int] | None = None,
        marker_card: int = DEFAULT_MARKER,
        audit_records: int = 4,
        clock_check_s: float = 300.0,
        max_clock_drift_s: float = 2.0,
        rounding: Rounding = "inward",
    ) -> None:
        if doors not in (1, 2, 4):
            raise ValueError(f"doors: a UHPPOTE controller has 1, 2 or 4 doors, got {doors}")
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
        self.device_id = device_id
        self.serial = settings.serial
        self.doors = doors
        self.capacity = capacity
        self._link = UhppoteLink(settings, device_id=device_id)
        self._listen = listen
        self._listener_address = listener_address
        self.marker_card = marker_card
        self.audit_records = audit_records
        self.clock_check_s = clock_check_s
        self.max_clock_drift_s = max_clock_drift_s
        self.rounding: Rounding = rounding
        self._lock = asyncio.Lock()
        self._firmware = ""
        self._generation: int | None = None
        self._image: Table | None = None
        self._audit_cursor = 0
        self._clock_checked = -float("inf")
        self._listener: EventListener | None = None
        self._pushed: OrderedDict[int, ev.RawEvent] = OrderedDict()
        self._pushed_newest = 0
        self._pushed_signal = asyncio.Event()
        self._skip: tuple[int, int] | None = None
        self._forced: set[int] = set()
        self._held: set[int] = set()
        self._door_noted = 0
        self.last_event_index = 0
        """The highest event index this driver has read (returned or passed over)."""
        self.event_gaps: list[tuple[int, int]] = []
        """Index ranges the controller had overwritten before they were read (most recent
        last, at most 100)."""
        self.event_log_reset = False
        """True when the controller's newest event index was below the caller's cursor: its
        event log was reset or the controller replaced."""
        self._new_gaps: list[EventGap] = []
        self.events_rejected = 0
        """Pushed or read events refused (malformed, replayed index, wrong door)."""
        self.last_clock_drift_s: float | None = None
        self.last_plan: Plan | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown option (known: {', '.join(sorted(_OPTIONS))})")
        device_id = options.get("device_id")
        if device_id is not None and not isinstance(device_id, str):
            raise ValueError(f"device_id: must be a string, got {device_id!r}")
        serial = _int_option(options, "serial", None, 1, U32_MAX - 1)
        host, port = _host_port("address", options.get("address"), DEFAULT_PORT)
        transport = options.get("transport", "udp")
        if transport not in ("udp", "tcp"):
            raise ValueError(f"transport: must be 'udp' or 'tcp', got {transport!r}")
        tr: Transport = "udp" if transport == "udp" else "tcp"
        bind = options.get("bind", "0.0.0.0")
        try:
            ipaddress.IPv4Address(bind)
        except ValueError:
            raise ValueError(f"bind: {bind!r} is not an IPv4 address") from None
        timezone = options.get("timezone")
        if not isinstance(timezone, str) or not timezone:
            raise ValueError(
                "timezone: required, the IANA zone of the controller's clock "
                "(for example Europe/Stockholm)"
            )
        listen = listener_address = None
        if options.get("listen") is not None:
            listen = _host_port("listen", options["listen"], None)
        if options.get("listener_address") is not None:
            if listen is None:
                raise ValueError("listener_address: needs listen (where events are received)")
            listener_address = _host_port("listener_address", options["listener_address"], None)
        rounding = options.get("rounding", "inward")
        if rounding not in ("inward", "outward"):
            raise ValueError(f"rounding: must be 'inward' or 'outward', got {rounding!r}")
        marker = _int_option(options, "marker_card", DEFAULT_MARKER, CARD_MIN, CARD_MAX)
        return cls(
            settings=LinkSettings(
                serial=serial,
                address=f"{host}:{port}",
                transport=tr,
                bind=bind,
                timeout_s=_float_option(options, "timeout_s", 1.0, 0.0, 30.0),
                retries=_int_option(options, "retries", 2, 0, 10),
            ),
            timezone=timezone,
            device_id=device_id,
            doors=_int_option(options, "doors", 4, 1, 4),
            capacity=_int_option(options, "capacity", 20_000, 1, 1_000_000),
            listen=listen,
            listener_address=listener_address,
            marker_card=marker,
            audit_records=_int_option(options, "audit_records", 4, 0, 1000),
            clock_check_s=_float_option(options, "clock_check_s", 300.0, 0.0, 86400.0),
            max_clock_drift_s=_float_option(options, "max_clock_drift_s", 2.0, 0.0, 3600.0),
            rounding="inward" if rounding == "inward" else "outward",
        )

    # ------------------------------------------------------------------ life cycle

    @property
    def requests(self) -> int:
        """Request packets sent since the driver was created."""
        return self._link.requests

    @property
    def listening_on(self) -> tuple[str, int] | None:
        """Where pushed events are received (after :meth:`open`), or None."""
        if self._listener is None:
            return None
        return self._listener.host, self._listener.port

    async def open(self) -> None:
        async with self._lock:
            self._link.closed = False
            try:
                if self._listen is not None and self._listener is None:
                    self._listener = await EventListener.acquire(*self._listen)
                    self._listener.subscribe(self.serial, self._on_pushed)
                await self._identify()
                await self._check_generation()
                await self._configure()
                await self._keep_clock(force=True)
            except BaseException:
                self._link.closed = True
                self._release_listener()
                raise

    async def close(self) -> None:
        self._link.closed = True
        self._release_listener()

    def _release_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.unsubscribe(self.serial)
            listener.release()

    async def _identify(self) -> None:
        reply = await self._link.call("GET_CONTROLLER", "get_controller")
        self._firmware = str(getattr(reply, "version", ""))

    async def _configure(self) -> None:
        """Settings the controller loses with its memory: special events, the listener."""
        reply = await self._link.call("RECORD_SPECIAL_EVENTS", "record_special_events", True)
        if not reply.updated:
            raise VerifyMismatch(
                f"{self._link.name}: the controller refused to record door events",
                device_id=self.device_id,
            )
        if self._listener is None:
            return
        host, port = self._listener_address or (self._listener.host, self._listener.port)
        if host == "0.0.0.0":
            raise ValueError(
                "listener_address: required when listen binds 0.0.0.0 (the address the "
                "controller sends events to)"
            )
        current = await self._link.call("GET_LISTENER", "get_listener")
        if str(current.address) == host and current.port == port:
            return
        reply = await self._link.call(
            "SET_LISTENER", "set_listener", ipaddress.IPv4Address(host), port, 0
        )
        if not reply.ok:
            raise VerifyMismatch(
                f"{self._link.name}: the controller refused the event listener {host}:{port}",
                device_id=self.device_id,
            )

    # ------------------------------------------------------------------ identity

    async def read_info(self) -> ControllerInfo:
        async with self._lock:
            await self._identify()
            changed = await self._check_generation()
            if changed:
                await self._configure()
            await self._keep_clock()
            assert self._generation is not None
            return ControllerInfo(
                controller_id=str(self.serial),
                doors=self.doors,
                capacity=self.capacity,
                generation=self._generation,
                firmware=self._firmware,
            )

    async def _check_generation(self) -> bool:
        """Read the marker card; write a new one (a new generation) when it is missing.
        Returns True when the generation changed."""
        reply = await self._link.call("GET_CARD marker", "get_card", self.marker_card)
        generation = self._marker_generation(reply)
        if generation is not None:
            if self._generation is not None and generation != self._generation:
                log.warning(
                    "%s: generation changed %d -> %d", self._link.name, self._generation, generation
                )
                self._image = None
            changed = generation != self._generation
            self._generation = generation
            return changed
        previous = self._generation
        generation = random.randint(1, PIN_MAX)
        while generation == previous:
            generation = random.randint(1, PIN_MAX)
        if previous is None:
            log.info("%s: no marker card; starting generation %d", self._link.name, generation)
        else:
            log.warning(
                "%s: the marker card is gone: the controller lost its memory (generation %d -> %d)",
                self._link.name,
                previous,
                generation,
            )
        self._image = None
        stored = await self._link.call(
            "PUT_CARD marker",
            "put_card",
            self.marker_card,
            FIRST_DAY,
            FIRST_DAY,
            0,
            0,
            0,
            0,
            generation,
        )
        back = await self._link.call("GET_CARD marker", "get_card", self.marker_card)
        if not stored.stored or self._marker_generation(back) != generation:
            raise VerifyMismatch(
                f"{self._link.name}: could not store the marker card {self.marker_card}",
                device_id=self.device_id,
            )
        self._generation = generation
        return True

    def _marker_generation(self, reply: Any) -> int | None:
        if reply.card_number != self.marker_card:
            return None
        doors = (reply.door_1, reply.door_2, reply.door_3, reply.door_4)
        if any(doors) or not 1 <= reply.pin <= PIN_MAX:
            log.warning(
                "%s: marker card %d holds doors %s and PIN %s; not the driver's marker",
                self._link.name,
                self.marker_card,
                doors,
                reply.pin,
            )
            return None
        return int(reply.pin)

    # ------------------------------------------------------------------ the card table

    def _card(self, reply: Any) -> Card:
        start = reply.start_date or date.min
        end = reply.end_date or date.min
        return Card(
            int(reply.card_number),
            start,
            end,
            (reply.door_1, reply.door_2, reply.door_3, reply.door_4),
            int(reply.pin),
        )

    def _profile(self, reply: Any) -> Profile:
        segments = []
        for i in (1, 2, 3):
            start = getattr(reply, f"segment_{i}_start") or dtime(0)
            end = getattr(reply, f"segment_{i}_end") or dtime(0)
            segments.append((start, end))
        s1, s2, s3 = segments
        content = ProfileContent(
            reply.start_date or date.min,
            reply.end_date or date.min,
            (
                reply.monday,
                reply.tuesday,
                reply.wednesday,
                reply.thursday,
                reply.friday,
                reply.saturday,
                reply.sunday,
            ),
            (s1, s2, s3),
        )
        return Profile(int(reply.profile_id), content, int(reply.linked_profile_id))

    async def _count(self) -> int:
        return int((await self._link.call("GET_CARDS", "get_cards")).cards)

    async def _read_table(self) -> Table:
        """Every card record (by index) and every profile they can reach."""
        count = await self._count()
        cards: dict[int, Card] = {}
        live = 0
        index = 1
        while live < count and index <= self.capacity + 1:
            reply = await self._link.call(f"GET_CARD_BY_INDEX {index}", "get_card_by_index", index)
            index += 1
            number = reply.card_number
            if number == 0:
                log.warning(
                    "%s: the card table ends at index %d with %d of %d records",
                    self._link.name,
                    index - 1,
                    live,
                    count,
                )
                break
            if number == DELETED:
                continue
            live += 1
            if number != self.marker_card:
                cards[int(number)] = self._card(reply)
        profiles: dict[int, Profile] = {}
        todo = sorted({p for card in cards.values() for p in card.profile_ids()})
        seen: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            profile = await self._read_profile(pid)
            if profile is not None:
                profiles[pid] = profile
                if profile.linked in PROFILE_IDS:
                    todo.append(profile.linked)
        return Table(cards, profiles)

    async def _read_profile(self, pid: int) -> Profile | None:
        reply = await self._link.call(f"GET_TIME_PROFILE {pid}", "get_time_profile", pid)
        if reply.profile_id == 0:
            return None
        if reply.profile_id != pid:
            raise ProtocolError(
                f"{self._link.name}: asked for time profile {pid}, got {reply.profile_id}",
                device_id=self.device_id,
                field="profile_id",
            )
        return self._profile(reply)

    async def _read_card(self, number: int) -> Card | None:
        reply = await self._link.call(f"GET_CARD {number}", "get_card", number)
        if reply.card_number == 0:
            return None
        if reply.card_number != number:
            raise ProtocolError(
                f"{self._link.name}: asked for card {number}, got {reply.card_number}",
                device_id=self.device_id,
                field="card_number",
            )
        return self._card(reply)

    async def read_checksum(self) -> int:
        async with self._lock:
            if self._generation is None:
                await self._check_generation()
            if self._image is None or not await self._audit(self._image):
                self._image = await self._read_table()
                self._audit_cursor = 0
            return self._image.checksum()

    async def read_table(self) -> Table:
        """Read the whole card table and the profiles its cards use (a full read)."""
        async with self._lock:
            return await self._read_table()

    async def _audit(self, image: Table) -> bool:
        """Card count and a few records against the verified copy."""
        count = await self._count()
        if count != len(image.cards) + 1:
            log.warning(
                "%s: the controller holds %d cards, the verified table %d and the marker",
                self._link.name,
                count,
                len(image.cards),
            )
            return False
        keys: list[tuple[str, int]] = [("card", n) for n in sorted(image.cards)]
        keys += [("profile", p) for p in sorted(image.reachable_profiles())]
        for _ in range(min(self.audit_records, len(keys))):
            kind, key = keys[self._audit_cursor % len(keys)]
            self._audit_cursor += 1
            if kind == "card":
                same = await self._read_card(key) == image.cards[key]
            else:
                same = await self._read_profile(key) == image.profiles.get(key)
            if not same:
                log.warning("%s: %s %d differs from the verified table", self._link.name, kind, key)
                return False
        return True

    async def write_allow_list(
        self,
        entries: list[AllowEntry],
        schedules: list[HardwareSchedule],
        *,
        progress: ProgressCallback | None = None,
    ) -> AllowListResult:
        started = time.monotonic()
        desired = desired_table(
            entries,
            schedules,
            doors=self.doors,
            tz=self.tz,
            rounding=self.rounding,
            reserved=frozenset({self.marker_card}),
        )
        if len(desired.cards) + 1 > self.capacity:
            raise ValueError(
                f"entries: {len(desired.cards)} cards and the marker exceed the capacity of "
                f"controller {self.serial} ({self.capacity})"
            )
        if desired.dropped:
            log.info(
                "%s: %d entries cover no whole day and grant nothing on this controller",
                self._link.name,
                desired.dropped,
            )
        async with self._lock:
            before = self._link.requests
            if self._generation is None:
                await self._check_generation()
            current = self._image if self._image is not None else await self._read_table()
            the_plan = plan(desired, current)
            self.last_plan = the_plan
            self._image = None
            total = len(the_plan.steps)
            for done, step in enumerate(the_plan.steps, start=1):
                await self._apply(step)
                if progress is not None:
                    progress(WriteProgress(done=done, total=total))
            await self._verify(the_plan, current)
            self._image = the_plan.target
            self._audit_cursor = 0
            return AllowListResult(
                checksum=the_plan.target.checksum(),
                entries=len(the_plan.target.cards),
                registers_written=total,
                requests=self._link.requests - before,
                seconds=time.monotonic() - started,
            )

    async def _apply(self, step: PutCard | DeleteCard | SetProfile) -> None:
        name = self._link.name
        if isinstance(step, DeleteCard):
            reply = await self._link.call(f"DELETE_CARD {step.number}", "delete_card", step.number)
            if not reply.deleted:
                log.info("%s: card %d was already gone", name, step.number)
            return
        if isinstance(step, PutCard):
            c = step.card
            reply = await self._link.call(
                f"PUT_CARD {c.number}", "put_card", c.number, c.start, c.end, *c.doors, c.pin
            )
            if not reply.stored:
                raise VerifyMismatch(
                    f"{name}: the controller refused card {c.number} (card table full?)",
                    device_id=self.device_id,
                )
            return
        p = step.profile
        c2 = p.content
        (a1, b1), (a2, b2), (a3, b3) = c2.segments
        reply = await self._link.call(
            f"SET_TIME_PROFILE {p.profile_id}",
            "set_time_profile",
            p.profile_id,
            c2.start,
            c2.end,
            *c2.weekdays,
            a1,
            b1,
            a2,
            b2,
            a3,
            b3,
            p.linked,
        )
        if not reply.stored:
            raise VerifyMismatch(
                f"{name}: the controller refused time profile {p.profile_id}",
                device_id=self.device_id,
            )

    async def _verify(self, the_plan: Plan, current: Table) -> None:
        """Read back what the plan wrote: every record, the count and the marker."""
        name = self._link.name
        target = the_plan.target
        problems: list[str] = []
        for step in the_plan.steps:
            if isinstance(step, PutCard):
                held = await self._read_card(step.card.number)
                if held != step.card:
                    problems.append(f"card {step.card.number} reads {held}, wrote {step.card}")
            elif isinstance(step, DeleteCard):
                if await self._read_card(step.number) is not None:
                    problems.append(f"card {step.number} is still there after its delete")
            else:
                held_profile = await self._read_profile(step.profile.profile_id)
                if held_profile != step.profile:
                    problems.append(f"time profile {step.profile.profile_id} reads {held_profile}")
            if len(problems) >= 5:
                break
        count = await self._count()
        if count != len(target.cards) + 1:
            problems.append(f"it holds {count} cards, expected {len(target.cards)} and the marker")
        marker = await self._link.call("GET_CARD marker", "get_card", self.marker_card)
        if self._marker_generation(marker) != self._generation:
            problems.append("the marker card is gone (memory lost during the write?)")
        if problems:
            raise VerifyMismatch(
                f"{name}: after the write " + "; ".join(problems), device_id=self.device_id
            )

    # ------------------------------------------------------------------ doors

    def _check_door(self, door: int) -> None:
        if isinstance(door, bool) or not isinstance(door, int) or not 1 <= door <= self.doors:
            raise ValueError(f"door: must be in 1..{self.doors}, got {door!r}")

    async def _door_control(self, door: int) -> tuple[int, int]:
        reply = await self._link.call(f"GET_DOOR_CONTROL {door}", "get_door_control", door)
        if reply.door != door:
            raise ProtocolError(
                f"{self._link.name}: asked for door {door}, got door {reply.door}",
                device_id=self.device_id,
                field="door",
            )
        return int(reply.mode), int(reply.delay)

    async def _set_door_control(self, door: int, mode: int, delay: int) -> None:
        reply = await self._link.call(
            f"SET_DOOR_CONTROL {door}", "set_door_control", door, mode, delay
        )
        if (reply.door, reply.mode, reply.delay) != (door, mode, delay):
            raise VerifyMismatch(
                f"{self._link.name}: door {door} holds mode {reply.mode} and delay "
                f"{reply.delay} s, wrote {mode} and {delay} s",
                device_id=self.device_id,
            )

    async def set_door_mode(self, door: int, mode: DoorMode) -> None:
        self._check_door(door)
        try:
            code = MODE_CODES[DoorMode(mode)]
        except (KeyError, ValueError):
            raise ValueError(
                f"mode: a UHPPOTE door is {', '.join(m.value for m in MODE_CODES)}; "
                f"{mode!r} has no control mode on this device"
            ) from None
        async with self._lock:
            _, delay = await self._door_control(door)
            await self._set_door_control(door, code, delay)

    # ------------------------------------------------------------------ settings

    async def read_settings(self) -> ControllerSettings:
        """Every door's control mode and open delay (GET_DOOR_CONTROL, one request a door).

        ``pulse_seconds`` is door 1's open delay; the driver writes the same delay to every
        door, and a door that holds another one is logged. ``held_open_seconds`` is ``None``:
        the controller has no held-open time to read or set (it raises its own "open too
        long" alarm, reported as :attr:`~drivers.base.ControllerEventKind.HELD_OPEN`)."""
        async with self._lock:
            held = [await self._door_control(door) for door in range(1, self.doors + 1)]
        modes: list[tuple[int, DoorMode]] = []
        for door, (code, _) in enumerate(held, start=1):
            mode = CODE_MODES.get(code)
            if mode is None:
                raise ProtocolError(
                    f"{self._link.name}: door {door} reports unknown control mode {code}",
                    device_id=self.device_id,
                    field="mode",
                )
            modes.append((door, mode))
        delays = [delay for _, delay in held]
        if len(set(delays)) > 1:
            log.warning(
                "%s: the doors hold different open delays %s; reporting door 1's",
                self._link.name,
                delays,
            )
        return ControllerSettings(
            pulse_seconds=delays[0], held_open_seconds=None, door_modes=tuple(modes)
        )

    async def write_settings(self, settings: ControllerSettings) -> None:
        """Door control modes and open delays through SET_DOOR_CONTROL (mode and delay of one
        door per request; only doors whose mode or delay changes are written), each verified
        by the controller's reply and then all of them by :meth:`read_settings`.

        ``pulse_seconds`` (1..255) becomes every door's open delay. Door modes are
        ``locked`` (controlled), ``unlocked`` (normally open) and ``lockdown`` (normally
        closed); ``scheduled`` and ``held_open_seconds`` have no setting on this controller and
        are refused before anything is written."""
        pulse = settings.pulse_seconds
        if pulse is not None and (
            isinstance(pulse, bool) or not isinstance(pulse, int) or not 1 <= pulse <= 255
        ):
            raise ValueError(f"pulse_seconds: must be an integer in 1..255, got {pulse!r}")
        if settings.held_open_seconds is not None:
            raise ValueError(
                "held_open_seconds: a UHPPOTE controller has no held-open time to set (its "
                "'open too long' alarm is fixed); leave it unset for this door"
            )
        wanted: dict[int, int] = {}
        for door, mode in settings.door_modes:
            if isinstance(door, bool) or not isinstance(door, int):
                raise ValueError(f"door_modes: door must be an integer, got {door!r}")
            if not 1 <= door <= self.doors:
                raise ValueError(f"door_modes: door must be in 1..{self.doors}, got {door}")
            try:
                wanted[door] = MODE_CODES[DoorMode(mode)]
            except (KeyError, ValueError):
                raise ValueError(
                    f"door_modes: door {door}: a UHPPOTE door is "
                    f"{', '.join(m.value for m in MODE_CODES)}; {mode!r} has no control mode "
                    "on this device"
                ) from None
        doors = range(1, self.doors + 1) if pulse is not None else sorted(wanted)
        async with self._lock:
            for door in doors:
                code, delay = await self._door_control(door)
                new_code = wanted.get(door, code)
                new_delay = pulse if pulse is not None else delay
                if (new_code, new_delay) != (code, delay):
                    await self._set_door_control(door, new_code, new_delay)
        held = await self.read_settings()
        if settings.differs_from(held) or (pulse is not None and held.pulse_seconds != pulse):
            raise VerifyMismatch(
                f"{self._link.name}: after writing its settings the controller holds {held}",
                device_id=self.device_id,
            )

    async def set_door_delay(self, door: int, seconds: int) -> None:
        """How long a door stays unlocked after a grant or a pulse (0..255 s)."""
        self._check_door(door)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= 255:
            raise ValueError(f"seconds: must be a whole number in 0..255, got {seconds!r}")
        async with self._lock:
            mode, _ = await self._door_control(door)
            await self._set_door_control(door, mode, seconds)

    async def door_delay(self, door: int) -> int:
        self._check_door(door)
        async with self._lock:
            return (await self._door_control(door))[1]

    async def pulse_door(self, door: int) -> None:
        self._check_door(door)
        async with self._lock:
            reply = await self._link.call(f"OPEN_DOOR {door}", "open_door", door)
            if not reply.opened:
                raise VerifyMismatch(
                    f"{self._link.name}: the controller did not open door {door}",
                    device_id=self.device_id,
                )

    async def door_status(self, door: int) -> DoorStatus:
        self._check_door(door)
        async with self._lock:
            code, _ = await self._door_control(door)
            status = await self._link.call("GET_STATUS", "get_status")
        mode = CODE_MODES.get(code)
        if mode is None:
            raise ProtocolError(
                f"{self._link.name}: door {door} reports unknown control mode {code}",
                device_id=self.device_id,
                field="mode",
            )
        return DoorStatus(
            door=door,
            mode=mode,
            open=bool(getattr(status, f"door_{door}_open")),
            forced=door in self._forced,
            held_open=door in self._held,
        )

    # ------------------------------------------------------------------ events

    def _on_pushed(self, pushed: Any) -> None:
        raw = ev.RawEvent.from_push(pushed)
        if raw.index <= self._pushed_newest:
            self._reject_event(
                raw.index, f"replays index {raw.index} (newest {self._pushed_newest})"
            )
            return
        try:
            ev.check(raw, doors=self.doors)
        except ev.EventError as exc:
            self._reject_event(raw.index, str(exc))
            return
        self._pushed_newest = raw.index
        self._pushed[raw.index] = raw
        while len(self._pushed) > PUSHED_KEPT:
            self._pushed.popitem(last=False)
        self._note_door(raw)
        self._pushed_signal.set()

    def _reject_event(self, index: int, reason: str) -> None:
        self.events_rejected += 1
        log.warning("%s: rejected event %d: %s", self._link.name, index, reason)

    def _note_door(self, raw: ev.RawEvent) -> None:
        """Follow the doors' alarms through the events, newest index last."""
        if raw.index <= self._door_noted:
            return
        self._door_noted = raw.index
        if raw.reason == ev.REASON_FORCED_OPEN:
            self._forced.add(raw.door)
        elif raw.reason == ev.REASON_OPEN_TOO_LONG:
            self._held.add(raw.door)
        elif raw.reason == ev.REASON_DOOR_CLOSED:
            self._forced.discard(raw.door)
            self._held.discard(raw.door)

    async def wait_for_events(self, timeout_s: float) -> bool:
        if self._listener is None:
            return await super().wait_for_events(timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                await self._pushed_signal.wait()
        except TimeoutError:
            return False
        self._pushed_signal.clear()
        return True

    async def read_events(self, after_sequence: int, *, limit: int = 64) -> list[ControllerEvent]:
        if isinstance(after_sequence, bool) or not 0 <= after_sequence <= U32_MAX:
            raise ValueError(f"after_sequence: must be in 0..{U32_MAX}, got {after_sequence}")
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        async with self._lock:
            status = await self._link.call("GET_STATUS", "get_status")
            newest = int(status.event_index)
            start = after_sequence
            if start == 0:
                bookmark = int(
                    (await self._link.call("GET_EVENT_INDEX", "get_event_index")).event_index
                )
                if bookmark <= newest:
                    start = bookmark
            if start > newest:
                if not self.event_log_reset:
                    self._new_gaps.append(EventGap(start, newest, "reset"))
                    log.warning(
                        "%s: the controller's newest event is %d, below the cursor %d: its "
                        "event log was reset or the controller replaced",
                        self._link.name,
                        newest,
                        start,
                    )
                self.event_log_reset = True
                return []
            self.event_log_reset = False
            cursor = self._skip[1] if self._skip and self._skip[0] == start else start
            out: list[ControllerEvent] = []
            budget = 4 * limit + 16
            while cursor < newest and len(out) < limit and budget > 0:
                budget -= 1
                index = cursor + 1
                raw = self._pushed.pop(index, None)
                if raw is None:
                    fetched = await self._fetch_event(index)
                    if fetched is None:
                        break
                    raw = fetched
                    index = raw.index  # past a gap of overwritten events: the oldest kept
                    try:
                        ev.check(raw, doors=self.doors)
                    except ev.EventError as exc:
                        self._reject_event(index, str(exc))
                        cursor = index
                        continue
                    self._note_door(raw)
                cursor = index
                event = ev.to_contract(raw, self.tz, self._deny_reason)
                if event is not None:
                    out.append(event)
            last_returned = out[-1].sequence if out else start
            self._skip = (last_returned, cursor) if cursor > last_returned else None
            self.last_event_index = max(self.last_event_index, cursor)
            for stale in [i for i in self._pushed if i <= cursor]:
                del self._pushed[stale]
            return out

    def _deny_reason(self, raw: ev.RawEvent) -> DenyReason:
        """Why a swipe was denied; "no privilege" told apart with the card's verified record
        (its door permission, its dates)."""
        if raw.reason != ev.REASON_NO_PRIVILEGE:
            return ev.deny_reason(raw)
        card = self._image.cards.get(raw.card) if self._image is not None else None
        if card is None or not 1 <= raw.door <= len(card.doors):
            return DenyReason.OTHER
        if card.doors[raw.door - 1] == 0:
            return DenyReason.DOOR_NOT_ALLOWED
        day = raw.timestamp.date() if raw.timestamp is not None else None
        if day is not None and not card.start <= day <= card.end:
            return DenyReason.OUTSIDE_VALIDITY
        return DenyReason.OTHER

    async def _fetch_event(self, index: int) -> ev.RawEvent | None:
        """The event at ``index``; the oldest one kept when ``index`` was overwritten; None
        when there is none (yet)."""
        reply = await self._link.call(f"GET_EVENT {index}", "get_event", index)
        kind = int(reply.event_type)
        if kind == ev.TYPE_NONE:
            return None
        if kind == ev.TYPE_OVERWRITTEN:
            oldest = ev.RawEvent.from_reply(
                await self._link.call("GET_EVENT oldest", "get_event", 0)
            )
            if oldest.kind in (ev.TYPE_NONE, ev.TYPE_OVERWRITTEN) or oldest.index <= index:
                raise ProtocolError(
                    f"{self._link.name}: event {index} is overwritten but the oldest event "
                    f"is {oldest.index}",
                    device_id=self.device_id,
                    field="index",
                )
            log.warning(
                "%s: events %d..%d were overwritten before they were read",
                self._link.name,
                index,
                oldest.index - 1,
            )
            self.event_gaps.append((index, oldest.index - 1))
            del self.event_gaps[:-100]
            self._new_gaps.append(EventGap(index, oldest.index - 1, "overwritten"))
            return oldest
        raw = ev.RawEvent.from_reply(reply)
        if raw.index != index:
            self._reject_event(index, f"asked for index {index}, the reply is index {raw.index}")
            raise ProtocolError(
                f"{self._link.name}: asked for event {index}, got event {raw.index}",
                device_id=self.device_id,
                field="index",
            )
        return raw

    def take_event_gaps(self) -> list[EventGap]:
        """Overwritten indexes and event-log resets found since the last call."""
        gaps, self._new_gaps = self._new_gaps, []
        return gaps

    async def ack_events(self, up_to_sequence: int) -> None:
        if isinstance(up_to_sequence, bool) or not 0 <= up_to_sequence <= U32_MAX:
            raise ValueError(f"up_to_sequence: must be in 0..{U32_MAX}, got {up_to_sequence}")
        async with self._lock:
            await self._link.call(
                f"SET_EVENT_INDEX {up_to_sequence}", "set_event_index", up_to_sequence
            )

    async def event_bookmark(self) -> int:
        """The controller's event-index bookmark (the last acknowledged event)."""
        async with self._lock:
            return int((await self._link.call("GET_EVENT_INDEX", "get_event_index")).event_index)

    # ------------------------------------------------------------------ clock

    async def read_clock(self) -> datetime:
        """The controller's clock (UTC)."""
        async with self._lock:
            return await self._read_clock()

    async def _read_clock(self) -> datetime:
        reply = await self._link.call("GET_TIME", "get_time")
        if reply.datetime is None:
            raise ProtocolError(
                f"{self._link.name}: the controller's clock is not a valid date and time",
                device_id=self.device_id,
                field="datetime",
            )
        local: datetime = reply.datetime
        return local.replace(tzinfo=self.tz).astimezone(UTC)

    async def set_clock(self, at: datetime) -> None:
        """Set the controller's clock to ``at`` (an aware datetime; whole seconds)."""
        if at.tzinfo is None:
            raise ValueError("at: must be timezone-aware")
        async with self._lock:
            await self._set_clock(at)

    async def _set_clock(self, at: datetime) -> None:
        local = at.astimezone(self.tz).replace(tzinfo=None, microsecond=0)
        reply = await self._link.call("SET_TIME", "set_time", local)
        held = reply.datetime
        if held is None or abs((held - local).total_seconds()) > self.max_clock_drift_s:
            raise VerifyMismatch(
                f"{self._link.name}: after SET_TIME {local} the clock reads {held}",
                device_id=self.device_id,
            )

    async def sync_clock(self, now: Callable[[], datetime] | None = None) -> float:
        """Compare the controller's clock with ``now()`` (default: the system clock) and set
        it when it is more than ``max_clock_drift_s`` off; returns the drift found (seconds,
        positive when the controller is ahead)."""
        async with self._lock:
            return await self._sync_clock(now or (lambda: datetime.now(UTC)))

    async def _sync_clock(self, now: Callable[[], datetime]) -> float:
        before = now()
        held = await self._read_clock()
        after = now()
        reference = before + (after - before) / 2
        # The controller counts whole seconds: up to one second behind is exact.
        drift = (held - reference + timedelta(milliseconds=500)).total_seconds()
        self._clock_checked = time.monotonic()
        self.last_clock_drift_s = drift
        if abs(drift) > self.max_clock_drift_s:
            log.warning("%s: clock is %.1f s off; setting it", self._link.name, drift)
            await self._set_clock(now())
        return drift

    async def _keep_clock(self, *, force: bool = False) -> None:
        if force or time.monotonic() - self._clock_checked >= self.clock_check_s:
            await self._sync_clock(lambda: datetime.now(UTC))


__all__ = ["DEFAULT_PORT", "UhppoteDoorController"]
