"""The simulated controller on the wire: the register map served by pymodbus.

:class:`RegisterMap` translates Modbus addresses into reads and writes of a
:class:`~simulators.controller.memory.ControllerMemory` (pure, no I/O).
:class:`ControllerServer` serves it with a pymodbus server over Modbus TCP or Modbus RTU
(on a serial device, or on a :class:`~simulators.controller.ptylink.PtyLink` it creates) and
injects the transport faults: slow replies, dropped connections, a cut line, a restart.

pymodbus 3.16 keeps register values in a :class:`~pymodbus.simulator.SimDevice`; its
``action`` hook runs before every access. The hook renders the requested registers from
the memory before a read and applies a write to the memory (refusing it with a Modbus
exception when the map says so), so the memory is the only state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.modbusdoor import registers as rm
from simulators.controller.memory import ControllerMemory, DeviceBusy, WriteRefused
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
_COIL_FUNCTIONS = {1, 5, 15}
_DISCRETE_FUNCTIONS = {2}
_INPUT_FUNCTIONS = {4}
_READ_FUNCTIONS = {1, 2, 3, 4}


class IllegalAddress(LookupError):
    """No register of the map at this address (Modbus exception 02)."""


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


def _pack_bits(bits: list[bool], registers: list[int]) -> None:
    """Store ``bits`` into pymodbus's bit block (16 per register, bit 0 first)."""
    for i in range(0, len(bits), 16):
        registers[i // 16] = sum(1 << j for j, bit in enumerate(bits[i : i + 16]) if bit)


class ControllerServer:
    """A pymodbus server for one :class:`ControllerMemory` over Modbus TCP or RTU.

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
            raise ValueError(f"unit: must be in 1..247, got {unit}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port: must be in 0..65535, got {port}")
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
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._pty: PtyLink | None = None

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self.transport != "tcp" or self._server is None:
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

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        if self._server is not None:
            return
        device = self._device_model()
        server: ModbusTcpServer | ModbusSerialServer
        if self.transport == "tcp":
            server = ModbusTcpServer(device, address=(self.host, self._port))
        else:
            if self._device is None and self._pty is None:
                self._pty = PtyLink()
                self._pty.open()
            path = self._pty.device_path if self._pty is not None else self._device
            assert path is not None
            server = ModbusSerialServer(device, port=path, baudrate=self.baudrate)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:  # pymodbus: "Could not start listen"
            raise OSError(f"cannot serve {self._where()}: {exc}") from None
        self._server = server
        listener: object = server.transport
        if isinstance(listener, asyncio.Server):
            self._port = int(listener.sockets[0].getsockname()[1])
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
        server, self._server = self._server, None
        if server is None:
            return
        self._wake_waiting()
        await asyncio.sleep(0)  # let woken requests finish before their transport closes
        listener: object = server.transport
        await server.shutdown()  # type: ignore[no-untyped-call]
        if isinstance(listener, asyncio.Server):
            with contextlib.suppress(OSError):
                await listener.wait_closed()

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

    def drop_connections(self) -> int:
        """Close every client connection (TCP); returns how many were closed."""
        if self._server is None:
            return 0
        connections = list(self._server.active_connections.values())
        if self.transport != "tcp":
            return 0
        for connection in connections:
            connection.close()
        return len(connections)

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

    # ------------------------------------------------------------------ pymodbus glue

    def _device_model(self) -> SimDevice:
        m = self.memory

        def regs(address: int, count: int) -> SimData:
            return SimData(address, count=count, values=0, datatype=DataType.REGISTERS)

        inputs = [
            regs(rm.IDENTITY_BASE, rm.IDENTITY_COUNT),
            regs(rm.STATUS_BASE, rm.STATUS_COUNT),
            regs(rm.EVENT_HEADER_BASE, rm.window_records_needed(m.event_window)),
        ]
        holding = [
            regs(rm.HOLD_CLOCK, rm.HOLD_HELD_OPEN_SECONDS + 1 - rm.HOLD_CLOCK),
            regs(rm.HOLD_EVENT_READ_AFTER, 4),
            regs(rm.COMMIT_BLOCK_BASE, rm.COMMIT_BLOCK_COUNT),
            regs(rm.HOLD_DOOR_BASE, m.door_count * rm.DOOR_STRIDE),
            regs(rm.HOLD_ENTRY_TABLE, m.capacity * rm.ENTRY_RECORD_REGISTERS),
        ]
        if m.schedule_slots:
            holding.append(
                regs(rm.HOLD_SCHEDULE_TABLE, m.schedule_slots * rm.SCHEDULE_RECORD_REGISTERS)
            )
        coils = [
            SimData(rm.COIL_PULSE_BASE, count=m.door_count, values=False, datatype=DataType.BITS)
        ]
        discrete = [
            SimData(
                rm.DI_DOOR_BASE,
                count=m.door_count * rm.DI_STRIDE,
                values=False,
                datatype=DataType.BITS,
            )
        ]
        return SimDevice(self.unit, simdata=(coils, discrete, holding, inputs), action=self._action)

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this before each access: render a read, apply a write."""
        first_access = values is not None or function_code in _READ_FUNCTIONS
        if self._delay_s > 0 and first_access:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._delay_s)
        try:
            if function_code in _COIL_FUNCTIONS:
                if values is not None:
                    self.map.write_coils(address, [bool(v) for v in values])
                _pack_bits(self.map.coils(), registers)
            elif function_code in _DISCRETE_FUNCTIONS:
                _pack_bits(self.map.discrete_inputs(), registers)
            elif function_code in _INPUT_FUNCTIONS:
                registers[address - start_address : address - start_address + count] = (
                    self.map.read_input(address, count)
                )
            elif values is not None:
                self.map.write_holding(address, [int(v) for v in values])
            else:
                registers[address - start_address : address - start_address + count] = (
                    self.map.read_holding(address, count)
                )
        except WriteRefused as exc:
            log.info("controller %s refused a write: %s", self.memory.controller_id, exc)
            return ExcCodes.ILLEGAL_VALUE
        except DeviceBusy:
            return ExcCodes.DEVICE_BUSY
        except IllegalAddress as exc:
            log.info("controller %s: no register at %s", self.memory.controller_id, exc)
            return ExcCodes.ILLEGAL_ADDRESS
        return None
