"""Modbus requests at the PDU level, answered from a :class:`~simulators.controller.server.
RegisterMap` (pure, no I/O).

:func:`answer` takes one request PDU (function code and data) and returns the response PDU,
a normal response or an exception response, checking in the order the Modbus application
protocol gives: an unknown function is exception 01, a quantity or value the function does
not allow exception 03, an address outside the map exception 02, a value the map refuses
exception 03 and a staging write during a busy commit exception 06.

:func:`rtu_request_size` tells how long an RTU request frame is from its first bytes, which is
how the simulator finds the end of a frame without waiting for the line to fall silent.
"""

from __future__ import annotations

import logging
import struct
from typing import Protocol

from simulators.controller.memory import DeviceBusy, WriteRefused

log = logging.getLogger(__name__)

ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03
DEVICE_FAILURE = 0x04
DEVICE_BUSY = 0x06
GATEWAY_NO_RESPONSE = 0x0B

READ_COILS = 1
READ_DISCRETE_INPUTS = 2
READ_HOLDING = 3
READ_INPUT = 4
WRITE_COIL = 5
WRITE_REGISTER = 6
WRITE_COILS = 15
WRITE_REGISTERS = 16

WRITE_FUNCTIONS = frozenset({WRITE_COIL, WRITE_REGISTER, WRITE_COILS, WRITE_REGISTERS})
"""Functions a broadcast (unit 0) may carry: they are executed and never answered."""

MAX_READ_BITS = 2000
MAX_READ_REGISTERS = 125
MAX_WRITE_BITS = 1968
MAX_WRITE_REGISTERS = 123
COIL_ON = 0xFF00
COIL_OFF = 0x0000


class IllegalAddress(LookupError):
    """No register of the map at this address (Modbus exception 02)."""


class Registers(Protocol):
    """What the PDU layer needs from a register map."""

    def read_coils(self, address: int, count: int) -> list[bool]: ...
    def read_discrete_inputs(self, address: int, count: int) -> list[bool]: ...
    def read_holding(self, address: int, count: int) -> list[int]: ...
    def read_input(self, address: int, count: int) -> list[int]: ...
    def write_coils(self, address: int, values: list[bool]) -> None: ...
    def write_holding(self, address: int, values: list[int]) -> None: ...


class _Exception(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def exception_pdu(function: int, code: int) -> bytes:
    return bytes([(function | 0x80) & 0xFF, code])


def _pack_bits(bits: list[bool]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


def _unpack_bits(data: bytes, count: int) -> list[bool]:
    return [bool(data[i // 8] >> (i % 8) & 1) for i in range(count)]


def _quantity(value: int, high: int) -> None:
    if not 1 <= value <= high:
        raise _Exception(ILLEGAL_VALUE)


def _span(address: int, count: int) -> None:
    if address + count > 0x10000:
        raise _Exception(ILLEGAL_ADDRESS)


def _fields(data: bytes, size: int) -> tuple[int, int]:
    if len(data) != size:
        raise _Exception(ILLEGAL_VALUE)
    first, second = struct.unpack(">HH", data[:4])
    return int(first), int(second)


def answer(registers: Registers, pdu: bytes) -> bytes:
    """The response PDU to request ``pdu`` (never raises for any input)."""
    if not pdu:
        return exception_pdu(0, ILLEGAL_FUNCTION)
    function, data = pdu[0], pdu[1:]
    try:
        return bytes([function]) + _dispatch(registers, function, data)
    except _Exception as exc:
        return exception_pdu(function, exc.code)
    except IllegalAddress:
        return exception_pdu(function, ILLEGAL_ADDRESS)
    except WriteRefused:
        return exception_pdu(function, ILLEGAL_VALUE)
    except DeviceBusy:
        return exception_pdu(function, DEVICE_BUSY)
    except Exception:
        log.exception("the simulated controller failed on function %d", function)
        return exception_pdu(function, DEVICE_FAILURE)


def _dispatch(registers: Registers, function: int, data: bytes) -> bytes:
    if function in (READ_COILS, READ_DISCRETE_INPUTS):
        address, count = _fields(data, 4)
        _quantity(count, MAX_READ_BITS)
        _span(address, count)
        read = registers.read_coils if function == READ_COILS else registers.read_discrete_inputs
        packed = _pack_bits(read(address, count))
        return bytes([len(packed)]) + packed
    if function in (READ_HOLDING, READ_INPUT):
        address, count = _fields(data, 4)
        _quantity(count, MAX_READ_REGISTERS)
        _span(address, count)
        read_regs = registers.read_holding if function == READ_HOLDING else registers.read_input
        values = read_regs(address, count)
        return bytes([2 * count]) + struct.pack(f">{count}H", *values)
    if function == WRITE_COIL:
        address, value = _fields(data, 4)
        if value not in (COIL_ON, COIL_OFF):
            raise _Exception(ILLEGAL_VALUE)
        registers.write_coils(address, [value == COIL_ON])
        return data
    if function == WRITE_REGISTER:
        address, value = _fields(data, 4)
        registers.write_holding(address, [value])
        return struct.pack(">HH", address, registers.read_holding(address, 1)[0])
    if function in (WRITE_COILS, WRITE_REGISTERS):
        if len(data) < 5:
            raise _Exception(ILLEGAL_VALUE)
        address, count = _fields(data[:4], 4)
        size = data[4]
        payload = data[5:]
        if function == WRITE_COILS:
            _quantity(count, MAX_WRITE_BITS)
            if size != (count + 7) // 8 or len(payload) != size:
                raise _Exception(ILLEGAL_VALUE)
            _span(address, count)
            registers.write_coils(address, _unpack_bits(payload, count))
        else:
            _quantity(count, MAX_WRITE_REGISTERS)
            if size != 2 * count or len(payload) != size:
                raise _Exception(ILLEGAL_VALUE)
            _span(address, count)
            registers.write_holding(address, list(struct.unpack(f">{count}H", payload)))
        return struct.pack(">HH", address, count)
    raise _Exception(ILLEGAL_FUNCTION)


def rtu_request_size(frame: bytes) -> int | None:
    """Length of the RTU request frame (unit, PDU, CRC) starting ``frame``, or ``None`` while
    too few bytes are there to tell. Unknown functions give 0: such a frame ends only when
    the line falls silent."""
    if len(frame) < 2:
        return None
    function = frame[1]
    if function in (1, 2, 3, 4, 5, 6):
        return 8
    if function in (WRITE_COILS, WRITE_REGISTERS):
        return None if len(frame) < 7 else 9 + frame[6]
    return 0
