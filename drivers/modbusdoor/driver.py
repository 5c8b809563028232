"""``ModbusDoorController``: the :class:`~drivers.base.DoorController` contract over Modbus.

The controller speaks the lockgate door-controller register map
(``docs/protocols/door-controller.md``, :mod:`drivers.modbusdoor.registers`) over Modbus TCP
or Modbus RTU.

Allow-list writes
-----------------
A write stages the schedule records and entry rows with Write Multiple Registers requests of
at most 123 registers, then writes the commit block (entry count, schedule count, the
CRC-32 the driver computed, the COMMIT command and a tag). The controller recomputes the
checksum over what it staged and copies the staging tables into the active ones only when
both agree; the driver then polls the status block until its command is done and compares the active
checksum and counts with its own. The controller thus holds either the old or the new list,
never a mix, and a corrupted transfer is refused before it takes effect.

When the controller still holds the list this driver last verified on it (same generation,
same active checksum), a write is sent as a *patch*: COPY_ACTIVE_TO_STAGING, then only the
rows that differ (see :mod:`drivers.modbusdoor.layout`), then the same commit and checks. A
revocation of one credential costs five requests. If a patch fails its checksum check the
driver falls back to a full write at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any, Self, TypeVar

from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_delay
from tenacity.wait import wait_exponential

from drivers.base import (
    AllowEntry,
    AllowListResult,
    ControllerEvent,
    ControllerInfo,
    ControllerSettings,
    DeviceTimeout,
    DoorController,
    DoorMode,
    DoorStatus,
    HardwareSchedule,
    ProgressCallback,
    ProtocolError,
    VerifyMismatch,
    WriteProgress,
)
from drivers.modbusdoor import registers as rm
from drivers.modbusdoor.layout import (
    Layout,
    RegisterWrite,
    encode_entries,
    encode_schedules,
    entry_writes,
    full_layout,
    patch_layout,
    schedule_writes,
)
from drivers.modbusdoor.link import LinkSettings, ModbusLink, Transport

log = logging.getLogger(__name__)

_OPTIONS = {
    "device_id",
    "transport",
    "host",
    "port",
    "baudrate",
    "unit",
    "timeout_s",
    "retries",
    "commit_timeout_s",
    "patch",
}
_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)

T = TypeVar("T")


class CommitRefused(VerifyMismatch):
    """The controller refused a commit (``status`` says why) and kept its previous list."""

    def __init__(self, message: str, *, status: rm.CommitStatus, device_id: str | None) -> None:
        super().__init__(message, device_id=device_id)
        self.status = status


def _int_option(options: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = options.get(name, default)
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


class ModbusDoorController(DoorController):
    """A door controller implementing the lockgate register map, over Modbus TCP or RTU.

    Options (``from_options``):

    ``transport``
        ``"tcp"`` (default) or ``"rtu"``.
    ``host``
        TCP only: host name or address of the controller (or of a Modbus gateway).
    ``port``
        TCP: port number (default 502). RTU: serial device path (``/dev/ttyUSB0``) or a
        pyserial URL (``socket://host:port`` for RTU over a TCP serial server).
    ``baudrate``
        RTU only, default 19200 (8N1).
    ``unit``
        Modbus unit id 1..247, default 1.
    ``timeout_s``, ``retries``
        Reply timeout per attempt (default 1.0 s) and retransmissions (default 2).
    ``commit_timeout_s``
        How long a commit may stay busy (default 10 s).
    ``patch``
        Allow patch writes (default true).
    """

    def __init__(
        self,
        *,
        settings: LinkSettings,
        device_id: str | None = None,
        commit_timeout_s: float = 10.0,
        patch: bool = True,
    ) -> None:
        self.device_id = device_id
        self._link = ModbusLink(settings, device_id=device_id)
        self._commit_timeout_s = commit_timeout_s
        self._patch_enabled = patch
        self._identity: rm.Identity | None = None
        self._verified: tuple[int, Layout] | None = None
        self._lock = asyncio.Lock()
        self._tag = random.randrange(1, rm.U16_MAX)
        self.events_overflowed = False
        """True when the last event read found the controller's FIFO overflow flag set:
        events were dropped before the gateway acknowledged them."""

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Self:
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown option (known: {', '.join(sorted(_OPTIONS))})")
        device_id = options.get("device_id")
        if device_id is not None and not isinstance(device_id, str):
            raise ValueError(f"device_id: must be a string, got {device_id!r}")
        transport = options.get("transport", "tcp")
        if transport not in ("tcp", "rtu"):
            raise ValueError(f"transport: must be 'tcp' or 'rtu', got {transport!r}")
        tr: Transport = "tcp" if transport == "tcp" else "rtu"
        host = options.get("host", "")
        port: int | str
        if tr == "tcp":
            if not isinstance(host, str) or not host.strip():
                raise ValueError("host: required for transport 'tcp' (a host name or address)")
            port = _int_option(options, "port", 502, 1, 65535)
        else:
            if "host" in options:
                raise ValueError("host: not used with transport 'rtu'; give the device as port")
            raw_port = options.get("port")
            if not isinstance(raw_port, str) or not raw_port.strip():
                raise ValueError(
                    "port: required for transport 'rtu' (a serial device path or pyserial URL)"
                )
            port = raw_port.strip()
        baudrate = _int_option(options, "baudrate", 19200, 1, 4_000_000)
        if tr == "rtu" and baudrate not in _BAUDRATES:
            raise ValueError(f"baudrate: must be one of {_BAUDRATES}, got {baudrate}")
        patch = options.get("patch", True)
        if not isinstance(patch, bool):
            raise ValueError(f"patch: must be true or false, got {patch!r}")
        settings = LinkSettings(
            transport=tr,
            host=host.strip() if isinstance(host, str) else "",
            port=port,
            baudrate=baudrate,
            unit=_int_option(options, "unit", 1, 1, 247),
            timeout_s=_float_option(options, "timeout_s", 1.0, 0.0, 60.0),
            retries=_int_option(options, "retries", 2, 0, 10),
        )
        return cls(
            settings=settings,
            device_id=device_id,
            commit_timeout_s=_float_option(options, "commit_timeout_s", 10.0, 0.0, 600.0),
            patch=patch,
        )

    # ------------------------------------------------------------------ life cycle

    @property
    def requests(self) -> int:
        """Modbus requests sent since the driver was created."""
        return self._link.requests

    async def open(self) -> None:
        async with self._lock:
            self._link.shut = False
            await self._link.connect()
            try:
                await self._read_identity()
            except BaseException:
                self._link.close()
                raise

    async def close(self) -> None:
        self._link.shut = True
        self._link.close()

    # ------------------------------------------------------------------ identity

    async def read_info(self) -> ControllerInfo:
        async with self._lock:
            identity = await self._read_identity()
        return ControllerInfo(
            controller_id=identity.controller_id,
            doors=identity.doors,
            capacity=identity.capacity,
            generation=identity.generation,
            firmware=identity.firmware,
        )

    async def _read_identity(self) -> rm.Identity:
        regs = await self._link.read_input(
            rm.IDENTITY_BASE, rm.IDENTITY_COUNT, "identity block", rm.decode_identity
        )
        identity = self._decode(rm.decode_identity, regs)
        self._note_generation(identity.generation)
        self._identity = identity
        return identity

    def _note_generation(self, generation: int) -> None:
        """Forget the list verified on the controller when it reports a new generation."""
        if self._identity is None or generation == self._identity.generation:
            return
        log.warning(
            "%s: generation changed %d -> %d: the controller lost its memory",
            self._name(),
            self._identity.generation,
            generation,
        )
        self._verified = None
        self._identity = replace(self._identity, generation=generation)

    async def _known_identity(self) -> rm.Identity:
        if self._identity is None:
            return await self._read_identity()
        return self._identity

    async def _read_status(self) -> rm.Status:
        identity = await self._known_identity()
        decode = partial(rm.decode_status, capacity=identity.capacity)
        regs = await self._link.read_input(rm.STATUS_BASE, rm.STATUS_COUNT, "status block", decode)
        status = self._decode(decode, regs)
        self._note_generation(status.generation)
        return status

    # ------------------------------------------------------------------ allow-list

    async def read_checksum(self) -> int:
        async with self._lock:
            return (await self._read_status()).active_checksum

    async def write_allow_list(
        self,
        entries: list[AllowEntry],
        schedules: list[HardwareSchedule],
        *,
        progress: ProgressCallback | None = None,
    ) -> AllowListResult:
        started = time.monotonic()
        async with self._lock:
            identity = await self._known_identity()
            schedule_records = encode_schedules(schedules)
            rows = encode_entries(entries)
            self._check_fits(identity, entries, schedule_records, len(rows))
            requests_before = self._link.requests
            written = 0
            layout: Layout | None = None
            if self._patch_enabled and self._verified is not None:
                try:
                    patched = await self._try_patch(schedule_records, rows, progress)
                except CommitRefused as exc:
                    if exc.status is not rm.CommitStatus.CHECKSUM_ERROR:
                        raise
                    log.warning("%s: %s; writing the whole list", self._name(identity), exc)
                    patched = None
                if patched is not None:
                    layout, written = patched
            if layout is None:
                layout = full_layout(schedule_records, rows)
                writes = schedule_writes(layout) + entry_writes(layout)
                written += await self._send(writes, progress)
                written += await self._commit(layout)
            self._report(progress, written, written)
            return AllowListResult(
                checksum=layout.checksum,
                entries=len(layout.rows),
                registers_written=written,
                requests=self._link.requests - requests_before,
                seconds=time.monotonic() - started,
            )

    def _check_fits(
        self,
        identity: rm.Identity,
        entries: list[AllowEntry],
        schedule_records: tuple[tuple[int, ...], ...],
        rows: int,
    ) -> None:
        if rows > identity.capacity:
            raise ValueError(
                f"entries: {rows} entries exceed the capacity of controller "
                f"{identity.controller_id} ({identity.capacity})"
            )
        if len(schedule_records) > identity.schedule_slots:
            raise ValueError(
                f"schedules: {len(schedule_records)} schedules exceed the controller's "
                f"{identity.schedule_slots} schedule slots"
            )
        known = {record[0] for record in schedule_records}
        beyond = ~((1 << identity.doors) - 1) & rm.U16_MAX
        for i, entry in enumerate(entries):
            if entry.doors_mask & beyond:
                raise ValueError(
                    f"entries[{i}].doors_mask: {entry.doors_mask:#x} names a door beyond the "
                    f"controller's {identity.doors} doors"
                )
            if entry.schedule_id and entry.schedule_id not in known:
                raise ValueError(
                    f"entries[{i}].schedule_id: schedule {entry.schedule_id} is not among the "
                    "schedules written with the list"
                )

    async def _try_patch(
        self,
        schedule_records: tuple[tuple[int, ...], ...],
        rows: list[tuple[int, ...]],
        progress: ProgressCallback | None,
    ) -> tuple[Layout, int] | None:
        """Patch the controller's list in place, or return None when a full write is due."""
        assert self._verified is not None
        generation, previous = self._verified
        status = await self._read_status()
        if (
            status.generation != generation
            or status.active_checksum != previous.checksum
            or status.active_entries != len(previous.rows)
            or status.active_schedules != len(previous.schedules)
        ):
            log.info("%s: the active list is not the one last verified", self._name())
            self._verified = None
            return None
        layout, changed = patch_layout(previous, schedule_records, rows)
        writes = entry_writes(layout, changed)
        if layout.schedules != previous.schedules:
            writes = schedule_writes(layout) + writes
        # The copy command is one more request; a patch must beat a full write.
        if len(writes) + 1 >= layout.full_write_requests:
            return None
        copy = (int(rm.Command.COPY_ACTIVE_TO_STAGING), self._next_tag())
        written = await self._send([RegisterWrite(rm.HOLD_COMMAND, copy), *writes], progress)
        written += await self._commit(layout)
        return layout, written

    async def _send(self, writes: list[RegisterWrite], progress: ProgressCallback | None) -> int:
        """Send the table writes; progress counts registers, the commit block included."""
        total = sum(len(w.values) for w in writes) + rm.COMMIT_BLOCK_COUNT
        done = 0
        for w in writes:
            await self._link.write_registers(w.address, w.values, _table_name(w.address))
            done += len(w.values)
            self._report(progress, done, total)
        return done

    def _report(self, progress: ProgressCallback | None, done: int, total: int) -> None:
        if progress is None:
            return
        try:
            progress(WriteProgress(done=done, total=total))
        except Exception:
            log.exception("%s: progress callback failed", self._name())

    async def _commit(self, layout: Layout) -> int:
        """Write the commit block, wait for the command and verify the active list."""
        self._verified = None
        tag = self._next_tag()
        expected = layout.checksum
        block = rm.encode_commit_block(
            entries=len(layout.rows),
            schedules=len(layout.schedules),
            expected_checksum=expected,
            command=rm.Command.COMMIT,
            tag=tag,
        )
        await self._link.write_registers(rm.COMMIT_BLOCK_BASE, block, "commit block")
        status = await self._wait_for_command(tag)
        name = self._name()
        refusals = {
            rm.CommitStatus.CHECKSUM_ERROR: (
                f"its checksum of the staging tables is {status.staging_checksum:#010x}, "
                f"expected {expected:#010x}"
            ),
            rm.CommitStatus.REJECTED: "it rejected the commit",
            rm.CommitStatus.CAPACITY_EXCEEDED: (
                f"it reports its capacity exceeded by {len(layout.rows)} entries"
            ),
        }
        if status.commit in refusals:
            raise CommitRefused(
                f"{name}: commit refused, {refusals[status.commit]}; "
                "the controller keeps its previous list",
                status=status.commit,
                device_id=self.device_id,
            )
        if status.commit is not rm.CommitStatus.OK:
            raise ProtocolError(
                f"{name}: commit ended with status {status.commit.name}",
                device_id=self.device_id,
                field="STATUS_COMMIT",
            )
        if (
            status.active_checksum != expected
            or status.active_entries != len(layout.rows)
            or status.active_schedules != len(layout.schedules)
        ):
            raise VerifyMismatch(
                f"{name}: after commit the controller holds {status.active_entries} entries and "
                f"{status.active_schedules} schedules with checksum "
                f"{status.active_checksum:#010x}; expected {len(layout.rows)}, "
                f"{len(layout.schedules)} and {expected:#010x}",
                device_id=self.device_id,
            )
        self._verified = (status.generation, layout)
        return rm.COMMIT_BLOCK_COUNT

    async def _wait_for_command(self, tag: int) -> rm.Status:
        def busy(status: rm.Status) -> bool:
            return status.commit is rm.CommitStatus.BUSY

        async def command_status() -> rm.Status:
            status = await self._read_status()
            if status.command_tag != tag:
                raise ProtocolError(
                    f"{self._name()}: status is for command tag {status.command_tag}, "
                    f"sent {tag}: another master may be writing to this controller",
                    device_id=self.device_id,
                    field="STATUS_COMMAND_TAG",
                )
            return status

        retrying = AsyncRetrying(
            retry=retry_if_result(busy),
            wait=wait_exponential(multiplier=0.002, max=0.1),
            stop=stop_after_delay(self._commit_timeout_s),
        )
        try:
            return await retrying(command_status)
        except RetryError:
            raise DeviceTimeout(
                f"{self._name()}: commit still busy after {self._commit_timeout_s:g} s",
                device_id=self.device_id,
            ) from None

    # ------------------------------------------------------------------ doors

    async def set_door_mode(self, door: int, mode: DoorMode) -> None:
        async with self._lock:
            await self._check_door(door)
            code = rm.DOOR_MODE_CODES[DoorMode(mode)]
            what = f"DOOR_MODE door {door}"
            echo = await self._link.write_register(rm.door_mode_address(door), int(code), what)
            if echo != code:
                raise VerifyMismatch(
                    f"{what}: controller holds {echo}, wrote {int(code)}", device_id=self.device_id
                )

    async def set_door_schedule(self, door: int, schedule_id: int) -> None:
        """Set the schedule a door follows in :attr:`DoorMode.SCHEDULED` (0 = none, which
        keeps the door locked)."""
        if not 0 <= schedule_id <= rm.MAX_SCHEDULE_ID:
            raise ValueError(f"schedule_id: must be in 0..{rm.MAX_SCHEDULE_ID}, got {schedule_id}")
        async with self._lock:
            await self._check_door(door)
            what = f"DOOR_SCHEDULE door {door}"
            echo = await self._link.write_register(
                rm.door_schedule_address(door), schedule_id, what
            )
            if echo != schedule_id:
                raise VerifyMismatch(
                    f"{what}: controller holds {echo}, wrote {schedule_id}",
                    device_id=self.device_id,
                )

    async def pulse_door(self, door: int) -> None:
        async with self._lock:
            await self._check_door(door)
            what = f"PULSE coil door {door}"
            if not await self._link.write_coil(rm.pulse_coil_address(door), True, what):
                raise VerifyMismatch(
                    f"{what}: controller did not confirm the pulse", device_id=self.device_id
                )

    async def door_status(self, door: int) -> DoorStatus:
        async with self._lock:
            await self._check_door(door)
            what = f"DOOR_MODE door {door}"
            (raw_mode,) = await self._link.read_holding(rm.door_mode_address(door), 1, what)
            try:
                mode = rm.DOOR_MODES[rm.DoorModeCode(raw_mode)]
            except ValueError:
                raise ProtocolError(
                    f"{what}: unknown door mode {raw_mode}", device_id=self.device_id, field=what
                ) from None
            bits = await self._link.read_discrete_inputs(
                rm.door_inputs_address(door), rm.DI_STRIDE, f"DOOR_INPUTS door {door}"
            )
        return DoorStatus(
            door=door,
            mode=mode,
            open=bits[rm.DI_OPEN],
            forced=bits[rm.DI_FORCED],
            held_open=bits[rm.DI_HELD_OPEN],
        )

    async def _check_door(self, door: int) -> None:
        identity = await self._known_identity()
        if isinstance(door, bool) or not isinstance(door, int) or not 1 <= door <= identity.doors:
            raise ValueError(f"door: must be in 1..{identity.doors}, got {door!r}")

    # ------------------------------------------------------------------ events

    async def read_events(self, after_sequence: int, *, limit: int = 64) -> list[ControllerEvent]:
        if not 0 <= after_sequence <= rm.U32_MAX:
            raise ValueError(f"after_sequence: must be in 0..{rm.U32_MAX}, got {after_sequence}")
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        async with self._lock:
            identity = await self._known_identity()
            window = identity.event_window
            out: list[rm.EventRecord] = []
            cursor = after_sequence
            while len(out) < limit:
                records, header = await self._read_window(identity, cursor)
                if header.overflow and not self.events_overflowed:
                    log.warning("%s: event FIFO overflowed; oldest events lost", self._name())
                self.events_overflowed = header.overflow
                if records and records[0].sequence > cursor + 1 and cursor == after_sequence:
                    log.warning(
                        "%s: events %d..%d are no longer in the controller",
                        self._name(),
                        cursor + 1,
                        records[0].sequence - 1,
                    )
                out += records[: limit - len(out)]
                if len(records) < window:
                    break
                cursor = records[-1].sequence
        return [r.to_event() for r in out]

    async def _read_window(
        self, identity: rm.Identity, cursor: int
    ) -> tuple[list[rm.EventRecord], rm.EventHeader]:
        await self._link.write_registers(
            rm.HOLD_EVENT_READ_AFTER, rm.split_u32(cursor), "EVENT_READ_AFTER"
        )
        count = rm.window_records_needed(identity.event_window)
        regs = await self._link.read_input(
            rm.EVENT_HEADER_BASE,
            count,
            "event window",
            lambda r: rm.decode_event_header(
                r[: rm.EVENT_HEADER_COUNT],
                event_capacity=identity.event_capacity,
                event_window=identity.event_window,
            ),
        )
        header = self._decode(
            lambda r: rm.decode_event_header(
                r,
                event_capacity=identity.event_capacity,
                event_window=identity.event_window,
            ),
            regs[: rm.EVENT_HEADER_COUNT],
        )
        if header.cursor != cursor:
            raise ProtocolError(
                f"{self._name()}: event window is after {header.cursor}, asked after {cursor}: "
                "another master may be reading events",
                device_id=self.device_id,
                field="EVENT_CURSOR",
            )
        records: list[rm.EventRecord] = []
        previous = cursor
        for i in range(identity.event_window):
            base = rm.EVENT_HEADER_COUNT + i * rm.EVENT_RECORD_REGISTERS
            raw = regs[base : base + rm.EVENT_RECORD_REGISTERS]
            field = f"event window[{i}]"
            if i >= header.window_count:
                if any(raw):
                    raise ProtocolError(
                        f"{field}: unused window record is not zero",
                        device_id=self.device_id,
                        field=field,
                    )
                continue
            record = self._decode(partial(rm.decode_event, field=field), raw)
            if record.sequence <= previous or not (
                header.oldest <= record.sequence <= header.newest
            ):
                raise ProtocolError(
                    f"{field}: sequence {record.sequence} out of order (after {previous}, "
                    f"stored {header.oldest}..{header.newest})",
                    device_id=self.device_id,
                    field=f"{field}.sequence",
                )
            if record.door > identity.doors:
                raise ProtocolError(
                    f"{field}: door {record.door} beyond the controller's {identity.doors}",
                    device_id=self.device_id,
                    field=f"{field}.door",
                )
            previous = record.sequence
            records.append(record)
        return records, header

    async def ack_events(self, up_to_sequence: int) -> None:
        if not 0 <= up_to_sequence <= rm.U32_MAX:
            raise ValueError(f"up_to_sequence: must be in 0..{rm.U32_MAX}, got {up_to_sequence}")
        async with self._lock:
            await self._link.write_registers(
                rm.HOLD_EVENT_ACK, rm.split_u32(up_to_sequence), "EVENT_ACK"
            )

    # ------------------------------------------------------------------ settings

    async def read_settings(self) -> ControllerSettings:
        async with self._lock:
            identity = await self._known_identity()
            pulse, held_open = await self._link.read_holding(
                rm.HOLD_PULSE_SECONDS, 2, "PULSE_SECONDS, HELD_OPEN_SECONDS"
            )
            doors = await self._link.read_holding(
                rm.HOLD_DOOR_BASE, identity.doors * rm.DOOR_STRIDE, "DOOR_MODE"
            )
        modes: list[tuple[int, DoorMode]] = []
        for door in range(1, identity.doors + 1):
            raw = doors[(door - 1) * rm.DOOR_STRIDE + rm.DOOR_MODE_OFFSET]
            try:
                modes.append((door, rm.DOOR_MODES[rm.DoorModeCode(raw)]))
            except ValueError:
                raise ProtocolError(
                    f"DOOR_MODE door {door}: unknown door mode {raw}",
                    device_id=self.device_id,
                    field=f"DOOR_MODE door {door}",
                ) from None
        return ControllerSettings(
            pulse_seconds=pulse, held_open_seconds=held_open, door_modes=tuple(modes)
        )

    async def write_settings(self, settings: ControllerSettings) -> None:
        for name, value, (low, high) in (
            ("pulse_seconds", settings.pulse_seconds, rm.PULSE_SECONDS_RANGE),
            ("held_open_seconds", settings.held_open_seconds, rm.HELD_OPEN_SECONDS_RANGE),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
            ):
                raise ValueError(f"{name}: must be an integer in {low}..{high}, got {value!r}")
        async with self._lock:
            identity = await self._known_identity()
            for door, mode in settings.door_modes:
                if isinstance(door, bool) or not isinstance(door, int):
                    raise ValueError(f"door_modes: door must be an integer, got {door!r}")
                if not 1 <= door <= identity.doors:
                    raise ValueError(f"door_modes: door must be in 1..{identity.doors}, got {door}")
                if mode not in set(DoorMode):
                    raise ValueError(f"door_modes: door {door}: unknown mode {mode!r}")
            if settings.pulse_seconds is not None:
                await self._link.write_registers(
                    rm.HOLD_PULSE_SECONDS, [settings.pulse_seconds], "PULSE_SECONDS"
                )
            if settings.held_open_seconds is not None:
                await self._link.write_registers(
                    rm.HOLD_HELD_OPEN_SECONDS, [settings.held_open_seconds], "HELD_OPEN_SECONDS"
                )
            for door, mode in settings.door_modes:
                await self._link.write_register(
                    rm.door_mode_address(door),
                    int(rm.DOOR_MODE_CODES[DoorMode(mode)]),
                    f"DOOR_MODE door {door}",
                )
        held = await self.read_settings()
        if settings.differs_from(held):
            raise VerifyMismatch(
                f"{self._name()}: after writing its settings the controller holds {held}",
                device_id=self.device_id,
            )

    # ------------------------------------------------------------------ clock

    async def read_clock(self) -> datetime:
        """The controller's clock (UTC)."""
        async with self._lock:
            high, low = await self._link.read_holding(rm.HOLD_CLOCK, 2, "CLOCK")
        return rm.decode_time(rm.join_u32(high, low))

    async def set_clock(self, at: datetime) -> None:
        """Set the controller's clock to ``at`` (an aware datetime; whole seconds)."""
        seconds = rm.unix_seconds(at, "at")
        async with self._lock:
            await self._link.write_registers(rm.HOLD_CLOCK, rm.split_u32(seconds), "CLOCK")

    # ------------------------------------------------------------------ helpers

    def _next_tag(self) -> int:
        self._tag = self._tag % rm.U16_MAX + 1
        return self._tag

    def _name(self, identity: rm.Identity | None = None) -> str:
        identity = identity or self._identity
        return self.device_id or (identity.controller_id if identity else "controller")

    def _decode(self, decoder: Callable[[list[int]], T], registers: list[int]) -> T:
        try:
            return decoder(registers)
        except rm.DecodeError as exc:
            raise ProtocolError(
                f"{self._name()}: {exc}", device_id=self.device_id, field=exc.field
            ) from None


def _table_name(address: int) -> str:
    if address >= rm.HOLD_ENTRY_TABLE:
        row = (address - rm.HOLD_ENTRY_TABLE) // rm.ENTRY_RECORD_REGISTERS
        return f"ENTRY_TABLE row {row} (holding {address:#06x})"
    if address >= rm.HOLD_SCHEDULE_TABLE:
        slot = (address - rm.HOLD_SCHEDULE_TABLE) // rm.SCHEDULE_RECORD_REGISTERS
        return f"SCHEDULE_TABLE slot {slot} (holding {address:#06x})"
    if address == rm.HOLD_COMMAND:
        return "COMMAND"
    return f"holding {address:#06x}"
