"""The simulated controller checked with Modbus clients this project did not write:
pyModbusTCP over TCP, minimalmodbus over the pseudo-terminal for RTU, and raw sockets for
what no client library does (pipelining)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import minimalmodbus
import pytest
from pyModbusTCP.client import ModbusClient

from drivers.modbusdoor import registers as rm
from simulators.controller import ControllerMemory, ControllerServer

DOORS = 2


@pytest.fixture
def memory() -> ControllerMemory:
    return ControllerMemory(controller_id="conf-1", doors=DOORS, capacity=20, schedule_slots=2)


@pytest.fixture
async def tcp(memory: ControllerMemory) -> AsyncIterator[ControllerServer]:
    srv = ControllerServer(memory, transport="tcp")
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


@pytest.fixture
async def rtu(memory: ControllerMemory) -> AsyncIterator[ControllerServer]:
    srv = ControllerServer(memory, transport="rtu", baudrate=115200)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


# ------------------------------------------------------------------------------ Modbus TCP


def _tcp_client(server: ControllerServer, unit: int = 1) -> ModbusClient:
    return ModbusClient(host="127.0.0.1", port=server.port, unit_id=unit, timeout=2.0)


def _custom(client: ModbusClient, pdu: bytes) -> tuple[bytes | None, int]:
    """Send a raw request PDU; the reply PDU (None on an exception) and the exception code."""
    try:
        reply = client.custom_request(pdu)
        return reply, int(client.last_except)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("name", "request_pdu"),
    [
        ("FC03 quantity 0", b"\x03\x00\x00\x00\x00"),
        ("FC03 quantity 126", b"\x03\x00\x00\x00\x7e"),
        ("FC04 quantity 0", b"\x04\x00\x00\x00\x00"),
        ("FC04 quantity 126", b"\x04\x00\x00\x00\x7e"),
        ("FC01 quantity 0", b"\x01\x00\x00\x00\x00"),
        ("FC01 quantity 2001", b"\x01\x00\x00\x07\xd1"),
        ("FC05 value 0x1234", b"\x05\x00\x00\x12\x34"),
        ("FC05 value 0x00ff", b"\x05\x00\x00\x00\xff"),
        ("FC16 byte count not 2 x quantity", b"\x10\x00\x02\x00\x01\x04\x00\x05\x00\x05"),
    ],
)
async def test_quantities_and_values_outside_the_function_are_exception_03(
    tcp: ControllerServer, memory: ControllerMemory, name: str, request_pdu: bytes
) -> None:
    client = _tcp_client(tcp)
    reply, code = await asyncio.to_thread(_custom, client, request_pdu)
    assert reply is None, name
    assert code == 0x03, name
    assert memory.door(1).released_until == 0  # the bad FC05 pulsed nothing


async def test_fc05_accepts_on_and_off(tcp: ControllerServer, memory: ControllerMemory) -> None:
    client = _tcp_client(tcp)
    assert await asyncio.to_thread(client.write_single_coil, 0, True)
    assert memory.unlocked(1)
    assert await asyncio.to_thread(client.write_single_coil, 0, False)
    assert not memory.unlocked(1)
    client.close()


async def test_bits_beyond_the_doors_are_not_in_the_map(tcp: ControllerServer) -> None:
    client = _tcp_client(tcp)
    assert await asyncio.to_thread(client.read_discrete_inputs, 0, DOORS * rm.DI_STRIDE) == [
        False
    ] * (DOORS * rm.DI_STRIDE)
    for read, address, count in (
        (client.read_discrete_inputs, 0, DOORS * rm.DI_STRIDE + 1),
        (client.read_discrete_inputs, DOORS * rm.DI_STRIDE, 1),
        (client.read_coils, 0, DOORS + 1),
        (client.read_coils, DOORS, 1),
    ):
        assert await asyncio.to_thread(read, address, count) is None
        assert client.last_except == 0x02, (read.__name__, address, count)
    client.close()


async def test_tcp_requests_for_another_unit_get_exception_0b(tcp: ControllerServer) -> None:
    client = _tcp_client(tcp, unit=7)
    assert await asyncio.to_thread(client.read_input_registers, 0, 1) is None
    assert client.last_except == 0x0B
    client.close()
    for unit in (0, 255):  # "the device itself" on Modbus TCP
        client = _tcp_client(tcp, unit=unit)
        assert await asyncio.to_thread(client.read_input_registers, 0, 1) == [rm.MAGIC]
        client.close()


def _pipelined(port: int, requests: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Send every request before reading any reply; the replies as (transaction id, PDU)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"".join(struct.pack(">HHHB", tid, 0, len(p) + 1, 1) + p for tid, p in requests)
        )
        replies: list[tuple[int, bytes]] = []
        buffer = b""
        while len(replies) < len(requests):
            data = sock.recv(4096)
            if not data:
                break
            buffer += data
            while len(buffer) >= 7:
                tid, protocol, length, unit = struct.unpack(">HHHB", buffer[:7])
                if len(buffer) < 6 + length:
                    break
                assert (protocol, unit) == (0, 1)
                replies.append((tid, buffer[7 : 6 + length]))
                buffer = buffer[6 + length :]
    return replies


async def test_delayed_pipelined_replies_keep_their_transaction_ids(
    tcp: ControllerServer, memory: ControllerMemory
) -> None:
    memory.set_pulse_seconds(7)
    memory.set_held_open_seconds(42)
    tcp.delay_s = 0.2
    requests = [
        (11, b"\x03" + struct.pack(">HH", rm.HOLD_PULSE_SECONDS, 1)),
        (12, b"\x03" + struct.pack(">HH", rm.HOLD_HELD_OPEN_SECONDS, 1)),
        (13, b"\x04" + struct.pack(">HH", rm.IDENT_MAGIC, 1)),
    ]
    replies = await asyncio.to_thread(_pipelined, tcp.port, requests)
    assert replies == [
        (11, b"\x03\x02" + struct.pack(">H", 7)),
        (12, b"\x03\x02" + struct.pack(">H", 42)),
        (13, b"\x04\x02" + struct.pack(">H", rm.MAGIC)),
    ]


async def test_event_ack_beyond_the_newest_event_is_refused(
    tcp: ControllerServer, memory: ControllerMemory
) -> None:
    memory.present(5, 1)
    memory.present(6, 1)
    client = _tcp_client(tcp)
    assert not await asyncio.to_thread(
        client.write_multiple_registers, rm.HOLD_EVENT_ACK, rm.split_u32(3)
    )
    assert client.last_except == 0x03
    assert [e.sequence for e in memory.events] == [1, 2]
    assert await asyncio.to_thread(
        client.write_multiple_registers, rm.HOLD_EVENT_ACK, rm.split_u32(2)
    )
    assert not memory.events
    client.close()


# ------------------------------------------------------------------------------ Modbus RTU


def _instrument(
    port: str, unit: int, *, baudrate: int = 115200, timeout: float = 1.0
) -> minimalmodbus.Instrument:
    instrument = minimalmodbus.Instrument(port, unit, close_port_after_each_call=True)
    instrument.serial.baudrate = baudrate
    instrument.serial.timeout = timeout
    return instrument


async def test_rtu_reads_and_writes_with_minimalmodbus(
    rtu: ControllerServer, memory: ControllerMemory
) -> None:
    instrument = _instrument(rtu.client_path, 1)
    magic = await asyncio.to_thread(instrument.read_registers, rm.IDENT_MAGIC, 2, 4)
    assert magic == [rm.MAGIC, rm.MAP_VERSION]
    await asyncio.to_thread(instrument.write_register, rm.door_mode_address(2), 3, 0, 6)
    assert memory.door(2).mode is rm.DoorModeCode.LOCKDOWN
    with pytest.raises(minimalmodbus.IllegalRequestError):  # exception 02
        await asyncio.to_thread(instrument.read_bits, DOORS * rm.DI_STRIDE, 1, 2)


async def test_rtu_device_is_silent_for_other_units(rtu: ControllerServer) -> None:
    other = _instrument(rtu.client_path, 2, timeout=0.3)
    with pytest.raises(minimalmodbus.NoResponseError):
        await asyncio.to_thread(other.read_registers, rm.IDENT_MAGIC, 1, 4)
    # A bad request for another unit is not answered with an exception either.
    with pytest.raises(minimalmodbus.NoResponseError):
        await asyncio.to_thread(other.read_registers, rm.IDENTITY_COUNT, 1, 4)
    mine = _instrument(rtu.client_path, 1)
    assert await asyncio.to_thread(mine.read_register, rm.IDENT_MAGIC, 0, 4) == rm.MAGIC


async def test_rtu_broadcast_writes_are_executed_and_never_answered(
    rtu: ControllerServer, memory: ControllerMemory
) -> None:
    broadcast = _instrument(rtu.client_path, 0)
    await asyncio.to_thread(broadcast.write_register, rm.HOLD_PULSE_SECONDS, 9, 0, 16)
    mine = _instrument(rtu.client_path, 1)
    # The next reply on the line is the answer to this read, not to the broadcast.
    assert await asyncio.to_thread(mine.read_register, rm.HOLD_PULSE_SECONDS, 0, 3) == 9
    assert memory.pulse_seconds == 9


async def test_rtu_replies_take_their_time_on_the_line(memory: ControllerMemory) -> None:
    """At 1200 baud the 71-byte reply to an identity read needs 0.59 s on the line (and its
    8-byte request 0.07 s), so it cannot be complete within 0.3 s; with time it arrives."""
    srv = ControllerServer(memory, transport="rtu", baudrate=1200)
    await srv.start()
    try:
        hurried = _instrument(srv.client_path, 1, baudrate=1200, timeout=0.3)
        with pytest.raises((minimalmodbus.NoResponseError, minimalmodbus.InvalidResponseError)):
            await asyncio.to_thread(hurried.read_registers, 0, rm.IDENTITY_COUNT, 4)
        patient = _instrument(srv.client_path, 1, baudrate=1200, timeout=3.0)
        registers = await asyncio.to_thread(patient.read_registers, 0, rm.IDENTITY_COUNT, 4)
        assert rm.decode_identity(registers) == memory.identity()
    finally:
        await srv.close()
