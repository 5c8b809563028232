"""``OsdpReaderDriver``: lockgate as the OSDP control panel of the readers on one RS-485 bus.

Here the gateway is the panel: there is no door controller between it and the readers. The
driver holds each door's derived allow-list and decides every card read itself, locally, the
moment the read arrives: a grant pulses the strike relay on the reader's output, shows green
and beeps; a denial shows red. Every read, granted or not, becomes an access event with its
reason (:class:`~drivers.base.DenyReason`). Reader tamper and power reports and the reader's
link (online, offline) become device events; why a reader is offline is logged and named by
``read_info`` when no reader is online.

The :class:`~drivers.base.DoorController` contract maps onto the panel like this:

* ``write_allow_list`` validates the list, writes it to ``state_dir/allowlist.json``
  atomically (written under a temporary name, read back and compared by checksum, then
  renamed over the old file) and only then decides with it. After a restart the driver
  decides with the persisted list at once: no network to the gateway is needed.
* ``read_checksum`` is the checksum of the list in memory, checked against the file on disk;
  a file that changed or was damaged behind the driver's back reports the file's checksum
  (or 0), so the gateway writes the list again.
* ``read_info`` reports the panel's generation (``identity.json``): it changes when the
  state directory is new or its allow-list file was found damaged. It raises
  :class:`~drivers.base.DeviceUnavailable` while no reader is online, with each reader's
  reason, so the device's availability is the readers'.
* ``read_events``/``ack_events`` serve the journal (``events.jsonl``): events survive a
  restart until the gateway acknowledges them.

Secure channel: every reader has its own SCBK in the key file (mode 0600) and the library is
told to enforce it (no plain text, no default key). A reader still on its default key
(SCBK-D) is brought onto its own key only by :meth:`OsdpReaderDriver.install_key`, an
explicit operator action.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import osdp
import serial

from drivers.base import (
    AllowEntry,
    AllowListResult,
    ControllerEvent,
    ControllerEventKind,
    ControllerInfo,
    ControllerSettings,
    DenyReason,
    DeviceTimeout,
    DeviceUnavailable,
    DoorController,
    DoorMode,
    DoorStatus,
    HardwareSchedule,
    ProgressCallback,
    VerifyMismatch,
    WriteProgress,
)
from drivers.osdp import commands
from drivers.osdp.allowlist import AllowList
from drivers.osdp.cards import CardDataError, credential_from_read
from drivers.osdp.channel import SerialChannel, open_port
from drivers.osdp.journal import EventJournal
from drivers.osdp.keys import KeyFile, KeyFileError
from drivers.osdp.options import OsdpOptions, ReaderConfig, parse_options
from drivers.osdp.panel import COMPLETION_FAILED, COMPLETION_OK, Panel, PanelReader
from drivers.osdp.state import EVENTS, PanelState

log = logging.getLogger(__name__)

DEFAULT_HELD_OPEN_S = 30
MAX_PULSE_S = 25
FAST_FAILURE_S = 2.0
LIVENESS_S = 1.0
LIVENESS_STEP_S = 0.005
"""A session that fails this soon after it started failed on an answer, not on silence."""
SUPERVISE_S = 0.25
PULSE_CONFIRM_S = 3.0
MAX_SEQUENCE = 0xFFFFFFFF

EVENT_CARD_READ = osdp.Event.CardRead
EVENT_STATUS = osdp.Event.Status
EVENT_NOTIFICATION = osdp.Event.Notification
STATUS_LOCAL = osdp.StatusReportType.Local
NOTIFY_COMMAND = osdp.EventNotification.Command
NOTIFY_SC = osdp.EventNotification.SecureChannelStatus
NOTIFY_PD = osdp.EventNotification.PeripheralDeviceStatus
CAP_SECURITY = osdp.Capability.CommunicationSecurity
CAP_OUTPUT = osdp.Capability.OutputControl
CAP_LED = osdp.Capability.LEDControl
CAP_BUZZER = osdp.Capability.AudibleControl
COMMAND_NAMES = {
    osdp.Command.Output: "output",
    osdp.Command.LED: "led",
    osdp.Command.Buzzer: "buzzer",
    osdp.Command.Keyset: "keyset",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """One card read and what the panel did, with monotonic timestamps (seconds): when the
    read reached the driver and when its commands were queued for the reader."""

    door: int
    credential: int
    reason: DenyReason | None
    """Why it was denied; None: granted."""
    received: float
    decided: float
    commands: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InstallResult:
    """The outcome of :meth:`OsdpReaderDriver.install_key`."""

    door: int
    address: int
    installed: bool
    detail: str


@dataclass
class _Install:
    saw_default_key: bool = False


@dataclass
class _Reader:
    config: ReaderConfig
    online: bool = False
    sc_active: bool = False
    default_key: bool = False
    attempt_started: float = 0.0
    session_failed: bool = False
    restarting: bool = False
    """The latest session with the reader failed (and no new one has started yet)."""
    failed_at: float = 0.0
    """When the latest session failed (the library gave the reader up)."""
    attempts: int = 1
    """Sessions started with this reader since the driver opened."""
    reason: str = "not connected yet"
    can: dict[int, bool] = field(default_factory=dict)
    held: bool | None = None
    """The strike relay's permanent state last sent (None: not sent since online)."""
    install: _Install | None = None

    @property
    def name(self) -> str:
        return f"door {self.config.door} (reader {self.config.address})"


class OsdpReaderDriver(DoorController):
    """OSDP readers on one bus, with lockgate as their control panel (entry point
    ``osdp-reader``).

    Options (``from_options``):

    ``port``
        The serial device of the RS-485 adapter (``/dev/ttyUSB0``) or a pyserial URL.
    ``baudrate``
        9600, 19200, 38400, 57600, 115200 (default) or 230400; 8N1.
    ``state_dir``
        Where the allow-list, door modes, generation and event journal are kept (required).
    ``key_file``
        The SCBK file (default ``state_dir/scbk.json``); created 0600 when missing.
    ``address`` or ``readers``
        One reader by its OSDP address (0..126, default 1, door 1), or a list of tables
        ``{address, door, output, led, reader_no}``: the door each reader guards (1..n),
        the reader output that drives its strike relay (default 0) and its LED (default 0).
    ``timezone``
        The site's time zone, in which weekly schedules are evaluated (default
        Europe/Stockholm; must equal the gateway's).
    ``pulse_s``, ``deny_s``
        How long a grant releases the strike and shows green (default 3 s), and how long a
        denial shows red (default 2 s); at most 25.5 s.
    ``card_format``
        ``raw`` (default: the card's bits as the number) or ``wiegand26`` (H10301).
    ``capacity``
        Most allow-list entries accepted (default 10000).
    ``connect_timeout_s``, ``retry_s``
        How long ``open`` waits for the readers (default 5 s), and how long after the OSDP
        library gave a reader up it is tried again (default 5 s; the library alone would
        wait five minutes).
    ``refresh_ms``, ``log_level``
        The OSDP library's refresh period (default 5 ms) and log level (default warning).
    """

    def __init__(self, options: OsdpOptions) -> None:
        self.options = options
        self.device_id = options.device_id
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """This computer's clock; the panel's clock (:meth:`now`) is it plus the offset the
        gateway set with :meth:`set_clock`."""
        self._clock_offset = timedelta(0)
        self._new_events = asyncio.Event()
        self.decisions: deque[Decision] = deque(maxlen=1000)
        """The latest card reads and what was done (for diagnostics and the bench)."""
        self._readers = [_Reader(r) for r in options.readers]
        self._by_address = {r.config.address: r for r in self._readers}
        self._by_door = {r.config.door: r for r in self._readers}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._panel: Panel | None = None
        self._state: PanelState | None = None
        self._journal: EventJournal | None = None
        self._keys: KeyFile | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._flush_wanted = asyncio.Event()
        self._doors_dirty = False
        self._connecting = False
        self._write_lock = asyncio.Lock()
        self._install_lock = asyncio.Lock()
        self._waiters: dict[int, deque[tuple[int, asyncio.Future[int]]]] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        return cls(parse_options(options))

    @property
    def _name(self) -> str:
        return self.device_id or f"osdp:{self.options.port}"

    def _unavailable(self, message: str) -> DeviceUnavailable:
        return DeviceUnavailable(f"{self._name}: {message}", device_id=self.device_id)

    def now(self) -> datetime:
        """The panel's clock: decisions, schedules and event times use it."""
        return self.clock() + self._clock_offset

    def _pulse_s(self) -> float:
        """How long a grant or a pulse releases the strike: the setting the gateway wrote,
        else the ``pulse_s`` option."""
        held = self._state.pulse_seconds if self._state is not None else None
        return float(held) if held is not None else self.options.pulse_s

    # ------------------------------------------------------------------ life cycle

    async def open(self) -> None:
        await self._open(require_reader=True)

    async def _open(self, *, require_reader: bool) -> None:
        if self._panel is not None:
            return
        opts = self.options
        self._loop = asyncio.get_running_loop()
        doors = len(opts.readers)
        try:
            self._state = await asyncio.to_thread(
                PanelState.open, opts.state_dir, doors=doors, capacity=opts.capacity
            )
            self._journal = await asyncio.to_thread(
                EventJournal.open, opts.state_dir / EVENTS, capacity=opts.capacity
            )
            self._keys = await asyncio.to_thread(
                KeyFile.open, opts.key_file, [r.address for r in opts.readers]
            )
        except KeyFileError as exc:
            raise self._unavailable(str(exc)) from None
        except OSError as exc:
            raise self._unavailable(f"state_dir {opts.state_dir}: {exc}") from None
        try:
            port = await asyncio.to_thread(open_port, opts.port, opts.baudrate)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise self._unavailable(f"serial port {opts.port}: {exc}") from None
        keys = self._keys
        try:
            panel = Panel(
                SerialChannel(port),
                [PanelReader(r.address, keys.key(r.address)) for r in opts.readers],
                on_event=self._event_from_thread,
                on_completion=self._completion_from_thread,
                refresh_s=opts.refresh_ms / 1000,
                log_level=opts.log_level,
                name=self._name,
            )
        except Exception as exc:
            port.close()
            raise self._unavailable(f"the OSDP library refused the set-up: {exc}") from None
        now = time.monotonic()
        for r in self._readers:
            r.online = r.sc_active = r.default_key = False
            r.session_failed = False
            r.reason = "not connected yet"
            r.attempt_started = now
            r.attempts = 1
            r.can.clear()
            r.held = None
        self._panel = panel
        panel.start()
        self._tasks = [
            asyncio.create_task(self._supervise(), name=f"osdp-supervise-{self._name}"),
            asyncio.create_task(self._flush_loop(), name=f"osdp-flush-{self._name}"),
        ]
        try:
            # A session failing and the next succeeding while the bus opens is no change of
            # state: the link is reported as it stands once the wait is over.
            self._connecting = True
            try:
                await self._wait_for_readers(opts.connect_timeout_s)
            finally:
                self._connecting = False
            for r in self._readers:
                if not r.online and r.reason == "not connected yet":
                    r.reason = f"no reply within {opts.connect_timeout_s:g} s"
                self._report_link(r, online=r.online)
            if require_reader and not any(r.online for r in self._readers):
                raise self._unavailable(self._offline_summary())
        except BaseException:
            await self.close()
            raise
        log.info(
            "%s: panel open on %s (libosdp %s), %d of %d readers online",
            self._name,
            opts.port,
            panel.version,
            sum(r.online for r in self._readers),
            len(self._readers),
        )

    async def _wait_for_readers(self, timeout_s: float) -> None:
        """Until every reader is online or has failed two sessions (one lost reply during a
        handshake is not a verdict), or ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not all(
                    r.online or (r.session_failed and r.attempts >= 2) for r in self._readers
                ):
                    self._changed.clear()
                    await self._changed.wait()

    def _offline_summary(self) -> str:
        down = [f"{r.name}: {r.reason}" for r in self._readers if not r.online]
        return "no reader online: " + "; ".join(down)

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        panel, self._panel = self._panel, None
        if panel is not None:
            await asyncio.to_thread(panel.stop)
            panel.channel.close()
        for waiters in self._waiters.values():
            for _, future in waiters:
                if not future.done():
                    future.set_exception(self._unavailable("the panel was closed"))
        self._waiters.clear()
        for r in self._readers:
            r.online = r.sc_active = False
            r.held = None
        await self._flush_once()

    # ------------------------------------------------------------------ from the refresh thread

    def _event_from_thread(self, address: int, event: dict[str, Any]) -> None:
        received = time.monotonic()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._on_event, address, event, received)

    def _completion_from_thread(self, address: int, command: dict[str, Any], status: int) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_completion, address, command, status)

    # ------------------------------------------------------------------ events (event loop)

    def _on_event(self, address: int, event: dict[str, Any], received: float) -> None:
        if self._panel is None:
            return
        reader = self._by_address.get(address)
        if reader is None:
            log.warning("%s: event from unknown reader address %r ignored", self._name, address)
            return
        try:
            kind = event.get("event")
            if kind == EVENT_CARD_READ:
                self._on_card(reader, event, received)
            elif kind == EVENT_STATUS:
                self._on_status(reader, event)
            elif kind == EVENT_NOTIFICATION:
                self._on_notification(reader, event)
            else:
                log.warning("%s: %s: unexpected report %r ignored", self._name, reader.name, event)
        except Exception:
            log.exception("%s: %s: could not handle %r", self._name, reader.name, event)

    def _on_card(self, reader: _Reader, event: dict[str, Any], received: float) -> None:
        assert self._panel is not None
        assert self._state is not None
        assert self._journal is not None
        at = self.now()
        door = reader.config.door
        credential = 0
        try:
            if event.get("reader_no", 0) != reader.config.reader_no:
                raise CardDataError(
                    "reader_no",
                    f"read from sub-reader {event.get('reader_no')!r}, the door's reader is "
                    f"{reader.config.reader_no}",
                )
            credential = credential_from_read(event, self.options.card_format)
        except CardDataError as exc:
            log.warning("%s: %s: card read rejected: %s", self._name, reader.name, exc)
            reason: DenyReason | None = DenyReason.UNREADABLE_CARD
        else:
            reason = self._decide(reader, credential, at)
        granted = reason is None
        pulse_s = self._pulse_s()
        if granted:
            wanted = [
                (CAP_OUTPUT, commands.strike_pulse(reader.config, pulse_s)),
                (CAP_LED, commands.led_flash(reader.config, commands.GREEN, pulse_s)),
                (CAP_BUZZER, commands.beep(reader.config)),
            ]
        else:
            wanted = [
                (CAP_LED, commands.led_flash(reader.config, commands.RED, self.options.deny_s))
            ]
        sent = []
        for capability, command in wanted:
            if not reader.can.get(capability, True):
                continue
            name = COMMAND_NAMES[command["command"]]
            if self._panel.submit(reader.config.address, command):
                sent.append(name)
            else:
                log.warning(
                    "%s: %s: the %s command was not accepted", self._name, reader.name, name
                )
        decided = time.monotonic()
        self._journal.add(
            ControllerEventKind.GRANTED if granted else ControllerEventKind.DENIED,
            credential=credential,
            door=door,
            at=at,
            reason=reason,
        )
        self._flush_wanted.set()
        self._new_events.set()
        self.decisions.append(Decision(door, credential, reason, received, decided, tuple(sent)))
        log.info(
            "%s: %s: card %d %s",
            self._name,
            reader.name,
            credential,
            "granted" if reason is None else f"denied ({reason.value})",
        )

    def _decide(self, reader: _Reader, credential: int, at: datetime) -> DenyReason | None:
        assert self._state is not None
        if not reader.sc_active:
            return DenyReason.READER_NOT_SECURE
        if self._state.door_settings[reader.config.door].mode is DoorMode.LOCKDOWN:
            return DenyReason.LOCKDOWN
        allow = self._state.allow_list
        if allow is None:
            return DenyReason.NO_ALLOW_LIST
        return allow.decide(credential, reader.config.door, at, self.options.tz)

    def _on_status(self, reader: _Reader, event: dict[str, Any]) -> None:
        assert self._state is not None
        if event.get("type") != STATUS_LOCAL:
            log.info(
                "%s: %s: status report of type %r ignored",
                self._name,
                reader.name,
                event.get("type"),
            )
            return
        report = event.get("report")
        if not isinstance(report, bytes) or len(report) != 2:
            log.warning(
                "%s: %s: local status report %r is not two bytes; ignored",
                self._name,
                reader.name,
                report,
            )
            return
        for what, value in zip(("tamper", "power"), report, strict=True):
            if value not in (0, 1):
                log.warning(
                    "%s: %s: local status %s byte %#04x is neither 0 (normal) nor 1; report "
                    "ignored",
                    self._name,
                    reader.name,
                    what,
                    value,
                )
                return
        setting = self._state.door_settings[reader.config.door]
        tamper, power_failure = bool(report[0]), bool(report[1])
        at = self.now()
        if tamper != setting.tamper:
            setting.tamper = tamper
            kind = ControllerEventKind.TAMPER if tamper else ControllerEventKind.TAMPER_CLEARED
            self._device_event(
                reader, kind, "tamper switch open" if tamper else "tamper switch closed", at
            )
        if power_failure != setting.power_failure:
            setting.power_failure = power_failure
            kind = (
                ControllerEventKind.POWER_FAILURE
                if power_failure
                else ControllerEventKind.POWER_RESTORED
            )
            self._device_event(
                reader,
                kind,
                "reader reports a power failure" if power_failure else "reader power normal",
                at,
            )

    def _device_event(
        self, reader: _Reader, kind: ControllerEventKind, reason: str, at: datetime
    ) -> None:
        assert self._journal is not None
        self._journal.add(kind, door=reader.config.door, at=at)
        self._doors_dirty = True
        self._flush_wanted.set()
        self._new_events.set()
        level = logging.INFO if kind in _NORMAL_KINDS else logging.WARNING
        log.log(level, "%s: %s: %s (%s)", self._name, reader.name, kind.value, reason)

    def _on_notification(self, reader: _Reader, event: dict[str, Any]) -> None:
        kind, arg0, arg1 = event.get("type"), event.get("arg0"), event.get("arg1")
        if kind == NOTIFY_SC:
            reader.sc_active = bool(arg0)
            reader.default_key = bool(arg1)
            if reader.install is not None and reader.sc_active and reader.default_key:
                reader.install.saw_default_key = True
            self._changed.set()
        elif kind == NOTIFY_PD:
            self._set_online(reader, bool(arg0))
        elif kind == NOTIFY_COMMAND:
            log.debug("%s: %s: command %r outcome %r", self._name, reader.name, arg0, arg1)

    def _set_online(self, reader: _Reader, online: bool) -> None:
        assert self._panel is not None
        now = time.monotonic()
        address = reader.config.address
        if online:
            reader.online = True
            reader.session_failed = False
            reader.reason = "online"
            reader.held = None
            for cap in (CAP_OUTPUT, CAP_LED, CAP_BUZZER):
                level, items = self._panel.capability(address, cap)
                reader.can[cap] = level > 0 and items > 0
            if not reader.can[CAP_OUTPUT]:
                log.error(
                    "%s: %s reports no output: a grant cannot release the strike",
                    self._name,
                    reader.name,
                )
            self._report_link(reader, online=True)
            self._apply_hold(reader)
        elif reader.restarting:
            reader.online = reader.sc_active = False
        else:
            if reader.online:
                reason = "the reader stopped answering (link lost or a command refused)"
            elif now - reader.attempt_started < FAST_FAILURE_S:
                level, _ = self._panel.capability(address, CAP_SECURITY)
                reason = (
                    "the reader does not support the secure channel"
                    if level == 0
                    else "secure channel not established: the reader's key differs from the "
                    "key file, or it is still on its default key (install mode), or a "
                    "handshake reply was lost"
                )
            else:
                reason = "no reply from the reader"
            reader.online = reader.sc_active = False
            reader.session_failed = True
            reader.failed_at = now
            reader.reason = reason
            self._report_link(reader, online=False)
        self._changed.set()

    def _report_link(self, reader: _Reader, *, online: bool) -> None:
        """Record a change of the reader's link as a device event (once per change, also
        across restarts: the last reported state is kept in ``doors.json``)."""
        assert self._state is not None
        if self._connecting:
            return
        setting = self._state.door_settings[reader.config.door]
        if setting.reported_online is online or (setting.reported_online is None and online):
            if setting.reported_online is None:
                setting.reported_online = online
                self._doors_dirty = True
                self._flush_wanted.set()
            return
        setting.reported_online = online
        kind = ControllerEventKind.READER_ONLINE if online else ControllerEventKind.READER_OFFLINE
        if online:
            reason = (
                "secure channel active"
                if reader.sc_active
                else "online without a secure channel: its reads are refused"
            )
        else:
            reason = reader.reason
        self._device_event(reader, kind, reason, self.now())

    def _on_completion(self, address: int, command: dict[str, Any], status: int) -> None:
        reader = self._by_address.get(address)
        name = COMMAND_NAMES.get(command.get("command", -1), str(command.get("command")))
        if status == COMPLETION_FAILED and reader is not None:
            log.warning(
                "%s: %s: %s command failed (completion status %d)",
                self._name,
                reader.name,
                name,
                status,
            )
        waiters = self._waiters.get(address)
        if not waiters:
            return
        for i, (command_id, future) in enumerate(waiters):
            if command_id == command.get("command"):
                del waiters[i]
                if not future.done():
                    future.set_result(status)
                return

    # ------------------------------------------------------------------ background tasks

    async def _supervise(self) -> None:
        """Try offline readers again and keep scheduled doors in step with their schedule."""
        while True:
            await asyncio.sleep(SUPERVISE_S)
            panel = self._panel
            if panel is None:
                return
            now = time.monotonic()
            for r in self._readers:
                # Only a session the library gave up on: one still trying (a reader that
                # does not answer yet) cannot be restarted before it ends.
                if r.online or r.install is not None or not r.session_failed:
                    continue
                if now - r.failed_at >= self.options.retry_s:
                    await self._restart(r)
            for r in self._readers:
                if not r.restarting and panel.ensure_enabled(r.config.address):
                    log.info("%s: %s: enabled again after a late restart", self._name, r.name)
                self._apply_hold(r)

    async def _restart(self, reader: _Reader) -> None:
        """Start a new session with a reader now. The library reports the reader offline as
        it disables it; that report is not a failure of the new session and is ignored."""
        panel = self._panel
        if panel is None:
            return
        reader.restarting = True
        try:
            if not await asyncio.to_thread(panel.restart, reader.config.address):
                log.warning(
                    "%s: %s: the session could not be restarted yet", self._name, reader.name
                )
        finally:
            # The disable's reports were queued on the loop before this resumes.
            reader.restarting = False
        reader.session_failed = False
        reader.attempt_started = time.monotonic()
        reader.attempts += 1

    def _wants_held(self, reader: _Reader) -> bool:
        assert self._state is not None
        setting = self._state.door_settings[reader.config.door]
        if setting.mode is DoorMode.UNLOCKED:
            return True
        if setting.mode is DoorMode.SCHEDULED and self._state.allow_list is not None:
            local = self.now().astimezone(self.options.tz)
            return self._state.allow_list.schedule_allows(setting.schedule_id, local)
        return False

    def _apply_hold(self, reader: _Reader) -> None:
        """Send the strike's permanent state when it differs from what was last sent."""
        if self._panel is None or not (reader.online and reader.sc_active):
            return
        if not reader.can.get(CAP_OUTPUT, True):
            return
        wanted = self._wants_held(reader)
        if reader.held is wanted or (reader.held is None and not wanted):
            reader.held = wanted
            return
        if self._panel.submit(reader.config.address, commands.strike_hold(reader.config, wanted)):
            reader.held = wanted
            log.info(
                "%s: %s: strike %s", self._name, reader.name, "held open" if wanted else "locked"
            )

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            if not await self._flush_once():
                await asyncio.sleep(1.0)
                self._flush_wanted.set()

    async def _flush_once(self) -> bool:
        """Write new journal events and changed door settings; False when the disk refused."""
        try:
            if self._journal is not None:
                await asyncio.to_thread(self._journal.flush)
            if self._doors_dirty and self._state is not None:
                self._doors_dirty = False
                try:
                    await asyncio.to_thread(self._state.store_doors)
                except BaseException:
                    self._doors_dirty = True
                    raise
        except OSError as exc:
            log.error("%s: cannot write to %s: %s", self._name, self.options.state_dir, exc)
            return False
        return True

    # ------------------------------------------------------------------ contract

    def _require_open(self) -> tuple[Panel, PanelState]:
        if self._panel is None or self._state is None:
            raise self._unavailable("the panel is not open")
        return self._panel, self._state

    def _require_available(self) -> tuple[Panel, PanelState]:
        """The panel, when the device is available: its port works and a reader is online
        (the device's availability is its readers')."""
        panel, state = self._require_open()
        if panel.channel.error is not None:
            raise self._unavailable(panel.channel.error)
        if not any(r.online for r in self._readers):
            raise self._unavailable(self._offline_summary())
        return panel, state

    async def _require_heard(self) -> tuple[Panel, PanelState]:
        """As :meth:`_require_available`, and a reader answered while waiting (the panel
        polls every reader every 50 ms): the library needs about 9 s to give a silent
        reader up, this notices within ``LIVENESS_S``."""
        panel, _ = self._require_available()
        heard = panel.channel.bytes_in
        for _ in range(round(LIVENESS_S / LIVENESS_STEP_S)):
            await asyncio.sleep(LIVENESS_STEP_S)
            if panel.channel.bytes_in != heard:
                return self._require_available()
        raise DeviceTimeout(
            f"{self._name}: no reader has answered for {LIVENESS_S:g} s", device_id=self.device_id
        )

    def _reader_for(self, door: int) -> _Reader:
        if isinstance(door, bool) or not isinstance(door, int) or door not in self._by_door:
            raise ValueError(f"door: must be in 1..{len(self._readers)}, got {door!r}")
        return self._by_door[door]

    async def read_info(self) -> ControllerInfo:
        panel, state = await self._require_heard()
        try:
            await asyncio.to_thread(state.check_identity)
        except OSError as exc:
            raise self._unavailable(f"state_dir {self.options.state_dir}: {exc}") from None
        return ControllerInfo(
            controller_id=self._name,
            doors=len(self._readers),
            capacity=self.options.capacity,
            generation=state.generation,
            firmware=f"libosdp {panel.version}",
        )

    async def write_allow_list(
        self,
        entries: list[AllowEntry],
        schedules: list[HardwareSchedule],
        *,
        progress: ProgressCallback | None = None,
    ) -> AllowListResult:
        _, state = self._require_available()
        started = time.monotonic()
        new = AllowList.build(
            entries, schedules, doors=len(self._readers), capacity=self.options.capacity
        )
        async with self._write_lock:
            try:
                written = await asyncio.to_thread(state.store_allow_list, new, self.now())
            except VerifyMismatch as exc:
                raise VerifyMismatch(f"{self._name}: {exc}", device_id=self.device_id) from None
            except OSError as exc:
                raise self._unavailable(
                    f"cannot write the allow-list to {self.options.state_dir}: {exc}"
                ) from None
        if progress is not None:
            # One step: the verified file (its size in bytes) is the transfer.
            try:
                progress(WriteProgress(done=written, total=written))
            except Exception:
                log.exception("%s: the progress callback failed", self._name)
        for r in self._readers:
            self._apply_hold(r)
        log.info(
            "%s: allow-list of %d entries written and verified (checksum %08x)",
            self._name,
            len(entries),
            new.checksum,
        )
        return AllowListResult(
            checksum=new.checksum,
            entries=len(entries),
            registers_written=0,
            requests=0,
            seconds=time.monotonic() - started,
        )

    async def read_checksum(self) -> int:
        _, state = await self._require_heard()
        held = state.allow_list.checksum if state.allow_list is not None else 0
        on_disk = await asyncio.to_thread(state.persisted_checksum)
        if state.allow_list is None and on_disk is None:
            return 0  # nothing written yet
        if on_disk != held:
            log.error(
                "%s: the allow-list file no longer matches the list in memory (%s on disk, "
                "%08x in memory); reporting the file so it is written again",
                self._name,
                "nothing valid" if on_disk is None else f"{on_disk:08x}",
                held,
            )
            return on_disk or 0
        return held

    async def set_door_mode(self, door: int, mode: DoorMode) -> None:
        _, state = self._require_available()
        reader = self._reader_for(door)
        state.door_settings[door].mode = DoorMode(mode)
        await self._store_doors()
        self._apply_hold(reader)

    async def set_door_schedule(self, door: int, schedule_id: int) -> None:
        """Set the schedule a door follows in :attr:`DoorMode.SCHEDULED` (0 = none, which
        keeps the door locked)."""
        _, state = self._require_available()
        reader = self._reader_for(door)
        if (
            isinstance(schedule_id, bool)
            or not isinstance(schedule_id, int)
            or not (0 <= schedule_id <= 254)
        ):
            raise ValueError(f"schedule_id: must be in 0..254, got {schedule_id!r}")
        state.door_settings[door].schedule_id = schedule_id
        await self._store_doors()
        self._apply_hold(reader)

    async def _store_doors(self) -> None:
        _, state = self._require_open()
        try:
            await asyncio.to_thread(state.store_doors)
        except OSError as exc:
            raise self._unavailable(f"cannot write the door settings: {exc}") from None

    async def pulse_door(self, door: int) -> None:
        panel, state = self._require_available()
        reader = self._reader_for(door)
        if state.door_settings[door].mode is DoorMode.LOCKDOWN:
            raise ValueError(f"door: door {door} is in lockdown; a pulse is refused")
        if not reader.online:
            raise self._unavailable(f"{reader.name} is offline: {reader.reason}")
        if not reader.can.get(CAP_OUTPUT, True):
            raise self._unavailable(f"{reader.name} reports no output to pulse")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        output = commands.strike_pulse(reader.config, self._pulse_s())
        address = reader.config.address
        self._waiters.setdefault(address, deque()).append((output["command"], future))
        if not panel.submit(address, output):
            self._waiters[address].remove((output["command"], future))
            raise self._unavailable(f"{reader.name} did not take the pulse command")
        panel.submit(address, commands.led_flash(reader.config, commands.GREEN, self._pulse_s()))
        try:
            async with asyncio.timeout(PULSE_CONFIRM_S):
                status = await future
        except TimeoutError:
            raise self._unavailable(f"{reader.name} did not confirm the pulse") from None
        if status != COMPLETION_OK:
            raise self._unavailable(f"{reader.name} refused the pulse (status {status})")
        assert self._journal is not None
        self._journal.add(ControllerEventKind.PULSED, door=door, at=self.now())
        self._flush_wanted.set()
        self._new_events.set()

    async def read_settings(self) -> ControllerSettings:
        _, state = self._require_available()
        return ControllerSettings(
            pulse_seconds=max(1, round(self._pulse_s())),
            held_open_seconds=(
                state.held_open_seconds
                if state.held_open_seconds is not None
                else DEFAULT_HELD_OPEN_S
            ),
            door_modes=tuple((d, state.door_settings[d].mode) for d in sorted(state.door_settings)),
        )

    async def write_settings(self, settings: ControllerSettings) -> None:
        """Store the settings (``doors.json``) and apply them. The lock release time goes into
        every grant's and pulse's output timer (at most 25 s: the timer's range here); the
        held-open time is kept but has no effect, as these readers report no door contact."""
        _, state = self._require_available()
        pulse, held_open = settings.pulse_seconds, settings.held_open_seconds
        if pulse is not None and (
            isinstance(pulse, bool) or not isinstance(pulse, int) or not 1 <= pulse <= MAX_PULSE_S
        ):
            raise ValueError(f"pulse_seconds: must be in 1..{MAX_PULSE_S}, got {pulse!r}")
        if held_open is not None and (
            isinstance(held_open, bool) or not isinstance(held_open, int) or held_open < 1
        ):
            raise ValueError(f"held_open_seconds: must be a positive integer, got {held_open!r}")
        modes: list[tuple[int, DoorMode]] = []
        for door, mode in settings.door_modes:
            if isinstance(door, bool) or not isinstance(door, int) or door not in self._by_door:
                raise ValueError(
                    f"door_modes: door {door!r} is not one of the panel's doors "
                    f"1..{len(self._readers)}"
                )
            try:
                modes.append((door, DoorMode(mode)))
            except ValueError:
                raise ValueError(f"door_modes: door {door}: unknown mode {mode!r}") from None
        if pulse is not None:
            state.pulse_seconds = pulse
        if held_open is not None:
            state.held_open_seconds = held_open
        for door, mode in modes:
            state.door_settings[door].mode = mode
        await self._store_doors()
        for r in self._readers:
            self._apply_hold(r)
        held = await self.read_settings()
        if settings.differs_from(held):
            raise VerifyMismatch(
                f"{self._name}: the settings read back {held}, not {settings}",
                device_id=self.device_id,
            )

    async def read_clock(self) -> datetime:
        self._require_available()
        return self.now()

    async def set_clock(self, at: datetime) -> None:
        """Set the panel's clock. It runs on this computer's clock (kept by NTP); the gateway
        setting another time makes the panel decide in that time (an offset, until the driver
        is closed)."""
        self._require_available()
        if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"at: must be a timezone-aware datetime, got {at!r}")
        self._clock_offset = at - self.clock()
        log.info(
            "%s: panel clock set %+.1f s from this computer's clock",
            self._name,
            self._clock_offset.total_seconds(),
        )

    async def wait_for_events(self, timeout_s: float) -> bool:
        """Card reads and reader reports arrive by themselves: returns as soon as one is
        recorded (True), or after ``timeout_s`` (False)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._new_events.wait()
        except TimeoutError:
            return False
        self._new_events.clear()
        return True

    async def door_status(self, door: int) -> DoorStatus:
        _, state = self._require_available()
        self._reader_for(door)
        # Readers report no door contact here: open/forced/held-open are not monitored.
        return DoorStatus(
            door=door,
            mode=state.door_settings[door].mode,
            open=False,
            forced=False,
            held_open=False,
        )

    async def read_events(self, after_sequence: int, *, limit: int = 64) -> list[ControllerEvent]:
        if isinstance(after_sequence, bool) or not 0 <= after_sequence <= MAX_SEQUENCE:
            raise ValueError(f"after_sequence: must be in 0..{MAX_SEQUENCE}, got {after_sequence}")
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        self._require_open()
        assert self._journal is not None
        return self._journal.after(after_sequence, limit)

    async def ack_events(self, up_to_sequence: int) -> None:
        if isinstance(up_to_sequence, bool) or not 0 <= up_to_sequence <= MAX_SEQUENCE:
            raise ValueError(f"up_to_sequence: must be in 0..{MAX_SEQUENCE}, got {up_to_sequence}")
        self._require_open()
        assert self._journal is not None
        try:
            await asyncio.to_thread(self._journal.ack, up_to_sequence)
        except OSError as exc:
            raise self._unavailable(f"cannot record the acknowledgement: {exc}") from None

    # ------------------------------------------------------------------ readers

    def reader_status(self) -> list[dict[str, Any]]:
        """Each reader's link as the panel sees it (no key material)."""
        out = []
        for r in self._readers:
            setting = self._state.door_settings[r.config.door] if self._state else None
            out.append(
                {
                    "door": r.config.door,
                    "address": r.config.address,
                    "online": r.online,
                    "secure_channel": r.sc_active,
                    "reason": r.reason,
                    "attempts": r.attempts,
                    "tamper": setting.tamper if setting else None,
                    "power_failure": setting.power_failure if setting else None,
                }
            )
        return out

    async def install_key(self, door: int, *, timeout_s: float = 20.0) -> InstallResult:
        """Operator action: bring the reader of ``door`` from its default key (SCBK-D) onto
        its own SCBK from the key file.

        For this one reader and for this call only, the panel allows a secure channel with
        the default key; over it the library sends the reader its own key (``osdp_KEYSET``)
        and then opens a new secure channel with that key. Succeeds only when the reader ends
        up online with a secure channel on its own key; in every case the reader is back
        under the enforced secure channel when this returns. The caller (the gateway)
        records who asked. A driver that is not open opens the bus for the install (with no
        reader online yet) and closes it again. Raises ``ValueError`` for an unknown door and
        :class:`~drivers.base.DeviceUnavailable` when the bus cannot be opened."""
        reader = self._reader_for(door)
        if self._install_lock.locked():
            raise self._unavailable("another install is in progress")
        async with self._install_lock:
            opened_here = self._panel is None
            if opened_here:
                await self._open(require_reader=False)
            try:
                return await self._install(reader, timeout_s)
            finally:
                if opened_here:
                    await self.close()

    async def _install(self, reader: _Reader, timeout_s: float) -> InstallResult:
        panel, _ = self._require_open()
        door, address = reader.config.door, reader.config.address
        if reader.online and reader.sc_active and not reader.default_key:
            return InstallResult(door, address, False, "the reader already uses its own key")
        log.warning(
            "%s: %s: install mode: accepting the default key once to set the reader's key",
            self._name,
            reader.name,
        )
        reader.install = _Install()
        installed = False
        detail = f"no secure channel within {timeout_s:g} s"
        try:
            await asyncio.to_thread(panel.set_enforce_secure, address, False)
            await self._restart(reader)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    while True:
                        if reader.online and reader.sc_active and not reader.default_key:
                            installed = reader.install.saw_default_key
                            detail = (
                                "key installed; secure channel active with it"
                                if installed
                                else "the reader already uses its own key"
                            )
                            break
                        if reader.online and not reader.sc_active:
                            detail = "the reader came online without a secure channel"
                            break
                        self._changed.clear()
                        await self._changed.wait()
        finally:
            reader.install = None
            await asyncio.to_thread(panel.set_enforce_secure, address, True)
            if not (reader.online and reader.sc_active and not reader.default_key):
                await self._restart(reader)
        level = logging.WARNING if installed else logging.ERROR
        log.log(level, "%s: %s: install mode ended: %s", self._name, reader.name, detail)
        return InstallResult(door, address, installed, detail)


_NORMAL_KINDS = {
    ControllerEventKind.TAMPER_CLEARED,
    ControllerEventKind.POWER_RESTORED,
    ControllerEventKind.READER_ONLINE,
}

__all__ = ["Decision", "InstallResult", "OsdpReaderDriver"]
