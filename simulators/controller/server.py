"""The simulated controller on the wire: the register map served over Modbus TCP and RTU.

:class:`RegisterMap` translates Modbus addresses into reads and writes of a
:class:`~simulators.controller.memory.ControllerMemory` (pure, no I/O);
:mod:`simulators.controller.pdu` answers request PDUs from it. :class:`ControllerServer`
carries them over Modbus TCP (MBAP framing, one connection task per client, requests answered
in order with their own transaction ids) or Modbus RTU (on a serial device, or on a
:class:`~simulators.controller.ptylink.PtyLink` it creates), and injects the transport
faults: slow replies, dropped connections, a cut line, a restart.

On RTU the controller behaves as a device on a shared RS-485 bus: it answers only frames for
its own unit id, executes broadcast writes (unit 0) without answering, drops frames with a
bad CRC, and takes the time a frame needs on the line at its baud rate (10 bits per byte) to
receive each request and to send each reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Sequence
from typing import Literal

import serial
from pymodbus.framer import FramerRTU

from drivers.modbusdoor import registers as rm
from drivers.serialstation.transport import FdTransport, open_serial
from simulators.controller import pdu
from simulators.controller.memory import ControllerMemory, DeviceBusy, WriteRefused
from simulators.controller.pdu import IllegalAddress
from simulators.controller.ptylink import PtyLink

log = logging.getLogger(__name__)

Transport = Literal["tcp", "rtu"]

_U32_FIELDS = {
    rm.HOLD_CLOCK: "CLOCK",
    rm.HOLD_EVENT_READ_AFTER: "EVENT_READ_AFTER",
    rm.HOLD_EVENT_ACK: "EVENT_ACK",
    rm.HOLD_EXPECTED_CHECKSUM: "EXPECTED_CHECKSUM",
}
_FIXED_HOLDING = frozenset(
    [
        *range(rm.HOLD_CLOCK, rm.HOLD_HELD_OPEN_SECONDS + 1),
        *range(rm.HOLD_EVENT_READ_AFTER, rm.HOLD_EVENT_ACK + 2),
        *range(rm.COMMIT_BLOCK_BASE, rm.COMMIT_BLOCK_BASE + rm.COMMIT_BLOCK_COUNT),
    ]
)
"""Holding registers outside the door block and the staging tables."""
TCP_ANY_UNIT = (0, 0xFF)
"""Unit ids a Modbus TCP device answers besides its own (the TCP implementation guide)."""
RTU_GAP_S = 0.05
"""Silence after which the RTU simulator gives up a partial frame (at least 3.5 characters;
longer than on a real line so that a busy test machine does not split frames)."""


class RegisterMap:
    """Modbus addresses of the lockgate register map, backed by a :class:`ControllerMemory`."""

    def __init__(self, memory: ControllerMemory) -> None:
        self.memory = memory

    # ------------------------------------------------------------------ input registers

    def read_input(self, address: int, count: int) -> list[int]:
        m = self.memory
        blocks: list[tuple[int, list[int]]] = [
            (rm.IDENTITY_BASE, rm.encode_identity(m.identity())),
            (rm.STATUS_BASE, rm.encode_status(m.status())),
            (rm.EVENT_HEADER_BASE, self._event_block()),
        ]
        out: list[int] = []
        for a in range(address, address + count):
            for base, regs in blocks:
                if base <= a < base + len(regs):
                    out.append(regs[a - base])
                    break
            else:
                raise IllegalAddress(f"input register {a:#06x}")
        return out

    def _event_block(self) -> list[int]:
        m = self.memory
        header = m.event_header()
        records = [v for r in m.event_records() for v in rm.encode_event(r)]
        size = m.event_window * rm.EVENT_RECORD_REGISTERS
        return rm.encode_event_header(header) + records + [0] * (size - len(records))

    # ------------------------------------------------------------------ holding registers

    def read_holding(self, address: int, count: int) -> list[int]:
        m = self.memory
        fixed = {
            rm.HOLD_PULSE_SECONDS: m.pulse_seconds,
            rm.HOLD_HELD_OPEN_SECONDS: m.held_open_seconds,
            rm.HOLD_STAGING_ENTRIES: m.staging_entry_count,
            rm.HOLD_STAGING_SCHEDULES: m.staging_schedule_count,
            rm.HOLD_COMMAND: m.command_register,
            rm.HOLD_COMMAND_TAG: m.tag_register,
        }
        for base, value in (
            (rm.HOLD_CLOCK, int(m.now())),
            (rm.HOLD_EVENT_READ_AFTER, m.read_after),
            (rm.HOLD_EVENT_ACK, m.last_ack),
            (rm.HOLD_EXPECTED_CHECKSUM, m.expected_checksum),
        ):
            fixed[base], fixed[base + 1] = rm.split_u32(value)
        return [self._holding(a, fixed) for a in range(address, address + count)]

    def _holding(self, a: int, fixed: dict[int, int]) -> int:
        m = self.memory
        if a in fixed:
            return fixed[a]
        door, offset = self._door_register(a)
        if door:
            d = m.door(door)
            return int(d.mode) if offset == rm.DOOR_MODE_OFFSET else d.schedule_id
        table = self._table(a)
        if table is not None:
            regs, index = table
            return regs[index]
        raise IllegalAddress(f"holding register {a:#06x}")

    def _door_register(self, a: int) -> tuple[int, int]:
        if rm.HOLD_DOOR_BASE <= a < rm.HOLD_DOOR_BASE + self.memory.door_count * rm.DOOR_STRIDE:
            door, offset = divmod(a - rm.HOLD_DOOR_BASE, rm.DOOR_STRIDE)
            return door + 1, offset
        return 0, 0

    def _table(self, a: int) -> tuple[list[int], int] | None:
        m = self.memory
        if 0 <= a - rm.HOLD_ENTRY_TABLE < len(m.staging_entries):
            return m.staging_entries, a - rm.HOLD_ENTRY_TABLE
        if 0 <= a - rm.HOLD_SCHEDULE_TABLE < len(m.staging_schedules):
            return m.staging_schedules, a - rm.HOLD_SCHEDULE_TABLE
        return None

    def write_holding(self, address: int, values: Sequence[int]) -> None:
        """Apply a write; a refused write changes nothing (all checks come first)."""
        m = self.memory
        regs = dict(zip(range(address, address + len(values)), values, strict=True))
        for base, name in _U32_FIELDS.items():
            if (base in regs) != (base + 1 in regs):
                raise WriteRefused(f"{name}: a 32-bit field must be written whole in one request")
        staging = [
            a
            for a in regs
            if rm.COMMIT_BLOCK_BASE <= a < rm.COMMIT_BLOCK_BASE + rm.COMMIT_BLOCK_COUNT
            or self._table(a) is not None
        ]
        if staging and m.busy:
            raise DeviceBusy("a commit is in progress")
        for a in regs:
            if a not in _FIXED_HOLDING and not self._door_register(a)[0] and not self._table(a):
                raise IllegalAddress(f"holding register {a:#06x}")
        self._check_values(regs)
        if rm.HOLD_EVENT_ACK in regs and u32_of(regs, rm.HOLD_EVENT_ACK) > m.last_sequence:
            raise WriteRefused("EVENT_ACK: beyond the newest event")

        def u32(base: int) -> int:
            return rm.join_u32(regs[base], regs[base + 1])

        for a, value in sorted(regs.items()):
            table = self._table(a)
            if table is not None:
                table[0][table[1]] = value
                continue
            door, offset = self._door_register(a)
            if door:
                if offset == rm.DOOR_MODE_OFFSET:
                    m.set_door_mode(door, value)
                else:
                    m.set_door_schedule(door, value)
            elif a == rm.HOLD_PULSE_SECONDS:
                m.set_pulse_seconds(value)
            elif a == rm.HOLD_HELD_OPEN_SECONDS:
                m.set_held_open_seconds(value)
            elif a == rm.HOLD_STAGING_ENTRIES:
                m.staging_entry_count = value
            elif a == rm.HOLD_STAGING_SCHEDULES:
                m.staging_schedule_count = value
        if rm.HOLD_CLOCK in regs:
            m.set_time(u32(rm.HOLD_CLOCK))
        if rm.HOLD_EXPECTED_CHECKSUM in regs:
            m.expected_checksum = u32(rm.HOLD_EXPECTED_CHECKSUM)
        if rm.HOLD_EVENT_READ_AFTER in regs:
            m.read_after = u32(rm.HOLD_EVENT_READ_AFTER)
        if rm.HOLD_EVENT_ACK in regs:
            m.acknowledge(u32(rm.HOLD_EVENT_ACK))
        if rm.HOLD_COMMAND_TAG in regs:
            m.tag_register = regs[rm.HOLD_COMMAND_TAG]
        if rm.HOLD_COMMAND in regs:
            m.command_register = regs[rm.HOLD_COMMAND]
            m.command(m.command_register, m.tag_register)

    def _check_values(self, regs: dict[int, int]) -> None:
        for a, value in regs.items():
            door, offset = self._door_register(a)
            if door and offset == rm.DOOR_MODE_OFFSET and value not in set(rm.DoorModeCode):
                raise WriteRefused(f"DOOR_MODE door {door}: unknown mode {value}")
            if door and offset == rm.DOOR_SCHEDULE_OFFSET and value > rm.MAX_SCHEDULE_ID:
                raise WriteRefused(f"DOOR_SCHEDULE door {door}: {value} is not a schedule id")
        for a, (low, high), name in (
            (rm.HOLD_PULSE_SECONDS, rm.PULSE_SECONDS_RANGE, "PULSE_SECONDS"),
            (rm.HOLD_HELD_OPEN_SECONDS, rm.HELD_OPEN_SECONDS_RANGE, "HELD_OPEN_SECONDS"),
        ):
            if a in regs and not low <= regs[a] <= high:
                raise WriteRefused(f"{name}: {regs[a]} is not in {low}..{high}")
        if rm.HOLD_COMMAND in regs and regs[rm.HOLD_COMMAND] not in set(rm.Command):
            raise WriteRefused(f"COMMAND: unknown command {regs[rm.HOLD_COMMAND]}")
        if (
            rm.HOLD_CLOCK in regs
            and rm.join_u32(regs[rm.HOLD_CLOCK], regs[rm.HOLD_CLOCK + 1]) == rm.U32_MAX
        ):
            raise WriteRefused("CLOCK: 0xffffffff is not a time")

    # ------------------------------------------------------------------ bits

    def coils(self) -> list[bool]:
        """Pulse coils: 1 while a grant or a pulse keeps the door's lock released."""
        m = self.memory
        now = m.now()
        return [
            m.door(n).released_until > now and m.unlocked(n) for n in range(1, m.door_count + 1)
        ]

    def write_coils(self, address: int, values: Sequence[bool]) -> None:
        m = self.memory
        doors = range(address + 1, address + len(values) + 1)
        if doors.start < 1 or doors.stop - 1 > m.door_count:
            raise IllegalAddress(f"coil {address:#06x}+{len(values)}: beyond the doors")
        for door, value in zip(doors, values, strict=True):
            if value and m.door(door).mode is rm.DoorModeCode.LOCKDOWN:
                raise WriteRefused(f"PULSE door {door}: the door is in lockdown")
        for door, value in zip(doors, values, strict=True):
            if value:
                m.pulse(door)
            else:
                m.door(door).released_until = 0.0

    def discrete_inputs(self) -> list[bool]:
        m = self.memory
        out: list[bool] = []
        for n in range(1, m.door_count + 1):
            d = m.door(n)
            out += [d.open, d.forced, d.held_open, m.unlocked(n)]
        return out

    def read_coils(self, address: int, count: int) -> list[bool]:
        """Pulse coils ``address .. address + count - 1``; coils beyond the doors are not in
        the map (exception 02)."""
        return _bits(self.coils(), address, count, "coil")

    def read_discrete_inputs(self, address: int, count: int) -> list[bool]:
        """Door inputs ``address .. address + count - 1``; inputs beyond the doors are not in
        the map (exception 02)."""
        return _bits(self.discrete_inputs(), address, count, "discrete input")


def u32_of(regs: dict[int, int], base: int) -> int:
    return rm.join_u32(regs[base], regs[base + 1])


def _bits(bits: list[bool], address: int, count: int, what: str) -> list[bool]:
    if address + count > len(bits):
        raise IllegalAddress(f"{what} {address:#06x}+{count}: beyond the doors")
    return bits[address : address + count]


class ControllerServer:
    """A Modbus server for one :class:`ControllerMemory` over Modbus TCP or RTU.

    TCP: ``host``/``port`` (0 picks a free port; :attr:`port` tells which). RTU: ``device``
    is the serial port to open; without one the server creates a :class:`PtyLink` and
    clients open :attr:`client_path`.
    """

    def __init__(
        self,
        memory: ControllerMemory,
        *,
        transport: Transport = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        device: str | None = None,
        baudrate: int = 19200,
        unit: int = 1,
    ) -> None:
        if transport not in ("tcp", "rtu"):
            raise ValueError(f"transport: must be 'tcp' or 'rtu', got {transport!r}")
        if not 1 <= unit <= 247:
            raise ValueError(f"unit: must be in 1..{247}, got {unit}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port: must be in 0..65535, got {port}")
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate < 1:
            raise ValueError(f"baudrate: must be a positive integer, got {baudrate!r}")
        self.memory = memory
        self.map = RegisterMap(memory)
        self.transport: Transport = transport
        self.host = host
        self._port = port
        self._device = device
        self.baudrate = baudrate
        self.unit = unit
        self._delay_s = 0.0
        self._wake = asyncio.Event()
        self._running = False
        self._tcp: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._pty: PtyLink | None = None
        self._serial: FdTransport | None = None
        self._rtu_task: asyncio.Task[None] | None = None
        self._frames: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._rx = bytearray()
        self._rx_last = 0.0
        self._rx_clock = 0.0
        self._tx_clock = 0.0

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self.transport != "tcp" or not self._running:
            raise RuntimeError("port is known once a TCP server is started")
        return self._port

    @property
    def client_path(self) -> str:
        """The serial path a Modbus master opens: the far end of the simulator's own pty
        link (with a real serial device the far end is at the other end of the cable)."""
        if self._pty is None:
            raise RuntimeError("client_path exists for an RTU server on its own pty link")
        return self._pty.client_path

    @property
    def device_path(self) -> str:
        """The serial path the server itself opened (RTU only)."""
        path = self._pty.device_path if self._pty is not None else self._device
        if self.transport != "rtu" or path is None:
            raise RuntimeError("device_path exists for a started RTU server")
        return path

    def describe(self) -> dict[str, object]:
        """Where a driver finds this controller, as driver options. For RTU on a real serial
        device the ``port`` is unknown here (the far end of the cable) and left out."""
        if self.transport == "tcp":
            return {"transport": "tcp", "host": self.host, "port": self.port, "unit": self.unit}
        options: dict[str, object] = {"transport": "rtu"}
        if self._pty is not None:
            options["port"] = self._pty.client_path
        return {**options, "baudrate": self.baudrate, "unit": self.unit}

    @property
    def byte_time(self) -> float:
        """Seconds one byte takes on the RTU line (10 bits: 8N1)."""
        return 10.0 / self.baudrate

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        if self._running:
            return
        if self.transport == "tcp":
            try:
                self._tcp = await asyncio.start_server(self._on_client, self.host, self._port)
            except OSError as exc:
                raise OSError(f"cannot serve {self._where()}: {exc}") from None
            self._port = int(self._tcp.sockets[0].getsockname()[1])
        else:
            if self._device is None and self._pty is None:
                self._pty = PtyLink()
                self._pty.open()
            path = self.device_path
            self._rx.clear()
            self._frames = asyncio.Queue()
            try:
                self._serial = open_serial(
                    path, baudrate=self.baudrate, on_data=self._on_serial, on_lost=self._on_lost
                )
            except (OSError, ValueError, serial.SerialException) as exc:
                raise OSError(f"cannot serve {self._where()}: {exc}") from None
            self._rtu_task = asyncio.create_task(
                self._rtu_loop(), name=f"controller-sim {self.memory.controller_id}: rtu"
            )
        self._running = True
        log.info("controller %s serving %s", self.memory.controller_id, self._where())

    async def close(self) -> None:
        """Stop serving and release the port (and the pty link). Idempotent."""
        await self.stop()
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    async def stop(self) -> None:
        """Stop serving, as a controller that is switched off: the TCP port is closed, the
        pty link stays, silent. :meth:`start` serves again on the same address."""
        if not self._running:
            return
        self._running = False
        self._wake_waiting()
        tcp, self._tcp = self._tcp, None
        if tcp is not None:
            tcp.close()
        # Connection tasks end by themselves once their socket is closed (cancelling them
        # would make asyncio's stream callback log the cancellation as an error).
        clients = list(self._connections)
        for writer in self._connections.values():
            writer.close()
        if clients:
            await asyncio.wait(clients)
        self._connections.clear()
        rtu, self._rtu_task = self._rtu_task, None
        if rtu is not None:
            rtu.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rtu
        port, self._serial = self._serial, None
        if port is not None:
            port.close()
        if tcp is not None:
            with contextlib.suppress(OSError):
                await tcp.wait_closed()

    def _where(self) -> str:
        if self.transport == "tcp":
            return f"modbus tcp {self.host}:{self._port}"
        return f"modbus rtu {self._pty.device_path if self._pty else self._device}"

    # ------------------------------------------------------------------ faults

    @property
    def delay_s(self) -> float:
        """Every reply is delayed this long (a slow device)."""
        return self._delay_s

    @delay_s.setter
    def delay_s(self, seconds: float) -> None:
        self._delay_s = seconds
        self._wake_waiting()

    def _wake_waiting(self) -> None:
        """Answer the requests that are being delayed now, rather than after the fault."""
        self._wake.set()
        self._wake = asyncio.Event()

    async def _delay(self) -> None:
        if self._delay_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._delay_s):
                    await self._wake.wait()

    def drop_connections(self) -> int:
        """Close every client connection (TCP); returns how many were closed."""
        if self.transport != "tcp":
            return 0
        writers = list(self._connections.values())
        for writer in writers:
            writer.close()
        return len(writers)

    def cut_line(self, seconds: float) -> None:
        """Lose every byte on the serial line for ``seconds`` (RTU over the pty link)."""
        if self._pty is None:
            raise ValueError("fault: a line cut needs the simulator's own pty link")
        self._pty.cut(seconds)

    async def restart(self) -> int:
        """Power loss and a restart of the Modbus server on the same address; returns the
        new generation."""
        await self.stop()
        generation = self.memory.power_loss()
        await self.start()
        return generation

    # ------------------------------------------------------------------ Modbus TCP

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.set_name(f"controller-sim {self.memory.controller_id}: tcp client")
        self._connections[task] = writer
        try:
            while True:
                header = await reader.readexactly(7)
                tid, protocol, length, unit = struct.unpack(">HHHB", header)
                if protocol != 0 or not 2 <= length <= 254:
                    log.info("controller %s: not a Modbus TCP frame", self.memory.controller_id)
                    return
                request = await reader.readexactly(length - 1)
                reply = await self._answer_tcp(unit, request)
                if reply is not None:
                    writer.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._connections.pop(task, None)

    async def _answer_tcp(self, unit: int, request: bytes) -> bytes | None:
        if unit == self.unit or unit in TCP_ANY_UNIT:
            reply = pdu.answer(self.map, request)
        else:
            reply = pdu.exception_pdu(request[0], pdu.GATEWAY_NO_RESPONSE)
        await self._delay()
        return reply

    # ------------------------------------------------------------------ Modbus RTU

    def _on_serial(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._rx and now - self._rx_last > max(RTU_GAP_S, 3.5 * self.byte_time):
            log.info("controller %s: partial RTU frame dropped", self.memory.controller_id)
            self._rx.clear()
        self._rx_last = now
        # The bytes arrive at once on a pty; on the line they take their time.
        self._rx_clock = max(now, self._rx_clock) + len(data) * self.byte_time
        self._rx += data
        while self._rx:
            size = pdu.rtu_request_size(bytes(self._rx))
            if size is None or size > len(self._rx):
                return
            if size == 0:  # unknown function: the frame is everything up to the silence
                size = len(self._rx)
            frame = bytes(self._rx[:size])
            del self._rx[:size]
            if FramerRTU.compute_CRC(frame[:-2]).to_bytes(2, "big") != frame[-2:]:
                log.info("controller %s: RTU frame with a bad CRC", self.memory.controller_id)
                self._rx.clear()
                return
            self._frames.put_nowait((self._rx_clock, frame))

    def _on_lost(self, exc: Exception | None) -> None:
        log.warning("controller %s: serial port lost: %s", self.memory.controller_id, exc)

    async def _rtu_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            received_at, frame = await self._frames.get()
            await asyncio.sleep(max(0.0, received_at - loop.time()))
            unit, request = frame[0], frame[1:-2]
            if unit == 0:
                if request and request[0] in pdu.WRITE_FUNCTIONS:
                    pdu.answer(self.map, request)  # a broadcast: executed, never answered
                continue
            if unit != self.unit:
                continue  # another device's frame on the shared bus
            reply = pdu.answer(self.map, request)
            await self._delay()
            adu = bytes([unit]) + reply
            adu += FramerRTU.compute_CRC(adu).to_bytes(2, "big")
            self._tx_clock = max(loop.time(), self._tx_clock) + len(adu) * self.byte_time
            await asyncio.sleep(max(0.0, self._tx_clock - loop.time()))
            if self._serial is not None and not self._serial.closed:
                self._serial.write(adu)
