"""Contracts between the gateway and hardware: one abstract class per device role.

This module is the reference for anyone writing a driver. A driver adapts one wire protocol
to one of the roles below; the gateway never speaks a protocol itself and a driver never
decides policy (who may open what): it only carries *images* and *allow-lists* that the
gateway computed, and reports what the device really holds.

Roles
-----
:class:`KeyStation`
    A programming station for offline CLIQ-style keys (a desk unit at an operator or a
    wall-mounted unit on site). Keys are inserted and removed; while a key is in, the
    gateway reads its image, writes a new one atomically and collects its audit trail.
:class:`DoorController`
    An online controller of a few doors, holding an allow-list of credential numbers and
    deciding at its readers itself.

Rules every driver follows
--------------------------
* Every method is a coroutine and must not block the event loop for more than a few
  milliseconds; do blocking I/O in the protocol library's own async API or an executor.
* Writes are *atomic*: the device ends up holding either the old content or the new one,
  never a mix. A write returns only after the device has confirmed the new content by a
  read-back or checksum comparison; otherwise it raises. (Settings and door modes, written
  field by field, are the exception: see :meth:`DoorController.write_settings`.)
* Errors are reported with the exceptions below and nothing else escapes a driver's public
  methods (wrap library exceptions), except ``ValueError`` for arguments the contract or the
  device cannot take (raised before anything is sent). ``DeviceUnavailable`` means "try again
  later", ``ProtocolError`` means the device answered with something that is not the
  protocol, ``VerifyMismatch`` means the device did not end up holding what was written.
* Times cross the contract as timezone-aware UTC ``datetime`` objects. Weekly schedules are
  local wall-clock minutes; the device evaluates them in the site time zone it is set up
  with (the gateway and the device are configured with the same ``timezone``).

Connection life cycle
---------------------
* ``open()`` connects and performs the handshake; it may be called again after ``close()``
  (or after the link was lost) to connect the same object again.
* ``close()`` releases every resource (ports, sockets, tasks) and may be called twice. After
  ``close()`` every method except ``open()`` and ``close()`` raises ``DeviceUnavailable``.
* **Who reconnects: the gateway.** When a call raises :class:`DeviceUnavailable` (or any
  other :class:`DriverError`), the gateway's device worker closes the driver, waits with
  exponential backoff and jitter, builds a new driver object and opens it. A driver need not
  reconnect by itself, but it must stay safe to use after an error: the next call either
  works (the driver reopened its link on its own) or raises ``DeviceUnavailable`` again; it
  never hangs and never answers from a connection that was left half-way.
* Availability is derived from the errors: ``DeviceUnavailable`` (and a timeout of the
  gateway's own limit) makes a device *offline*; every other ``DriverError`` means it answers
  but refuses, and it stays *online* with an error state.

Time limits
-----------
* Every call ends on its own: it returns or raises (``DeviceTimeout`` when the device does
  not answer) within a bound that follows from the driver's options, and never waits for the
  device indefinitely. For one request it is the reply timeout times the attempts (plus, for
  drivers that must let a line fall silent before retransmitting, that silence); a call that
  needs several requests (an allow-list or key write) may take as many such bounds as
  requests, and a wait for the device to finish (a busy commit) has its own option. Each
  shipped driver documents its budget (``timeout_s``, ``retries``, ``commit_timeout_s``).
* The gateway also bounds every call by ``sync.device_timeout_s`` and cancels it when that
  passes; set it above the longest write a device needs.

Cancellation
------------
* Any call may be cancelled (the gateway's time limit, a shutdown). A cancelled write leaves
  the device holding **either the old content or the new one**: cancelling before the write
  reached its commit step leaves the old content (anything staged is discarded by the next
  write), cancelling after the commit was sent may leave either. The caller does not know
  which and must read back (``read_checksum``, ``read_key``) before recording anything; the
  gateway records a write only when the call returned. A cancelled ``write_settings`` may
  have written any subset of its fields.
* After a cancelled call the driver stays usable: the next call works (the driver may have
  dropped and reopened its link to get rid of a reply still in flight) or raises
  ``DeviceUnavailable``.

Concurrency
-----------
* Calls may be made concurrently from several tasks; the driver serialises them (a call
  waits until the one before it has finished). A multi-request operation (a write, an event
  window read) is never interleaved with another call's requests.
* :meth:`KeyStation.events` is consumed by one task at a time, and may be consumed while any
  other call runs (the gateway reads it in one task and reads and writes keys from another):
  events are queued by the driver as the station sends them, independent of the calls, and
  a key pulled during a write yields both the write's :class:`KeyRemoved` and the
  ``REMOVED`` event.

Progress
--------
``write_key`` and ``write_allow_list`` take ``progress``, a plain function called
synchronously on the event loop with :class:`WriteProgress` ``(done, total)`` as the device
acknowledges parts of the write: ``total`` is the size of the transfer in the driver's unit
(bytes of the image or delta sent for key stations; registers written, commit included, for
door controllers) and stays the same within one attempt; ``done`` grows strictly from one
call to the next and ``0 < done <= total``. A successful write ends with a call where
``done == total``. A driver that must start over (a stale delta base, a refused patch: the
full image or list is then sent) begins a new attempt, whose calls carry its own ``total``
from a small ``done`` again. A callback must return quickly; if it raises, the driver logs the
error and goes on with the write.

Adding a driver
---------------
Implement the role's abstract methods, give the class a ``from_options(options)`` class
method taking the ``options`` table of its device in the gateway configuration, and
register it in your distribution's metadata under the entry-point group
``lockgate.drivers``::

    [project.entry-points."lockgate.drivers"]
    acme-station = "acme_lockgate.station:AcmeKeyStation"

The gateway then uses it for every device whose configuration says ``driver = "acme-station"``
(see :func:`drivers.registry.load_driver`).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class DriverError(Exception):
    """Base of every error a driver raises. ``device_id`` names the device when known."""

    def __init__(self, message: str, *, device_id: str | None = None) -> None:
        super().__init__(message)
        self.device_id = device_id


class DeviceUnavailable(DriverError):
    """The device cannot be reached (port missing, connection refused, link down).

    The gateway marks the device offline with this message as the reason and retries
    with backoff."""


class DeviceTimeout(DeviceUnavailable):
    """The device did not answer within the protocol's time limit (after retries)."""


class ProtocolError(DriverError):
    """The device answered with bytes that are not valid protocol (bad CRC after every
    retransmission, unknown message, wrong length, out-of-range field).

    ``field`` names the offending field of the frame or register when known."""

    def __init__(
        self, message: str, *, device_id: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message, device_id=device_id)
        self.field = field


class VerifyMismatch(DriverError):
    """After a write, the device's read-back or checksum differs from what was written.

    The device is left holding its previous content (writes are atomic); the gateway will
    retry the whole write."""


class KeyRemoved(DriverError):
    """The key was pulled out of the station before the operation completed.

    For a write this guarantees the key kept its previous image."""


class NoKeyInserted(DriverError):
    """A key operation was requested while no key is in the station."""


# ---------------------------------------------------------------------------------------------
# Shared data types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleWindow:
    """One weekly interval of a hardware schedule, in local wall-clock minutes.

    ``days_mask`` bit 0 is Monday .. bit 6 Sunday. ``start_minute`` is inclusive,
    ``end_minute`` exclusive, both 0..1440 (1440 = midnight at the end of the day)."""

    days_mask: int
    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class HardwareSchedule:
    """A weekly schedule as devices store it: up to 8 :class:`ScheduleWindow`.

    Schedules are referred to by a small id (1..254) in images and allow-lists; id 0 always
    means "no restriction"."""

    schedule_id: int
    windows: tuple[ScheduleWindow, ...]


# --- key stations ----------------------------------------------------------------------------


class StationMounting(StrEnum):
    DESK = "desk"
    """Desk unit at an operator: keys are updated when the operator confirms."""
    WALL = "wall"
    """Wall-mounted unit on site: every inserted key is updated automatically."""


class StationCapability(StrEnum):
    DELTA = "delta"
    """The station can apply an access-list delta (add/remove entries) to the key's image."""
    AUDIT = "audit"
    """The station can read and clear a key's audit trail."""
    BLACKLIST = "blacklist"
    """Keys can carry blacklist entries for cylinders."""
    REVALIDATION = "revalidation"
    """Keys support a revalidation deadline."""


@dataclass(frozen=True, slots=True)
class StationInfo:
    """What a station said about itself when the link came up."""

    station_id: str
    protocol_version: int
    mounting: StationMounting
    capabilities: frozenset[StationCapability]
    max_access_entries: int
    max_frame_payload: int
    firmware: str = ""


class KeyEventKind(StrEnum):
    INSERTED = "inserted"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A key was inserted into or removed from the station."""

    kind: KeyEventKind
    serial: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One line of a key's access list: a cylinder, the window and schedule it applies in.

    ``valid_from``/``valid_until`` of ``None`` mean unbounded; ``schedule_id`` 0 means any time.
    """

    cylinder: int
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    schedule_id: int = 0


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    """Blacklist that a key carries to a cylinder: the full list of key serials the cylinder
    must refuse, at a ``version`` that only grows. A cylinder replaces its list only with a
    strictly newer version, so stale data never overwrites newer."""

    cylinder: int
    version: int
    serials: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeyImage:
    """Everything a key holds that decides what it opens.

    ``enabled`` false makes the key open nothing (an inactive key). ``valid_from`` /
    ``valid_until`` bound the whole key; ``revalidate_by`` is the instant after which the key
    refuses to open anything until it has been updated at a station again. ``revision`` is an
    opaque 16-hex-digit tag chosen by the gateway, stored on the key and read back unchanged.
    """

    serial: str
    revision: str
    enabled: bool
    valid_from: datetime | None
    valid_until: datetime | None
    revalidate_by: datetime | None
    schedules: tuple[HardwareSchedule, ...] = ()
    access: tuple[AccessEntry, ...] = ()
    blacklists: tuple[BlacklistEntry, ...] = ()


class AuditOutcome(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    BLACKLIST_APPLIED = "blacklist_applied"
    """A cylinder accepted a blacklist version from this key."""


@dataclass(frozen=True, slots=True)
class KeyAuditRecord:
    """One record of a key's audit trail.

    Records come from the key itself (what it opened or was refused) and from cylinders that
    handed their own event buffers to the visiting key (``key_serial`` is then the key that
    the cylinder saw, which may be another key). ``sequence`` is unique per (``source``,
    ``cylinder``) and lets the gateway deduplicate records it has already stored.
    """

    sequence: int
    at: datetime
    cylinder: int
    key_serial: str
    outcome: AuditOutcome
    reason: str = ""
    blacklist_version: int = 0
    source: Literal["key", "cylinder"] = "key"


@dataclass(frozen=True, slots=True)
class WriteProgress:
    """Progress of a long write: bytes (or registers) done out of the total."""

    done: int
    total: int


ProgressCallback = Callable[[WriteProgress], None]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A verified write: the revision the device now holds and what it cost on the wire."""

    revision: str
    bytes_sent: int
    frames_sent: int
    delta: bool = False
    seconds: float = 0.0


# --- door controllers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControllerInfo:
    """Identity of a door controller.

    ``generation`` changes every time the controller lost its memory (power loss, factory
    reset); the gateway compares it with the last one it saw and resyncs fully on change."""

    controller_id: str
    doors: int
    capacity: int
    generation: int
    firmware: str = ""


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One allow-list entry: a credential number (32-bit), the doors it may open (bit 0 =
    door 1), its window and schedule. A credential may have several entries."""

    credential: int
    doors_mask: int
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    schedule_id: int = 0
    pin: int = 0
    """Keypad PIN (1..999999) required with the card; 0 = none. Only drivers that enforce
    PINs use it."""


class DoorMode(StrEnum):
    LOCKED = "locked"
    """Opens only for granted credentials (normal operation)."""
    UNLOCKED = "unlocked"
    """Held open."""
    SCHEDULED = "scheduled"
    """Unlocked inside the door's schedule, locked outside."""
    LOCKDOWN = "lockdown"
    """Opens for nobody."""


@dataclass(frozen=True, slots=True)
class DoorStatus:
    door: int
    mode: DoorMode
    open: bool
    forced: bool
    held_open: bool


class ControllerEventKind(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    FORCED = "forced"
    HELD_OPEN = "held_open"
    PULSED = "pulsed"
    TAMPER = "tamper"
    TAMPER_CLEARED = "tamper_cleared"
    POWER_FAILURE = "power_failure"
    POWER_RESTORED = "power_restored"
    READER_OFFLINE = "reader_offline"
    READER_ONLINE = "reader_online"


class DenyReason(StrEnum):
    """Why a controller denied a credential (:attr:`ControllerEvent.reason`)."""

    UNKNOWN_CREDENTIAL = "unknown_credential"
    """No allow-list entry for the credential."""
    DOOR_NOT_ALLOWED = "door_not_allowed"
    """The credential's entries do not include this door."""
    OUTSIDE_VALIDITY = "outside_validity"
    """Outside every entry's validity window."""
    OUTSIDE_SCHEDULE = "outside_schedule"
    """Outside every entry's schedule."""
    LOCKDOWN = "lockdown"
    """The door is in lockdown."""
    UNREADABLE_CARD = "unreadable_card"
    """The reader sent card data that is not a credential number."""
    NO_ALLOW_LIST = "no_allow_list"
    """The controller holds no allow-list (never written, or lost)."""
    READER_NOT_SECURE = "reader_not_secure"
    """The read came over a link without its secure channel."""
    OTHER = "other"
    """A reason the driver's protocol has no name for."""


@dataclass(frozen=True, slots=True)
class ControllerEvent:
    """An event from the controller's FIFO, numbered by a sequence that only grows.

    ``reason`` says why a :attr:`ControllerEventKind.DENIED` event was denied; a driver must
    set it for every denial (:attr:`DenyReason.OTHER` when the device gives no reason the
    contract names) and leave it ``None`` for every other kind."""

    sequence: int
    kind: ControllerEventKind
    credential: int
    door: int
    at: datetime
    reason: DenyReason | None = None


@dataclass(frozen=True, slots=True)
class EventGap:
    """Events a controller lost before they were read (:meth:`DoorController.take_event_gaps`).

    ``reason`` is ``"overwritten"`` (the device's event log is a ring and these were
    overwritten; sequences ``first..last``) or ``"reset"`` (the device's newest event is
    below the caller's cursor: its log was cleared or the device replaced; ``first`` is the
    cursor, ``last`` the device's newest sequence)."""

    first: int
    last: int
    reason: Literal["overwritten", "reset"]


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """What a controller keeps besides its allow-list: lock release and held-open alarm
    times and each door's mode.

    In a value *written* (:meth:`DoorController.write_settings`), ``None`` and a door missing
    from ``door_modes`` mean "leave as the controller has it"; in a value *read*
    (:meth:`DoorController.read_settings`) every field is filled in and ``door_modes`` holds
    every door, except the fields the driver names in
    :attr:`DoorController.unsupported_settings` (the device has no such setting), which are
    ``None``. ``door_modes`` is a tuple of ``(door, mode)`` pairs, doors 1-based and in
    ascending order."""

    pulse_seconds: int | None = None
    """How long a grant or a pulse releases the lock."""
    held_open_seconds: int | None = None
    """How long a door may stand open before it counts as held open."""
    door_modes: tuple[tuple[int, DoorMode], ...] = ()

    def differs_from(self, held: ControllerSettings) -> bool:
        """Whether ``held`` (a value read) misses anything this (desired) value sets."""
        modes = dict(held.door_modes)
        return (
            (self.pulse_seconds is not None and self.pulse_seconds != held.pulse_seconds)
            or (
                self.held_open_seconds is not None
                and self.held_open_seconds != held.held_open_seconds
            )
            or any(modes.get(door) != mode for door, mode in self.door_modes)
        )


@dataclass(frozen=True, slots=True)
class AllowListResult:
    """A verified allow-list write."""

    checksum: int
    entries: int
    registers_written: int
    requests: int
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------


class Driver(abc.ABC):
    """Common life cycle of every driver: ``open`` then use then ``close``; usable as
    ``async with``. ``role`` tells the registry which contract the class implements."""

    role: ClassVar[Literal["key_station", "door_controller"]]

    @classmethod
    @abc.abstractmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        """Build the driver from its device's ``options`` table in the configuration.

        Raise ``ValueError`` naming the option for a missing or invalid option."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect to the device and perform the protocol handshake.

        Raises :class:`DeviceUnavailable` when the device cannot be reached and
        :class:`ProtocolError` when it answers but not in this protocol."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every resource. Idempotent."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class KeyStation(Driver):
    """A programming station for offline keys.

    After :meth:`open`, :attr:`info` describes the station. :meth:`events` yields a
    :class:`KeyEvent` for every insertion and removal (the first event after open reports a
    key that is already in). The key methods act on the key currently inserted and raise
    :class:`NoKeyInserted` when there is none and :class:`KeyRemoved` when it is pulled out
    during the operation.
    """

    role = "key_station"

    @property
    @abc.abstractmethod
    def info(self) -> StationInfo:
        """The station's identity and capabilities (valid after :meth:`open`)."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[KeyEvent]:
        """Key inserted / removed events, in order, until the driver is closed.

        Raises :class:`DeviceUnavailable` from the iterator when the link is lost."""

    @abc.abstractmethod
    async def read_key(self) -> KeyImage:
        """Read the whole image of the inserted key."""

    @abc.abstractmethod
    async def write_key(
        self, image: KeyImage, *, progress: ProgressCallback | None = None
    ) -> WriteResult:
        """Write ``image`` to the inserted key atomically and verify it.

        The driver may send a delta against the image it last read from this key when the
        station has :attr:`StationCapability.DELTA`; the result is the same. Either the key
        holds ``image`` when this returns, or it still holds its previous image and the
        method raised :class:`KeyRemoved`, :class:`VerifyMismatch`, :class:`DeviceTimeout`
        or :class:`ProtocolError`. ``progress`` is called as chunks are acknowledged."""

    @abc.abstractmethod
    async def read_audit(self) -> list[KeyAuditRecord]:
        """Read the inserted key's audit trail (its own records and those cylinders handed
        to it), oldest first."""

    @abc.abstractmethod
    async def clear_audit(self, count: int) -> None:
        """Erase the oldest ``count`` records of the inserted key's trail, after the gateway
        stored them: the first ``count`` records the last :meth:`read_audit` of this key
        returned (a sequence number cannot name a point in the trail: the key's own records
        and each cylinder's records are numbered by separate counters and interleave).

        Raises ``ValueError`` naming ``count`` when it is negative or more than were read,
        and :class:`VerifyMismatch` when the trail no longer starts with those records; in
        both cases nothing is erased."""


class DoorController(Driver):
    """An online door controller with an allow-list.

    The allow-list is written whole and atomically: entries go to a staging area, a commit
    copies it into the active list, and the controller's checksum of the active list is
    compared with the expected one. Events are read from a FIFO after a sequence number and
    acknowledged once stored, so none is lost when the gateway restarts."""

    role = "door_controller"

    atomic_writes: ClassVar[bool] = True
    """False for devices without an atomic commit (records are written one by one): their
    :meth:`write_allow_list` sends revocations first, verifies by reading back, and documents
    what a reader of the device can see while it runs."""

    unsupported_settings: ClassVar[frozenset[str]] = frozenset()
    """Fields of :class:`ControllerSettings` the device has no setting for (for example
    ``"held_open_seconds"``): :meth:`read_settings` reports them as ``None`` and
    :meth:`write_settings` refuses a value for them with a ``ValueError`` naming the field.
    Door modes a device cannot take are refused the same way, naming ``door_modes``."""

    def take_event_gaps(self) -> list[EventGap]:
        """Events the device lost before :meth:`read_events` could return them, found since
        the last call (each reported once). A device whose event log cannot lose events
        returns none (the default)."""
        return []

    async def wait_for_events(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the device to signal new events; True when it did.

        Drivers of devices that push events override this so that the gateway reads them at
        once; by default it waits out the timeout and the gateway polls."""
        await asyncio.sleep(timeout_s)
        return False

    @abc.abstractmethod
    async def read_info(self) -> ControllerInfo:
        """Read the controller's identity, door count, capacity and current generation."""

    @abc.abstractmethod
    async def write_allow_list(
        self,
        entries: list[AllowEntry],
        schedules: list[HardwareSchedule],
        *,
        progress: ProgressCallback | None = None,
    ) -> AllowListResult:
        """Replace the active allow-list and schedule table atomically and verify it.

        Raises ``ValueError`` when ``entries`` exceed the capacity, and
        :class:`VerifyMismatch` when the controller's checksum after commit differs."""

    @abc.abstractmethod
    async def read_checksum(self) -> int:
        """Checksum of the allow-list the controller is enforcing right now."""

    @abc.abstractmethod
    async def read_settings(self) -> ControllerSettings:
        """The lock release and held-open times and every door's mode, as the controller
        holds them now."""

    @abc.abstractmethod
    async def write_settings(self, settings: ControllerSettings) -> None:
        """Write the fields of ``settings`` that are set, and verify them by reading back.

        Raises ``ValueError`` naming the field for a value the contract or the controller
        cannot take (out of range, a door beyond the controller's doors) before anything is
        written, and :class:`VerifyMismatch` when the controller does not hold the values
        afterwards. Not atomic: a failure may leave some of the fields written."""

    @abc.abstractmethod
    async def read_clock(self) -> datetime:
        """The controller's clock, as an aware UTC datetime."""

    @abc.abstractmethod
    async def set_clock(self, at: datetime) -> None:
        """Set the controller's clock to the aware datetime ``at`` (whole seconds may be
        dropped)."""

    @abc.abstractmethod
    async def set_door_mode(self, door: int, mode: DoorMode) -> None:
        """Set a door's mode (1-based door number)."""

    @abc.abstractmethod
    async def pulse_door(self, door: int) -> None:
        """Unlock a door for the controller's pulse time (a remote "open now")."""

    @abc.abstractmethod
    async def door_status(self, door: int) -> DoorStatus:
        """Read one door's mode and status bits."""

    @abc.abstractmethod
    async def read_events(self, after_sequence: int, *, limit: int = 64) -> list[ControllerEvent]:
        """Events with a sequence greater than ``after_sequence``, oldest first."""

    @abc.abstractmethod
    async def ack_events(self, up_to_sequence: int) -> None:
        """Tell the controller that events up to and including ``up_to_sequence`` are stored
        and may be dropped from its FIFO."""


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """A device as the gateway's configuration names it: an id, the driver's entry-point
    name and the driver's own options."""

    device_id: str
    driver: str
    options: Mapping[str, Any] = field(default_factory=dict)
